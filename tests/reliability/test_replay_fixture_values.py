"""Issue 12, finding 10 (fixtures): NaN/Infinity in .json or .yaml are not
sent as null in silence, and a duplicate key is a finding instead of "the
last one wins".  Each is reported at its file and line; the clean messages
around it are still read."""

from __future__ import annotations

from tests.reliability._support import assert_clean_failure, run_bounded

CLEAN = '{"type": "track", "event": "Clean", "userId": "ok"}'

FILES = {
    "nan.json": (
        "[\n" + CLEAN + ',\n{"type": "track", "event": "A", "userId": "u", "properties": {"x": NaN}}\n]\n',
        3,
        "NaN",
    ),
    "inf.json": (
        "[\n" + CLEAN + ',\n{"type": "track", "event": "A", "userId": "u", "properties": {"x": -Infinity}}\n]\n',
        3,
        "Infinity",
    ),
    "dup.json": (
        "[\n" + CLEAN + ',\n{"type": "track", "event": "A", "userId": "u1", "userId": "u2"}\n]\n',
        3,
        'duplicate key "userId"',
    ),
    "nan.yaml": (
        "- {type: track, event: Clean, userId: ok}\n- {type: track, event: A, userId: u, properties: {x: .nan}}\n",
        2,
        ".nan",
    ),
    "inf.yaml": (
        "- {type: track, event: Clean, userId: ok}\n- {type: track, event: A, userId: u, properties: {x: -.inf}}\n",
        2,
        "-.inf",
    ),
    "dup.yaml": (
        "- {type: track, event: Clean, userId: ok}\n- type: track\n  event: A\n  userId: u1\n  userId: u2\n",
        5,
        "duplicate key 'userId'",
    ),
}


def test_nan_infinity_and_duplicate_keys_are_findings_at_their_line(tmp_path):
    for name, (text, _, _) in FILES.items():
        (tmp_path / name).write_text(text)
    res = run_bounded("--json", "replay", "--dry-run", "--skip-invalid", *FILES, cwd=tmp_path)
    assert_clean_failure(res, 1)  # a dry run with invalid messages: exit 1
    summary = res.json["summary"]
    assert (summary["would_send"], summary["invalid"]) == (len(FILES), len(FILES))  # one clean message each
    # lint lists every finding (replay lists the first five) from the same reader.
    res = run_bounded("--json", "lint", *FILES, cwd=tmp_path)
    assert_clean_failure(res, 2)  # lint: unreadable input is exit 2
    found = {(c["file"], c["line"]): c["message"] for c in res.json["checks"] if c["status"] == "failed"}
    for name, (_, line, words) in FILES.items():
        assert words in found.get((name, line), ""), (name, found)

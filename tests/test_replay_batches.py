"""Batches cut by the pre-pass (replay/cutting.py): a batch that spans input
files, holds invalid records or carries mapped operations keeps each
message's file, line and bytes for its dead-letter line; sandbox over
loopback."""

from __future__ import annotations

import json
from pathlib import Path

from cdpio_cli.replay import ReplayOptions, replay
from cdpio_cli.routes import registry
from cdpio_cli.routes.registry import build_sender
from cdpio_cli.sandbox import defaults

CREDENTIALS = {
    "segment.write_key": defaults.WRITE_KEY,
    "customerio.site_id": defaults.SITE_ID,
    "customerio.track_api_key": defaults.TRACK_API_KEY,
    "customerio.pipelines_api_key": defaults.PIPELINES_API_KEY,
}
FAST = dict(rate=None, concurrency=2, max_retries=0, base_delay=0.001, max_delay=0.01, max_retry_after=0.02)


def _track(i: int, prefix: str) -> dict:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"{prefix}{i}",
        "messageId": f"{prefix}-m{i}",
        "properties": {"i": i},
        "timestamp": "2024-03-01T00:00:00.000Z",
    }


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _two_files(tmp_path: Path) -> tuple[Path, Path, dict[str, tuple[str, int]]]:
    """Two inputs (7 and 6 messages, a blank line and an invalid line in
    the second); returns them and each messageId's (file, line)."""
    a = _write(tmp_path / "a.ndjson", [json.dumps(_track(i, "a")) for i in range(7)])
    b_lines = [json.dumps(_track(0, "b")), "", '{"type": "track"}']
    b_lines += [json.dumps(_track(i, "b")) for i in range(1, 6)]
    b = _write(tmp_path / "b.ndjson", b_lines)
    where = {f"a-m{i}": (str(a), i + 1) for i in range(7)}
    where["b-m0"] = (str(b), 1)
    where.update({f"b-m{i}": (str(b), i + 3) for i in range(1, 6)})
    return a, b, where


def test_a_failed_batch_across_two_files_dead_letters_each_message_at_its_place(sandbox_factory, tmp_path):
    sb = sandbox_factory(fail_rate=1.0, fail_status=400, seed=1)
    a, b, where = _two_files(tmp_path)
    dl = tmp_path / "dl.ndjson"
    route = build_sender("segment", sb.endpoint("segment"), CREDENTIALS, batch_size=5)
    result = replay([str(a), str(b)], route, ReplayOptions(**FAST, skip_invalid=True, dead_letter=str(dl)))
    assert (result.invalid, result.failed, result.accepted, result.requests) == (1, 13, 0, 3)
    lines = [json.loads(x) for x in dl.read_text().splitlines()]
    assert len(lines) == 14
    invalid = [x for x in lines if x["_cdpio"]["reason"].startswith("invalid:")]
    assert [(x["_cdpio"]["file"], x["_cdpio"]["line"]) for x in invalid] == [(str(b), 3)]
    failed = [x for x in lines if not x["_cdpio"]["reason"].startswith("invalid:")]
    # The second batch holds a-m5, a-m6, b-m0, the invalid line, b-m1, b-m2.
    assert sorted((x["_cdpio"]["file"], x["_cdpio"]["line"]) for x in failed) == sorted(where.values())
    for x in failed:
        assert (x["_cdpio"]["file"], x["_cdpio"]["line"]) == where[x["messageId"]]
        assert x["_cdpio"]["http_status"] == 400 and x["properties"]["i"] == int(x["messageId"].split("m")[-1])


def test_a_failed_mapped_batch_dead_letters_the_messages_not_the_operations(sandbox_factory, tmp_path):
    sb = sandbox_factory(fail_rate=1.0, fail_status=400, seed=2)
    a, b, where = _two_files(tmp_path)
    dl = tmp_path / "dl.ndjson"
    name = "customerio"
    route = build_sender(name, sb.endpoint(registry.get(name).service), CREDENTIALS, batch_size=4)
    result = replay([str(a), str(b)], route, ReplayOptions(**FAST, skip_invalid=True, dead_letter=str(dl)))
    assert (result.invalid, result.failed, result.accepted) == (1, 13, 0)
    lines = [json.loads(x) for x in dl.read_text().splitlines()]
    failed = [x for x in lines if not x["_cdpio"]["reason"].startswith("invalid:")]
    assert len(failed) == 13
    for x in failed:
        assert x["type"] == "track" and x["event"] == "Order Completed"  # the Segment message itself
        assert (x["_cdpio"]["file"], x["_cdpio"]["line"]) == where[x["messageId"]]


def test_shifted_timestamps_are_cut_with_their_shifted_size(sandbox, tmp_path):
    # 20-character timestamps become 24 characters when shifted: the batches
    # are cut by the bytes that are sent.
    msgs = [dict(_track(i, "s"), timestamp="2024-03-01T00:00:00Z", properties={"pad": "x" * 3000}) for i in range(40)]
    src = _write(tmp_path / "in.ndjson", [json.dumps(m) for m in msgs])
    route = build_sender("segment", sandbox.endpoint("segment"), CREDENTIALS, batch_size=100)
    size = len(json.dumps(msgs[0], separators=(",", ":")))
    route.max_batch_bytes = 10 * (size + 1) + route.envelope_bytes  # 10 unshifted messages, 9 shifted
    result = replay([str(src)], route, ReplayOptions(**FAST, shift_timestamps=True))
    assert (result.accepted, result.requests) == (40, 5)

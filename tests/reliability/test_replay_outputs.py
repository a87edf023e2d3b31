"""Issue 12, finding 2: replay's output files are checked together before any
work.  They are distinct from each other and from every input, a dead-letter
file that already holds lines is appended to (truncated only with --force),
nothing is written through a symlink, and data files are private (0600)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from cdpio_cli.errors import UsageError
from cdpio_cli.replay import ReplayOptions, replay
from cdpio_cli.routes.registry import build_sender
from cdpio_cli.sandbox import defaults
from tests.reliability._support import assert_clean_failure, msgs, run_bounded, write_ndjson

INVALID = {"type": "track", "userId": "no-event"}  # dead-lettered with --skip-invalid
FAST = dict(rate=None, base_delay=0.001, max_delay=0.01, skip_invalid=True)


def requests_seen(sb) -> int:
    return httpx.get(sb.url + "/_sandbox/requests").json()["total"]


def corpus(path: Path, n: int = 6, invalid: int = 2) -> Path:
    return write_ndjson(path, msgs(n) + [dict(INVALID, userId=f"bad-{i}") for i in range(invalid)])


def run(sb, paths, **options):
    route = build_sender("segment", sb.endpoint("segment"), {"segment.write_key": defaults.WRITE_KEY})
    return replay([str(p) for p in paths], route, ReplayOptions(**FAST, **options))


def test_dead_letter_and_checkpoint_on_the_same_file_is_refused_before_sending(sandbox, tmp_path):
    src = corpus(tmp_path / "in.ndjson")
    same = tmp_path / "out.ndjson"
    res = run_bounded(
        "--sandbox-url",
        sandbox.url,
        "--json",
        "replay",
        str(src),
        "--skip-invalid",
        "--dead-letter",
        str(same),
        "--checkpoint",
        str(same),
        cwd=tmp_path,
    )
    assert_clean_failure(res, 2)
    assert "same file" in res.json["error"]["message"]
    assert requests_seen(sandbox) == 0 and not same.exists()


def test_outputs_never_overwrite_an_input_even_through_a_hard_link(sandbox, tmp_path):
    src = corpus(tmp_path / "in.ndjson")
    before = src.read_bytes()
    link = tmp_path / "alias.ndjson"
    os.link(src, link)  # another name for the same inode
    for options in (
        dict(dead_letter=str(link)),
        dict(checkpoint=str(link)),
        dict(other_outputs=[("--junit", str(src))]),
    ):
        with pytest.raises(UsageError, match="input"):
            run(sandbox, [src], **options)
        assert src.read_bytes() == before, f"{options} overwrote the input"
    # The CLI passes --junit into the same check (and writes no report there).
    res = run_bounded("--sandbox-url", sandbox.url, "--junit", str(link), "--json", "replay", str(src), cwd=tmp_path)
    assert_clean_failure(res, 2)
    assert "--junit" in res.json["error"]["message"] and src.read_bytes() == before
    assert requests_seen(sandbox) == 0


def test_a_second_run_appends_to_the_dead_letter_file_and_force_truncates(sandbox, tmp_path):
    dl = tmp_path / "failed.ndjson"
    first = run(sandbox, [corpus(tmp_path / "a.ndjson", invalid=2)], dead_letter=str(dl))
    assert first.dead_lettered == 2 and len(dl.read_text().splitlines()) == 2
    second = run(sandbox, [corpus(tmp_path / "b.ndjson", invalid=3)], dead_letter=str(dl))
    lines = [json.loads(x) for x in dl.read_text().splitlines()]
    assert [d["_cdpio"]["file"].endswith("a.ndjson") for d in lines] == [True] * 2 + [False] * 3
    assert second.summary()["dead_letter_prior_lines"] == 2
    run(sandbox, [corpus(tmp_path / "c.ndjson", invalid=1)], dead_letter=str(dl), force=True)
    assert len(dl.read_text().splitlines()) == 1


def test_default_dead_letter_files_of_same_named_inputs_do_not_collide(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = []
    for folder, bad in (("a", 2), ("b", 3)):
        (tmp_path / folder).mkdir()
        result = run(sandbox, [corpus(tmp_path / folder / "events.ndjson", invalid=bad)])
        paths.append(tmp_path / result.dead_letter)
    assert paths[0] != paths[1]
    assert [len(p.read_text().splitlines()) for p in paths] == [2, 3]


def test_outputs_are_never_written_through_a_symlink(sandbox, tmp_path):
    src = corpus(tmp_path / "in.ndjson")
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    for name, options in (("dl", "dead_letter"), ("ckpt", "checkpoint"), ("junit", "other_outputs")):
        link = tmp_path / f"link-{name}"
        link.symlink_to(target)
        value = [("--junit", str(link))] if options == "other_outputs" else str(link)
        with pytest.raises(UsageError, match="symbolic link"):
            run(sandbox, [src], **{options: value})
    assert target.read_text() == "precious\n" and requests_seen(sandbox) == 0


def test_dead_letter_and_checkpoint_files_are_private(sandbox, tmp_path):
    dl, ckpt = tmp_path / "dl.ndjson", tmp_path / "replay.ckpt"
    run(sandbox, [corpus(tmp_path / "in.ndjson")], dead_letter=str(dl), checkpoint=str(ckpt))
    for path in (dl, ckpt):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path.name} is readable by others"

"""The two-core pre-pass (replay/parallel_scan.py) changes nothing: the same
records, batches, dead-letter lines and counts as the one-process pre-pass,
on an input mixing every kind of line; sandbox over loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdpio_cli.replay import ReplayOptions, parallel_scan, replay
from cdpio_cli.routes.registry import build_sender
from cdpio_cli.sandbox import defaults

FAST = dict(rate=None, concurrency=3, max_retries=0, base_delay=0.001, max_delay=0.01, max_retry_after=0.02)


def _lines(n: int) -> list[str]:
    """Valid messages sent as written, and every line the worker must leave
    to the main process: changed by the rewrites, invalid, unreadable, blank,
    a Segment batch, one too large to send as written, a dead-letter line."""
    out = []
    for i in range(n):
        msg = {"type": "track", "event": "Order Completed", "userId": f"u{i}", "messageId": f"m{i}", "properties": {}}
        kind = i % 23
        if kind == 3:
            del msg["messageId"]  # gets a derived id: re-encoded
        elif kind == 5:
            msg["writeKey"] = "wk_secret_value_1234"  # removed: re-encoded
        elif kind == 7:
            msg["type"] = "nope"  # invalid
        elif kind == 11:
            out.append('{"type": "track", "event": ')  # unreadable
            continue
        elif kind == 13:
            out.append("   ")  # blank
            continue
        elif kind == 17:
            out.append(json.dumps({"batch": [dict(msg, messageId=f"b{i}-{j}") for j in range(3)]}))
            continue
        elif kind == 19:
            msg["properties"] = {"pad": "x" * 7000}  # over the sent-as-written size
        elif kind == 21:
            msg = {"_cdpio": {"reason": "HTTP 500", "file": "x.ndjson", "line": 1}, **msg}
        out.append(json.dumps(msg))
    return out


def _run(sandbox_factory, src: Path, dl: Path) -> tuple:
    sb = sandbox_factory(fail_rate=1.0, fail_status=400, seed=3)  # every batch dead-lettered, in input order
    route = build_sender("segment", sb.endpoint("segment"), {"segment.write_key": defaults.WRITE_KEY}, batch_size=17)
    result = replay([str(src)], route, ReplayOptions(**FAST, skip_invalid=True, dead_letter=str(dl)))
    lines = []
    for line in dl.read_text().splitlines():
        entry = json.loads(line)
        if len(str(entry.get("messageId", ""))) == 36:  # derived from the run's own random seed
            entry["messageId"] = "<derived>"
        lines.append(entry)
    return (result.read, result.invalid, result.failed, result.accepted, result.requests), lines


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_the_two_core_pre_pass_gives_the_one_process_result(sandbox_factory, tmp_path, monkeypatch):
    src = tmp_path / "in.ndjson"
    src.write_text("\ufeff" + "\n".join(_lines(1500)) + "\n", encoding="utf-8")
    one = _run(sandbox_factory, src, tmp_path / "dl-one.ndjson")

    used = []
    start = parallel_scan.PrejudgedLines.__init__

    def spy(self, *args):
        start(self, *args)
        used.append(self)

    monkeypatch.setattr(parallel_scan.PrejudgedLines, "__init__", spy)
    passed = parallel_scan.PrejudgedLines.passed
    judged_here: list[int] = []

    def counted(self, line):
        answer = passed(self, line)
        if answer:
            judged_here.append(line)
        return answer

    monkeypatch.setattr(parallel_scan.PrejudgedLines, "passed", counted)
    # Small blocks, any size, and the test's own sandbox thread allowed: the
    # worker runs only the reader and the judgement, which take no lock.
    monkeypatch.setattr(parallel_scan, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel_scan, "BLOCK_LINES", 40)
    monkeypatch.setattr(parallel_scan, "forkable", lambda: True)
    two = _run(sandbox_factory, src, tmp_path / "dl-two.ndjson")
    assert len(used) == 1
    # The worker's blocks (two of every three of 40 lines) were not parsed here.
    assert len(judged_here) > 500 and all((line - 1) // 40 % 3 for line in judged_here)
    assert two == one
    counts, lines = one
    assert counts[1] > 0 and counts[2] > 1000  # invalid lines and failed (dead-lettered) messages
    assert "wk_secret_value_1234" not in (tmp_path / "dl-two.ndjson").read_text()
    assert {entry["_cdpio"]["line"] for entry in lines} >= {41, 81, 1500}  # worker blocks and the last line

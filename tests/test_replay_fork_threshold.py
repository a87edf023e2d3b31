"""How large a file replay scans on two cores (replay/parallel_scan.py's
thresholds): PARALLEL_BYTES on a route that sends messages as they are, twice
that on a route that maps, where the worker's answers cost more (measured:
benchmarks/README.md, "Start-up")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cdpio_cli.replay import ReplayOptions, parallel_scan, replay
from cdpio_cli.replay.inputs import Source
from cdpio_cli.routes.registry import build_sender
from cdpio_cli.sandbox import defaults

FAST = dict(rate=None, concurrency=1, max_retries=0, base_delay=0.001, max_delay=0.01, max_retry_after=0.02)


def _file(path: Path, size: int) -> Path:
    lines, n = [], 0
    while n < size:
        line = json.dumps({"type": "track", "event": "E", "userId": f"u{len(lines)}", "messageId": f"m{len(lines)}"})
        lines.append(line)
        n += len(line) + 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _workers(monkeypatch) -> list:
    used: list = []
    start = parallel_scan.PrejudgedLines.__init__

    def spy(self, *args):
        start(self, *args)
        used.append(self)

    monkeypatch.setattr(parallel_scan.PrejudgedLines, "__init__", spy)
    monkeypatch.setattr(parallel_scan, "PARALLEL_BYTES", 20_000)
    monkeypatch.setattr(parallel_scan, "forkable", lambda: True)  # the test's sandbox thread allowed
    return used


def test_a_route_that_maps_needs_a_larger_file(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel_scan, "PARALLEL_BYTES", 20_000)
    monkeypatch.setattr(parallel_scan, "forkable", lambda: True)
    middle = Source(str(_file(tmp_path / "30k.ndjson", 30_000)), "30k.ndjson", "30k")
    large = Source(str(_file(tmp_path / "50k.ndjson", 50_000)), "50k.ndjson", "50k")
    small = Source(str(_file(tmp_path / "10k.ndjson", 10_000)), "10k.ndjson", "10k")
    assert parallel_scan.PARALLEL_MAPPED_FACTOR * 20_000 == 40_000
    assert [parallel_scan.eligible(s) for s in (small, middle, large)] == [False, True, True]
    assert [parallel_scan.eligible(s, mapped=True) for s in (small, middle, large)] == [False, False, True]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_replay_forks_by_its_route(sandbox_factory, tmp_path, monkeypatch):
    middle = str(_file(tmp_path / "30k.ndjson", 30_000))
    large = str(_file(tmp_path / "50k.ndjson", 50_000))
    used = _workers(monkeypatch)
    sb = sandbox_factory()

    def run(route_name: str, path: str) -> int:
        if route_name == "segment":
            route = build_sender("segment", sb.endpoint("segment"), {"segment.write_key": defaults.WRITE_KEY})
        else:
            creds = {"customerio.site_id": defaults.SITE_ID, "customerio.track_api_key": defaults.TRACK_API_KEY}
            route = build_sender("customerio", sb.endpoint("track", "us"), creds)
        before = len(used)
        result = replay([path], route, ReplayOptions(**FAST, dead_letter=str(tmp_path / "dl.ndjson")))
        assert result.complete and result.failed == 0 and result.accepted == result.total
        return len(used) - before

    assert run("segment", middle) == 1
    assert run("customerio", middle) == 0
    assert run("customerio", large) == 1

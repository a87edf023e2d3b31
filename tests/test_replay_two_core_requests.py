"""Every request body, on both routes, is the same whether the pre-pass runs
on one core or two.

tests/test_replay_two_core.py compares the requests through `build_request`;
since the ordinary lane is spooled joined and wrapped by `build_joined`, that
spy sees only the Customer.io metrics lane.  This file watches both builders,
so a worker that passes a line it should not (or a cutter that joins items
differently) shows in the bytes that would go on the wire."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from cdpio_cli.replay import ReplayOptions, parallel_scan, replay, scan
from cdpio_cli.replay.validate import fast_valid
from cdpio_cli.routes.registry import build_sender
from cdpio_cli.sandbox import defaults
from tests.test_replay_two_core import _cio_lines, _lines, _two_core

FAST = dict(rate=None, concurrency=1, max_retries=0, base_delay=0.001, max_delay=0.01, max_retry_after=0.02)
DERIVED_ID_LENGTH = 36  # a uuid: derived from the run's own random seed


def _route(sb, name: str):
    if name == "segment":
        return build_sender("segment", sb.endpoint("segment"), {"segment.write_key": defaults.WRITE_KEY}, batch_size=17)
    credentials = {"customerio.site_id": defaults.SITE_ID, "customerio.track_api_key": defaults.TRACK_API_KEY}
    return build_sender("customerio", sb.endpoint("track", "us"), credentials, batch_size=17)


def _bodies(sandbox_factory, name: str, src: Path, dl: Path) -> tuple[list[bytes], str]:
    """Every request's body in send order (concurrency 1), with derived ids
    masked, and the dead-letter file."""
    sb = sandbox_factory(fail_rate=1.0, fail_status=400, seed=3)
    route = _route(sb, name)
    bodies: list[bytes] = []
    joined, plain = route.build_joined, route.build_request

    def spy_joined(items, **kwargs):
        spec = joined(items, **kwargs)
        bodies.append(spec.content or b"")
        return spec

    def spy_plain(items, **kwargs):
        spec = plain(items, **kwargs)
        bodies.append(spec.content or b"")
        return spec

    route.build_joined, route.build_request = spy_joined, spy_plain
    result = replay([str(src)], route, ReplayOptions(**FAST, skip_invalid=True, dead_letter=str(dl)))
    assert result.requests == len(bodies) > 10
    # Segment's sentAt is the time of sending.
    return [re.sub(rb'"sentAt":"[^"]*"', b"", body) for body in bodies], dl.read_text()


def _derived_masked(bodies: list[bytes], text: str) -> tuple[list[bytes], str]:
    derived = set()
    for line in text.splitlines():
        mid = str(json.loads(line).get("messageId", ""))
        if len(mid) == DERIVED_ID_LENGTH:
            derived.add(mid)
    for mid in derived:
        text = text.replace(mid, "<derived>")
        bodies = [b.replace(mid.encode(), b"<derived>") for b in bodies]
    return bodies, text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("name", ["segment", "customerio"])
def test_two_cores_build_the_same_request_bodies_as_one(sandbox_factory, tmp_path, monkeypatch, name):
    src = tmp_path / "in.ndjson"
    lines = _lines(1500) if name == "segment" else _cio_lines(1500)
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    one = _bodies(sandbox_factory, name, src, tmp_path / "dl-one.ndjson")

    used = _two_core(monkeypatch)
    two = _bodies(sandbox_factory, name, src, tmp_path / "dl-two.ndjson")
    assert len(used) == 1
    assert _derived_masked(*two) == _derived_masked(*one)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_worker_that_ignores_the_rewrites_changes_the_segment_bodies(sandbox_factory, tmp_path, monkeypatch):
    """The comparison has teeth: a worker that sends a line as written though
    the rewrites change it (a writeKey to remove, a messageId to derive) puts
    other bytes on the wire."""
    src = tmp_path / "in.ndjson"
    src.write_text("\n".join(_lines(600)) + "\n", encoding="utf-8")
    one = _bodies(sandbox_factory, "segment", src, tmp_path / "dl-one.ndjson")

    def loose(apply, key):
        def judge(msg, raw):
            if type(msg) is not dict or raw is None or len(raw) > scan.RAW_MAX:
                return False
            apply(msg, key, -1)  # changed or not, passed as written
            return fast_valid(msg, len(raw.strip()))

        return judge

    monkeypatch.setattr(scan, "sent_as_written", loose)
    monkeypatch.setattr(parallel_scan, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel_scan, "BLOCK_LINES", 40)
    monkeypatch.setattr(parallel_scan, "forkable", lambda: True)
    two = _bodies(sandbox_factory, "segment", src, tmp_path / "dl-two.ndjson")
    assert _derived_masked(*two)[0] != _derived_masked(*one)[0]

"""The two-core pre-pass (replay/parallel_scan.py) changes nothing: the same
records, batches, dead-letter lines and counts as the one-process pre-pass,
on an input mixing every kind of line; sandbox over loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdpio_cli.replay import ReplayOptions, parallel_scan, replay, scan
from cdpio_cli.replay.validate import fast_valid
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


def _cio_lines(n: int) -> list[str]:
    """The lines of `_lines` and, for the Customer.io route, every kind of
    message the mapping treats differently: identify, page, screen, group,
    alias, a device event, a message the mapping drops, the metrics lane
    (Report Delivery Event, never in a v2 batch) and an identify with only an
    email.  The worker may pass only those mapped to v2 batch operations."""
    base = _lines(n)
    out = []
    for i, line in enumerate(base):
        kind = i % 29
        uid = f"c{i}"
        extra: dict | None = None
        if kind == 2:
            extra = {"type": "identify", "userId": uid, "traits": {"email": f"{uid}@x.io", "plan": "pro"}}
        elif kind == 4:
            extra = {"type": "page", "anonymousId": uid, "name": "Home", "properties": {"url": "https://x.io/"}}
        elif kind == 6:
            extra = {"type": "screen", "userId": uid, "name": "Cart"}
        elif kind == 8:
            extra = {"type": "group", "userId": uid, "groupId": f"g{i}", "traits": {"name": "Acme"}}
        elif kind == 10:
            extra = {"type": "alias", "userId": uid, "previousId": f"old{i}"}
        elif kind == 12:
            extra = {"type": "track", "userId": uid, "event": "Application Installed", "context": {"device": {}}}
        elif kind == 14:  # metrics lane, with its own timestamp (else the time of sending)
            props = {"deliveryId": f"d{i}", "metric": "opened"}
            extra = {"type": "track", "userId": uid, "event": "Report Delivery Event", "properties": props}
            extra["timestamp"] = "2024-05-01T10:00:00.000Z"
        elif kind == 16:  # dropped by the mapping (no deliveryId)
            extra = {"type": "track", "userId": uid, "event": "Report Delivery Event", "properties": {}}
        elif kind == 18:
            extra = {"type": "identify", "traits": {"email": f"{uid}@x.io"}}
        if extra is not None:
            out.append(json.dumps({**extra, "messageId": f"cio-{i}"}))
        out.append(line)
    return out


def _cio_run(sandbox_factory, src: Path, dl: Path) -> tuple:
    """Counts, every request's operations (as sent, in the order of the
    batches) and the dead-letter lines of a Customer.io-route replay."""
    sb = sandbox_factory(fail_rate=1.0, fail_status=400, seed=3)
    route = build_sender(
        "customerio",
        sb.endpoint("track", "us"),
        {"customerio.site_id": defaults.SITE_ID, "customerio.track_api_key": defaults.TRACK_API_KEY},
        batch_size=17,
    )
    sent: list[tuple[str, list[bytes]]] = []
    build = route.build_request

    def spy(items, *, lane="batch", sent_at=None):
        sent.append((lane, list(items)))
        return build(items, lane=lane, sent_at=sent_at)

    route.build_request = spy
    result = replay(
        [str(src)], route, ReplayOptions(**dict(FAST, concurrency=1), skip_invalid=True, dead_letter=str(dl))
    )
    lines = dl.read_text().splitlines()
    # messageIds derived from the run's own random seed differ between runs.
    derived = {json.loads(x)["messageId"] for x in lines if len(str(json.loads(x).get("messageId", ""))) == 36}
    text = "\n".join(lines)
    body = repr(sent)
    for mid in derived:
        text, body = text.replace(mid, "<derived>"), body.replace(mid, "<derived>")
    counts = (result.read, result.invalid, result.dropped_by_mapping, result.failed, result.accepted, result.requests)
    return counts, body, text


def _two_core(monkeypatch) -> list:
    used: list = []
    start = parallel_scan.PrejudgedLines.__init__

    def spy(self, *args):
        start(self, *args)
        used.append(self)

    monkeypatch.setattr(parallel_scan.PrejudgedLines, "__init__", spy)
    monkeypatch.setattr(parallel_scan, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel_scan, "BLOCK_LINES", 40)
    monkeypatch.setattr(parallel_scan, "forkable", lambda: True)
    return used


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def _lines_the_worker_mapped(monkeypatch) -> list[int]:
    """The lines whose verdict (the worker's operations) this process took, in order."""
    verdict = parallel_scan.PrejudgedLines.verdict
    mapped_here: list[int] = []

    def counted(self, line):
        mapped_here.append(line)
        return verdict(self, line)

    monkeypatch.setattr(parallel_scan.PrejudgedLines, "verdict", counted)
    return mapped_here


def test_the_customerio_route_on_two_cores_sends_what_one_process_sends(sandbox_factory, tmp_path, monkeypatch):
    src = tmp_path / "in.ndjson"
    src.write_text("\n".join(_cio_lines(1500)) + "\n", encoding="utf-8")
    one = _cio_run(sandbox_factory, src, tmp_path / "dl-one.ndjson")

    used = _two_core(monkeypatch)
    mapped_here = _lines_the_worker_mapped(monkeypatch)
    two = _cio_run(sandbox_factory, src, tmp_path / "dl-two.ndjson")
    assert len(used) == 1 and used[0].share == parallel_scan.SHARE_MAPPED
    share, period = parallel_scan.SHARE_MAPPED
    # The worker mapped most of its blocks' lines; none of this process's own.
    assert len(mapped_here) > 500 and all((line - 1) // 40 % period >= period - share for line in mapped_here)
    assert two == one
    counts, body, text = one
    assert counts[1] > 0 and counts[2] > 0 and counts[3] > 1000  # invalid, dropped, failed
    assert "'metrics'" in body and "wk_secret_value_1234" not in text + body


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
@pytest.mark.parametrize("loosened", ["any lane", "rewritten lines"])
def test_a_looser_worker_judgement_on_the_customerio_route_is_caught(sandbox_factory, tmp_path, monkeypatch, loosened):
    """The comparison above has teeth: a worker that also passes the metrics
    lane, or lines the rewrites change, gives a different result."""
    src = tmp_path / "in.ndjson"
    src.write_text("\n".join(_cio_lines(600)) + "\n", encoding="utf-8")
    one = _cio_run(sandbox_factory, src, tmp_path / "dl-one.ndjson")
    used = _two_core(monkeypatch)

    def loose(apply, key, prepare):
        def judge(msg, raw):
            if type(msg) is not dict or "_cdpio" in msg or raw is None or len(raw) > scan.RAW_MAX:
                return None
            if loosened == "rewritten lines":
                apply(msg, key, -1)
            elif apply(msg, key, -1) or not fast_valid(msg, len(raw.strip())):
                return None
            prepared = prepare(msg, raw.strip())
            return prepared.items if prepared.dropped is None and prepared.problem is None else None

        return judge

    monkeypatch.setattr(scan, "mapped_as_written", loose)
    two = _cio_run(sandbox_factory, src, tmp_path / "dl-two.ndjson")
    assert len(used) == 1
    assert two != one


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_gzipped_input_is_read_on_two_cores_with_the_same_result(sandbox_factory, tmp_path, monkeypatch):
    """Both processes undo gzip the way the fixture reader does (a name
    without `.gz` too), so the result is the one-process one."""
    import gzip

    src = tmp_path / "in.ndjson"  # gzipped under a plain name: sniffed by its magic bytes
    src.write_bytes(gzip.compress(("\ufeff" + "\n".join(_cio_lines(900)) + "\n").encode("utf-8")))
    one = _cio_run(sandbox_factory, src, tmp_path / "dl-one.ndjson")
    used = _two_core(monkeypatch)
    mapped_here = _lines_the_worker_mapped(monkeypatch)
    two = _cio_run(sandbox_factory, src, tmp_path / "dl-two.ndjson")
    assert len(used) == 1 and len(mapped_here) > 300  # the worker read the gzip too
    assert two == one and one[0][4] + one[0][3] > 700  # accepted + failed

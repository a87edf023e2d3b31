"""The main pass's hand-off (batching.Batcher.take): senders take the spooled
batches themselves, under one lock, so each batch leaves exactly once and in
input order, batches that need no request are resolved on the way, and no
taker runs more than the window ahead of the commit point."""

from __future__ import annotations

import io
import threading

from cdpio_cli.replay.batching import Batch, Batcher, BatchSinks
from cdpio_cli.replay.cutting import Cutter
from cdpio_cli.replay.options import ReplayResult
from cdpio_cli.routes.registry import build_sender


def _spool(records: list[tuple[str, int]]) -> io.BytesIO:
    """("ok", n): a batch of n messages; ("dl", n): a batch of n dead-letter lines only."""
    credentials = {"segment.write_key": "k" * 32}
    route = build_sender("segment", "http://127.0.0.1:9", credentials, batch_size=1000)
    spool = io.BytesIO()
    cutter = Cutter(route, spool, ["in.ndjson"])
    index = 0
    for kind, n in records:
        for _ in range(n):
            if kind == "ok":
                cutter.add(0, index, index + 1, None, b'{"i":%d}' % index)
            else:
                cutter.add_resolved(0, index, b'{"bad":%d}\n' % index)
            index += 1
        cutter.flush()
    spool.seek(0)
    return spool


def _batcher(spool: io.BytesIO, window: int, complete) -> tuple[Batcher, BatchSinks]:
    semaphore = threading.BoundedSemaphore(window)
    sinks = BatchSinks(lambda b: True, complete, semaphore, threading.Event(), threading.Lock(), ReplayResult())
    batcher = Batcher(["in.ndjson"], [0], sinks, dry_run=False)
    batcher.open(spool)
    return batcher, sinks


def test_takers_get_each_batch_once_in_order_and_batches_without_a_request_resolve_on_the_way():
    plan = [("ok", 2), ("dl", 1), ("ok", 1), ("dl", 2), ("dl", 1), ("ok", 3)] * 40
    resolved: list[Batch] = []
    window: list[threading.BoundedSemaphore] = []

    def complete(b: Batch) -> None:
        resolved.append(b)
        window[0].release()

    batcher, sinks = _batcher(_spool(plan), 8, complete)
    window.append(sinks.window)
    taken: list[list[int]] = [[] for _ in range(4)]

    def sender(mine: list[int]) -> None:
        while True:
            b = batcher.take()
            if b is None:
                return
            mine.append(b.seq)
            complete(b)

    threads = [threading.Thread(target=sender, args=(mine,)) for mine in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    sent = sorted(seq for mine in taken for seq in mine)
    assert all(mine == sorted(mine) for mine in taken)  # each taker sees input order
    assert sent == [i for i, (kind, _) in enumerate(plan) if kind == "ok"]  # once each
    no_request = [b.seq for b in resolved if not b.n_items]
    assert no_request == [i for i, (kind, _) in enumerate(plan) if kind == "dl"]
    assert sinks.result.read == sum(n for _, n in plan)


def test_take_waits_for_the_window_and_returns_none_when_the_run_stops():
    batcher, sinks = _batcher(_spool([("ok", 1)] * 5), 2, lambda b: None)
    first, second = batcher.take(), batcher.take()
    assert (first.seq, second.seq) == (0, 1)  # type: ignore[union-attr]
    got: list[Batch | None] = []
    waiting = threading.Thread(target=lambda: got.append(batcher.take()))
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive() and not got  # two uncommitted: the window is full
    sinks.window.release()  # one commits
    waiting.join(5)
    assert [b.seq for b in got] == [2]  # type: ignore[union-attr]
    stopping = threading.Thread(target=lambda: got.append(batcher.take()))
    stopping.start()
    stopping.join(0.2)
    assert stopping.is_alive()
    sinks.stop.set()
    stopping.join(5)
    assert got[-1] is None and sinks.result.read == 3

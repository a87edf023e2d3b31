"""Lint on two cores, for large inputs.

The first `PARALLEL_AFTER` records are linted here, in one process (small
inputs never pay a process start-up).  Past that, one forked worker computes
each message's own verdict (`verdict.message_verdict`: the spec rules and the
destination's mapping, free of data-set state) from the raw NDJSON lines, while
this process reads the records and keeps the data-set aggregates.

Everything runs from the main thread (no helper threads to contend for the
GIL): chunks of raw lines go down a pipe as bytes, at most `_CHUNK_BYTES`
each, so with at most `_IN_FLIGHT` chunks unanswered a send never blocks; the
worker re-parses them and answers with the verdicts of the messages that have
findings only.  When the worker is behind, this process computes a chunk's
verdicts itself, so both cores stay busy.  Chunks are applied through
`Linter.add` in record order, so the result is the one-process result; records
without a raw line (batches, JSON arrays, YAML, unreadable lines) are always
computed here, in their place.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import orjson

from cdpio_cli.fixtures import Record
from cdpio_cli.lint.engine import Linter
from cdpio_cli.lint.verdict import CLEAN, Verdict, message_verdict

# Below this many records lint runs in one process.
PARALLEL_AFTER = 20_000
# A chunk's raw lines (under a Linux pipe's 64 KiB, so a send never waits for the worker).
_CHUNK_BYTES = 60_000
# Chunks sent and not yet answered; the pipe holds at most one unread.
_IN_FLIGHT = 2
# Chunks held in record order before waiting for the worker (bounds memory).
_MAX_PENDING = 32


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _worker(tasks: Connection, answers: Connection) -> None:
    """Verdicts for chunks of NDJSON lines: [(index in chunk, verdict)] for the
    messages with findings; an empty chunk ends the worker."""
    # The main process handles ^C and SIGTERM (cli/signals.py) and closes the
    # pipe, which ends this loop; a SIGTERM sent to the whole group just ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    loads = orjson.loads
    while True:
        try:
            data = tasks.recv_bytes()
        except EOFError:
            return
        if not data:
            return
        found: list[tuple[int, Verdict]] = []
        for i, line in enumerate(data.split(b"\n")[:-1]):
            verdict = message_verdict(loads(line))
            if verdict[0] or verdict[1] or verdict[2]:
                found.append((i, verdict))
        answers.send(found)


class _Chunk:
    """Records in order; `verdicts` is None while the worker has them."""

    __slots__ = ("records", "verdicts")

    def __init__(self, records: list[Record], verdicts: list[Verdict | None] | None) -> None:
        self.records = records
        self.verdicts = verdicts


class _Pipeline:
    def __init__(self, linter: Linter) -> None:
        self.linter = linter
        ctx = multiprocessing.get_context("fork")
        task_recv, self.tasks = ctx.Pipe(duplex=False)
        self.answers, answer_send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_worker, args=(task_recv, answer_send), daemon=True)
        self.process.start()
        task_recv.close()
        answer_send.close()
        self.pending: deque[_Chunk] = deque()
        self.remote: deque[_Chunk] = deque()  # sent, unanswered, in order
        self.sent = 0  # chunks the worker computed

    def close(self) -> None:
        """Stop the worker (an empty chunk; on an error or ^C, closing the pipe does)."""
        try:
            self.tasks.send_bytes(b"")
        except OSError:
            pass
        self.tasks.close()
        self.answers.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def submit(self, records: list[Record], raws: list[bytes]) -> None:
        """Send a chunk to the worker, or (when it is behind) compute it here."""
        self._receive(block=False)
        if len(self.remote) < _IN_FLIGHT:
            chunk = _Chunk(records, None)
            self.tasks.send_bytes(b"".join(raws))
            self.remote.append(chunk)
            self.sent += 1
        else:
            chunk = _Chunk(records, [None if r.error is not None else message_verdict(r.message) for r in records])
        self.pending.append(chunk)
        self._apply_ready()
        while len(self.pending) > _MAX_PENDING:
            self._receive(block=True)
            self._apply_ready()

    def local(self, record: Record) -> None:
        """A record without a raw line: computed here, in its place."""
        if self.pending:
            verdict = None if record.error is not None else message_verdict(record.message)
            self.pending.append(_Chunk([record], [verdict]))
        else:
            self.linter.add(record)

    def drain(self) -> None:
        while self.pending:
            self._receive(block=True)
            self._apply_ready()

    def _receive(self, *, block: bool) -> None:
        while self.remote and (block or self.answers.poll()):
            found: list[tuple[int, Verdict]] = self.answers.recv()
            chunk = self.remote.popleft()
            verdicts: list[Verdict | None] = [CLEAN] * len(chunk.records)
            for i, verdict in found:
                verdicts[i] = verdict
            chunk.verdicts = verdicts
            block = False

    def _apply_ready(self) -> None:
        add = self.linter.add
        pending = self.pending
        while pending and (verdicts := pending[0].verdicts) is not None:
            for record, verdict in zip(pending.popleft().records, verdicts, strict=True):
                add(record, verdict)


def lint_parallel(linter: Linter, records: Iterable[Record], *, after: int = PARALLEL_AFTER) -> None:
    """Feed `records` to `linter` in order, on two cores past `after` records."""
    it = iter(records)
    add = linter.add
    for n, record in enumerate(it, 1):
        add(record)
        if n >= after:
            break
    else:
        return
    # The worker starts with the first raw NDJSON line (plain message dicts,
    # YAML and JSON arrays have none: they stay in this process).
    for record in it:
        if record.raw is not None and record.error is None and len(record.raw) < _CHUNK_BYTES:
            break
        add(record)
    else:
        return
    # Records wait in chunks for their verdicts, so more objects live long
    # enough to reach the oldest generation and trigger full collections:
    # freezing what exists now (modules, the aggregates so far) keeps those
    # collections from walking it again and again.
    gc.freeze()
    pipeline = _Pipeline(linter)
    try:
        _feed(pipeline, itertools.chain((record,), it))
        pipeline.drain()
    finally:
        pipeline.close()
        gc.unfreeze()


def _feed(pipeline: _Pipeline, it: Iterator[Record]) -> None:
    records: list[Record] = []
    raws: list[bytes] = []
    size = 0
    for record in it:
        raw: Any = record.raw
        if raw is None or record.error is not None or len(raw) >= _CHUNK_BYTES:
            if records:
                pipeline.submit(records, raws)
                records, raws, size = [], [], 0
            pipeline.local(record)
            continue
        if not raw.endswith(b"\n"):
            raw += b"\n"
        if size + len(raw) > _CHUNK_BYTES:
            pipeline.submit(records, raws)
            records, raws, size = [], [], 0
        records.append(record)
        raws.append(raw)
        size += len(raw)
    if records:
        pipeline.submit(records, raws)

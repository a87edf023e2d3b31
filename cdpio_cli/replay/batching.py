"""Batching: the reader thread cuts the spooled records into requests by
count and bytes (and lane), in input order, never running more than a window
of batches ahead of the commit point."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO, Any

import orjson

from cdpio_cli import messages
from cdpio_cli.replay.deadletter import dead_letter_line, invalid_meta
from cdpio_cli.replay.options import EXAMPLES, Example, ReplayResult
from cdpio_cli.replay.rewrite import shift_timestamps
from cdpio_cli.replay.route import Route, is_passthrough
from cdpio_cli.replay.spool import INVALID, MAPPED, SpoolTables, read_spool
from cdpio_cli.routes.segment import Prepared


@dataclass
class Batch:
    seq: int
    end_pos: list[int]  # per source: records consumed after this batch
    lane: str = "batch"
    items: list[bytes] = field(default_factory=list)
    owners: list[int] | None = None  # item -> message index (None: one item each)
    msgs: list[tuple[str, int, bytes]] = field(default_factory=list)  # (file, line, encoded message)
    nbytes: int = 0
    # Resolved by the reader (no request): invalid / dropped records.
    dl_lines: list[bytes] = field(default_factory=list)
    invalid: int = 0
    dropped: int = 0
    records: int = 0
    # Filled in by a sender.
    accepted: int = 0
    failed: int = 0
    failed_unreachable: int = 0


@dataclass
class BatchSinks:
    """Where the batcher hands its batches, and what it shares with the run."""

    put: Callable[[Batch], bool]  # to the senders; False: the run is stopping
    complete: Callable[[Batch], None]  # resolved without a request
    window: threading.BoundedSemaphore  # batches not yet committed, at most
    stop: threading.Event
    lock: threading.Lock
    result: ReplayResult


class Batcher:
    def __init__(
        self,
        route: Route,
        tables: SpoolTables,
        displays: list[str],
        start: list[int],
        sinks: BatchSinks,
        *,
        dry_run: bool,
    ):
        self.route = route
        self.tables = tables
        self.displays = displays
        self.pos = list(start)  # per source: records consumed so far
        self.sinks = sinks
        self.dry_run = dry_run
        self.seq = 0
        self.batch: Batch | None = None
        self.passthrough = is_passthrough(route)
        self.limit = route.lane_limits("batch")
        self.envelope, self.max_bytes = route.envelope_bytes, route.max_batch_bytes

    def run(self, spool: IO[bytes], shift: timedelta | None) -> None:
        """Cut the spooled records into batches, in input order."""
        stop = self.sinks.stop
        for si, index, line, kind, payload in read_spool(spool):
            if stop.is_set():
                return
            self.pos[si] = index + 1
            if self.batch is None:
                self.batch = self._new_batch("batch")
                if self.batch is None:
                    return
            if not self._add(self.batch, si, index, line, kind, payload, shift):
                return
        self._flush()

    def _new_batch(self, lane: str) -> Batch | None:
        # Back-pressure: never run more than `window` batches ahead of
        # the commit point (bounded memory, bounded checkpoint lag).
        while not self.sinks.window.acquire(timeout=0.05):
            if self.sinks.stop.is_set():
                return None
        return Batch(seq=self.seq, end_pos=list(self.pos), lane=lane)

    def _flush(self) -> bool:
        """Hand the current batch on; False when the run is stopping."""
        b, self.batch = self.batch, None
        if b is None:
            return True
        b.end_pos = list(self.pos)
        self.seq += 1
        sinks = self.sinks
        with sinks.lock:
            sinks.result.read += b.records
        if self.dry_run or not b.items:
            if b.items:
                with sinks.lock:
                    sinks.result.requests += 1
                    sinks.result.would_send += len(b.msgs)
            sinks.complete(b)
            return True
        return sinks.put(b)

    def _add(
        self, batch: Batch, si: int, index: int, line: int, kind: int, payload: bytes, shift: timedelta | None
    ) -> bool:
        """Add one record; False when the run is stopping."""
        batch.records += 1
        display = self.displays[si]
        if kind == INVALID:
            data, value, extra, reason = self.tables.unpack_invalid(payload)
            meta = invalid_meta(reason, display, line)
            if extra:
                meta.update(extra)
            batch.invalid += 1
            batch.dl_lines.append(dead_letter_line(data, value, meta))
            return True
        data, msg, prepared = payload, None, None
        if kind == MAPPED:
            data, prepared = self.tables.unpack_prepared(payload)
        elif shift is not None:
            msg = orjson.loads(data)
            shift_timestamps(msg, shift)
            data = messages.encode(msg)
            if len(data) > messages.MAX_MESSAGE_BYTES:
                reason = f"message is {len(data):,} bytes after shifting timestamps"
                batch.invalid += 1
                batch.dl_lines.append(dead_letter_line(data, msg, invalid_meta(reason, display, line)))
                return True
        if self.passthrough and prepared is None and self._fits(batch, data):
            # Segment-shaped routes send the message as encoded.
            batch.msgs.append((display, line, data))
            batch.items.append(data)
            batch.nbytes += len(data) + 1
            return len(batch.items) < self.limit or self._flush()
        if prepared is None:
            if msg is None:
                msg = orjson.loads(data)
            prepared = self.route.prepare(msg, data)
        return self._add_prepared(batch, si, index, display, line, data, msg, prepared)

    def _fits(self, batch: Batch, data: bytes) -> bool:
        return not batch.items or (
            len(batch.items) < self.limit and batch.nbytes + len(data) + 1 + self.envelope <= self.max_bytes
        )

    def _add_prepared(
        self, batch: Batch, si: int, index: int, display: str, line: int, data: bytes, msg: Any, prepared: Prepared
    ) -> bool:
        result = self.sinks.result
        if prepared.dropped is not None:
            batch.dropped += 1
            if len(result.drop_examples) < EXAMPLES:
                result.drop_examples.append(Example(display, line, prepared.dropped))
            return True
        if prepared.problem is not None:
            batch.invalid += 1
            batch.dl_lines.append(dead_letter_line(data, msg, invalid_meta(prepared.problem, display, line)))
            if len(result.invalid_examples) < EXAMPLES:
                result.invalid_examples.append(Example(display, line, prepared.problem))
            return True
        size = sum(len(i) + 1 for i in prepared.items)
        lane_limit = self.route.lane_limits(prepared.lane)
        if batch.items and (
            prepared.lane != batch.lane
            or len(batch.items) + len(prepared.items) > lane_limit
            or batch.nbytes + size + self.envelope > self.max_bytes
        ):
            cut = self._cut_before(batch, si, index, prepared.lane)
            if cut is None:
                return False
            batch = cut
        if not batch.items:
            batch.lane = prepared.lane
        mi = len(batch.msgs)
        batch.msgs.append((display, line, data))
        if not self.passthrough:
            if batch.owners is None:
                batch.owners = list(range(len(batch.items)))
            batch.owners.extend([mi] * len(prepared.items))
        batch.items.extend(prepared.items)
        batch.nbytes += size
        return len(batch.items) < lane_limit or self._flush()

    def _cut_before(self, batch: Batch, si: int, index: int, lane: str) -> Batch | None:
        """Flush the batch without this record (it belongs to the next one),
        and start the next; None when the run is stopping."""
        self.pos[si] = index
        batch.records -= 1
        if not self._flush():
            return None
        self.pos[si] = index + 1
        self.batch = self._new_batch(lane)
        if self.batch is not None:
            self.batch.records += 1
        return self.batch

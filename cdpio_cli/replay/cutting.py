"""Cutting batches in the pre-pass: records are cut into requests by count,
bytes and lane, in input order, and each batch is spooled ready to send
(spool.SpoolBatch), so the main pass's reader does no per-message work."""

from __future__ import annotations

from typing import IO, Any

import orjson

from cdpio_cli.replay.deadletter import dead_letter_line, invalid_meta
from cdpio_cli.replay.options import EXAMPLES
from cdpio_cli.replay.route import Route, is_passthrough
from cdpio_cli.replay.spool import EXAMPLE_DROPPED, EXAMPLE_INVALID, LANE_BATCH, SpoolBatch
from cdpio_cli.routes.segment import Prepared


def invalid_line(
    data: bytes | None, msg: Any, extra: dict[str, Any] | None, reason: str, display: str, line: int
) -> bytes:
    """The dead-letter line of a record the pre-pass judged invalid.  The
    value and the extra keys are what JSON keeps of them (`default=str`: a
    YAML date is written as its text)."""
    value, extra = orjson.loads(orjson.dumps([None if data is not None else msg, extra], default=str))
    meta = invalid_meta(reason, display, line)
    if extra:
        meta.update(extra)
    return dead_letter_line(data, value, meta)


class Cutter:
    """The batch being cut, and the rules that end it."""

    def __init__(self, route: Route, spool: IO[bytes], displays: list[str]):
        self.route = route
        self.spool = spool
        self.displays = displays
        self.passthrough = is_passthrough(route)
        self.limit = self.batch_limit = route.lane_limits(LANE_BATCH)
        self.envelope, self.max_bytes = route.envelope_bytes, route.max_batch_bytes
        self.room = self.max_bytes - self.envelope  # for the items of a batch, each with its comma
        # A route that maps may encode a common message's one operation directly
        # (`encoded_item`: bytes, or None to ask `prepare`), without a `Prepared`.
        self.encoded_item = getattr(route, "encoded_item", None)
        self.max_item = route.max_item_bytes
        self._examples = [0, 0]  # per kind: recorded so far (the reader reports at most EXAMPLES)
        self._start("batch")

    def _start(self, lane: str) -> None:
        # Its records: `lines` (messages), `invalid` and `dropped`.
        self.pos: dict[int, int] = {}  # source -> records consumed after this batch
        self.lane = lane
        self.runs: list[list[int]] = []
        self.run_source = -1
        self.lines: list[int] = []
        self.items: list[bytes] = []
        self.msgs: list[bytes] = []  # when the route maps: each message as encoded
        self.owners: list[int] | None = None
        self.nbytes = 0
        self.dl_lines: list[bytes] = []
        self.invalid = 0
        self.dropped = 0
        self.examples: list[list[Any]] = []

    def add(self, si: int, index: int, line: int, msg: Any, data: bytes) -> None:
        """A valid message, rewritten and encoded."""
        self.pos[si] = index + 1
        items = self.items
        nbytes = self.nbytes + len(data) + 1
        # (A batch holds fewer than `limit` items here: it is spooled when it reaches it.)
        if self.passthrough and (nbytes <= self.room or not items):
            # Segment-shaped routes send the message as encoded.
            if si != self.run_source:
                self.runs.append([si, len(self.lines)])
                self.run_source = si
            self.lines.append(line)
            items.append(data)
            self.nbytes = nbytes
            if len(items) >= self.limit:
                self.flush()
            return
        if msg is None:  # sent as written without being parsed here (parallel_scan.py)
            msg = orjson.loads(data)
        self._add_prepared(si, index, line, msg, data, self.route.prepare(msg, data))

    def add_mapped(self, si: int, index: int, line: int, msg: Any, data: bytes) -> None:
        """A valid message on a route that maps: its common shape encoded
        directly (`encoded_item`, as `prepare` would), anything else through `prepare`."""
        encoded = self.encoded_item
        if encoded is not None and type(msg) is dict:
            item = encoded(msg)
            if item is not None and len(item) <= self.max_item:
                self.add_items(si, index, line, data, (item,))
                return
        prepared = self.route.prepare(msg, data)
        if prepared.dropped is None and prepared.problem is None:  # add_prepared's common case, one call
            self.add_items(si, index, line, data, prepared.items, prepared.lane)
        else:
            self.add_prepared(si, index, line, msg, data, prepared)

    def add_resolved(self, si: int, index: int, dl_line: bytes) -> None:
        """A record resolved without a request: invalid, dead-lettered with `dl_line`."""
        self.pos[si] = index + 1
        self.invalid += 1
        self.dl_lines.append(dl_line)

    def add_prepared(self, si: int, index: int, line: int, msg: Any, data: bytes, prepared: Prepared) -> None:
        """A valid message the route made ready (mapped)."""
        self.pos[si] = index + 1
        self._add_prepared(si, index, line, msg, data, prepared)

    def _add_prepared(self, si: int, index: int, line: int, msg: Any, data: bytes, prepared: Prepared) -> None:
        if prepared.dropped is not None:
            self.dropped += 1
            self._example(EXAMPLE_DROPPED, si, line, prepared.dropped)
            return
        if prepared.problem is not None:
            self.invalid += 1
            meta = invalid_meta(prepared.problem, self.displays[si], line)
            self.dl_lines.append(dead_letter_line(data, msg, meta))
            self._example(EXAMPLE_INVALID, si, line, prepared.problem)
            return
        self.add_items(si, index, line, data, prepared.items, prepared.lane)

    def add_items(
        self, si: int, index: int, line: int, data: bytes, items: list[bytes] | tuple[bytes], lane: str = LANE_BATCH
    ) -> None:
        """A valid message the route mapped to `items` (as `prepare` gave them,
        or the two-core worker's, parallel_scan.py)."""
        self.pos[si] = index + 1
        n = len(items)
        size = (len(items[0]) if n == 1 else sum(map(len, items))) + n
        batch = self.items
        lane_limit = self.batch_limit if lane == LANE_BATCH else self.route.lane_limits(lane)
        if batch and (
            lane != self.lane or len(batch) + n > lane_limit or self.nbytes + size + self.envelope > self.max_bytes
        ):
            # The record belongs to the next batch: end this one before it.
            self.pos[si] = index
            self.flush()
            self.pos[si] = index + 1
            batch = self.items
        if not batch:
            self.lane = lane
        if si != self.run_source:
            self.runs.append([si, len(self.lines)])
            self.run_source = si
        mi = len(self.lines)
        self.lines.append(line)
        if not self.passthrough:
            self.msgs.append(data)
            owners = self.owners
            if owners is None and n != 1:  # until a message maps to other than one item: item i is message i
                owners = self.owners = list(range(len(batch)))
            if owners is not None:
                owners.extend([mi] * n)
        batch.extend(items)
        self.nbytes += size
        if len(batch) >= lane_limit:
            self.flush()

    def _example(self, kind: int, si: int, line: int, reason: str) -> None:
        if self._examples[kind] < EXAMPLES:
            self._examples[kind] += 1
            self.examples.append([kind, si, line, reason])

    def flush(self) -> None:
        """Spool the batch (if it holds any record) and start the next."""
        records = len(self.lines) + self.invalid + self.dropped
        if records:
            items = self.items
            # The ordinary lane's items joined as the request carries them (spool.SpoolBatch: `joined`).
            data = b",".join(items) if self.lane == LANE_BATCH else b"".join(items)
            if self.msgs or self.dl_lines:
                data = b"".join((data, *self.msgs, *self.dl_lines))
            SpoolBatch(
                records=records,
                pos=[[si, pos] for si, pos in self.pos.items()],
                lane=self.lane,
                runs=self.runs,
                lines=self.lines,
                sizes=list(map(len, items)),
                msg_sizes=None if self.passthrough else list(map(len, self.msgs)),
                owners=self.owners,
                dl_sizes=list(map(len, self.dl_lines)),
                invalid=self.invalid,
                dropped=self.dropped,
                examples=self.examples,
                data=data,
            ).write(self.spool)
        self._start("batch")

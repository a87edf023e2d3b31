"""The hand-off: the senders take the batches the pre-pass spooled
(cutting.py) one at a time under one lock (`Batcher.take`), in input order,
never more than a window of batches ahead of the commit point.  It does no
per-message work: a message's file, line and bytes are looked up only when it
fails (`Batch.message`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from cdpio_cli.replay.options import EXAMPLES, Example, ReplayResult
from cdpio_cli.replay.spool import EXAMPLE_DROPPED, Pieces, SpoolBatch, read_spool


@dataclass(eq=False, repr=False)
class Batch:
    """One request's worth of messages cut by the pre-pass, and what became of them."""

    seq: int
    end_pos: list[int]  # per source: records consumed after this batch
    lane: str = "batch"
    items: list[bytes] = field(default_factory=list)
    # Or, in the ordinary lane (spool.LANE_BATCH), the items joined with
    # b"," as the request carries them, and each one's size.
    joined: bytes | None = None
    sizes: list[int] = field(default_factory=list)
    pieces: Pieces | None = None  # `joined` cut into its items, made on the batch's first failure
    owners: list[int] | None = None  # item -> message index (None: one item each)
    count: int = 0  # messages the request carries
    # Where each message comes from, for its dead-letter line: see `message`.
    displays: list[str] = field(default_factory=list)
    runs: list[list[int]] = field(default_factory=list)  # (source, first message) per change of source
    lines: list[int] = field(default_factory=list)
    msgs: Sequence[bytes] | None = None  # each message as encoded (None: the items are the messages)
    # Resolved by the pre-pass (no request): invalid / dropped records.
    dl_lines: list[bytes] = field(default_factory=list)
    invalid: int = 0
    dropped: int = 0
    records: int = 0
    # Filled in by a sender.
    accepted: int = 0
    failed: int = 0
    failed_unreachable: int = 0

    @property
    def n_items(self) -> int:
        """Items the request carries (none: the batch needs no request)."""
        return len(self.sizes) if self.joined is not None else len(self.items)

    def message(self, mi: int) -> tuple[str, int, bytes]:
        """(file, line, encoded message) of message `mi`."""
        si = self.runs[0][0]
        for run_si, first in self.runs:
            if first > mi:
                break
            si = run_si
        if self.msgs is not None:
            data = self.msgs[mi]
        elif self.joined is not None:  # one item per message, joined with b","
            if self.pieces is None:
                self.pieces = Pieces(self.joined, 0, self.sizes, gap=1)
            data = self.pieces[mi]
        else:
            data = self.items[mi]
        return self.displays[si], self.lines[mi], data


@dataclass(eq=False, repr=False)
class BatchSinks:
    """Where the batcher hands its batches, and what it shares with the run."""

    put: Callable[[Batch], bool]  # to the senders; False: the run is stopping
    complete: Callable[[Batch], None]  # resolved without a request
    window: threading.BoundedSemaphore  # batches not yet committed, at most
    stop: threading.Event
    lock: threading.Lock
    result: ReplayResult


class Batcher:
    def __init__(self, displays: list[str], start: list[int], sinks: BatchSinks, *, dry_run: bool):
        self.displays = displays
        self.pos = list(start)  # per source: records consumed so far
        self.sinks = sinks
        self.dry_run = dry_run
        self.seq = 0
        self._records: Iterator[SpoolBatch] = iter(())
        self._taking = threading.Lock()  # one taker reads the spool at a time

    def run(self, spool: IO[bytes]) -> None:
        """Hand every spooled batch that needs a request to `sinks.put`, in input order."""
        self.open(spool)
        while (b := self.take()) is not None:
            if not self.sinks.put(b):
                return

    def open(self, spool: IO[bytes]) -> None:
        self._records = read_spool(spool)

    def take(self) -> Batch | None:
        """The next batch that needs a request (resolving, on the way, those
        that need none); None at the end or when the run is stopping.  Called
        by every sender: the spool is read under one lock, so batches leave
        in input order with no thread between the spool and the senders; the
        batch's pieces are cut outside it."""
        with self._taking:
            claimed = self._claim()
        return None if claimed is None else self._batch(*claimed)

    def _claim(self) -> tuple[SpoolBatch, int, list[int]] | None:
        """The next spooled batch that needs a request, its number and end positions."""
        sinks = self.sinks
        stop, window, result, pos = sinks.stop, sinks.window, sinks.result, self.pos
        for sb in self._records:
            if stop.is_set():
                return None
            # Back-pressure: never run more than `window` batches ahead of
            # the commit point (bounded memory, bounded checkpoint lag).
            while not window.acquire(timeout=0.05):
                if stop.is_set():
                    return None
            for si, at in sb.pos:
                pos[si] = at
            seq = self.seq
            self.seq += 1
            for kind, si, line, reason in sb.examples:
                examples = result.drop_examples if kind == EXAMPLE_DROPPED else result.invalid_examples
                if len(examples) < EXAMPLES:
                    examples.append(Example(self.displays[si], line, reason))
            n_items = len(sb.sizes)  # items the request carries (Batch.n_items)
            with sinks.lock:
                result.read += sb.records
                if self.dry_run and n_items:
                    result.requests += 1
                    result.would_send += len(sb.lines)
            if n_items and not self.dry_run:
                return sb, seq, list(pos)
            sinks.complete(self._batch(sb, seq, list(pos)))
        return None

    def _batch(self, sb: SpoolBatch, seq: int, end_pos: list[int]) -> Batch:
        items, msgs, dl_lines = sb.parts()
        return Batch(
            seq=seq,
            end_pos=end_pos,
            lane=sb.lane,
            items=items if type(items) is list else [],
            joined=items if type(items) is bytes else None,
            sizes=sb.sizes,
            owners=sb.owners,
            count=len(sb.lines),
            displays=self.displays,
            runs=sb.runs,
            lines=sb.lines,
            msgs=msgs,
            dl_lines=dl_lines,
            invalid=sb.invalid,
            dropped=sb.dropped,
            records=sb.records,
        )

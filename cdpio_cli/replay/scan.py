"""The pre-pass: one streaming pass over the input (constant memory) that
validates, rewrites and counts every message, and spools the records cut
into batches ready to send (cutting.Cutter), so the input is parsed once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from cdpio_cli import messages
from cdpio_cli.fixtures import Record
from cdpio_cli.fixtures.ndjson import Unparsed, iter_ndjson_unparsed
from cdpio_cli.replay.cutting import LANE_BATCH, Cutter, invalid_line
from cdpio_cli.replay.deadletter import DL_KEY, dead_letter_line, invalid_meta, no_message_entry, without_write_keys
from cdpio_cli.replay.inputs import RawLines, Source, iter_source
from cdpio_cli.replay.options import EXAMPLES, Example, ReplayOptions
from cdpio_cli.replay.parallel_scan import SHARE_AS_IS, SHARE_MAPPED, Judge, PrejudgedLines, eligible, open_ndjson
from cdpio_cli.replay.rewrite import Rewriter, message_timestamp, shift_timestamps
from cdpio_cli.replay.route import Route, accepts_email_only, is_passthrough
from cdpio_cli.replay.validate import fast_valid, problems_text
from cdpio_cli.routes.segment import Prepared

# A line the rewrites leave alone is sent as written (not re-encoded) up to
# this size: re-encoding grows a message by under 4x at worst (`9E15,` becomes
# `9000000000000000.0,`), so its size stays on the same side of every limit.
RAW_MAX = messages.MAX_MESSAGE_BYTES // 5


@dataclass(eq=False, repr=False)
class ScanTotals:
    """What the pre-pass counted: messages to resolve, invalid ones, records per source."""

    count: int = 0  # messages this run resolves (after the checkpoint's)
    invalid: int = 0
    records: list[int] = field(default_factory=list)  # per source: records in it


@dataclass(eq=False, repr=False)
class _Judged:
    """One record after the rewrites: invalid when `reason` is set."""

    reason: str | None
    msg: Any = None
    data: bytes | None = None  # the message encoded (or as written)
    extra: dict[str, Any] | None = None  # more `_cdpio` keys for its dead-letter line


class Scanner:
    def __init__(self, route: Route, options: ReplayOptions, examples: list[Example]):
        self.route = route
        self.examples = examples
        self.email_ok = accepts_email_only(route)
        # Invalid records are spooled only when they will be dead-lettered (--skip-invalid).
        self.keep_invalid = options.skip_invalid
        self.mapped = not is_passthrough(route)
        self._raw_lines: dict[int, RawLines | None] = {}  # opened on a source's first unreadable line
        self.cutter: Cutter
        self.shift: timedelta | None = None

    def scan(
        self, sources: list[Source], skip: list[int], rewriter: Rewriter, shift: timedelta | None, spool: IO[bytes]
    ) -> ScanTotals:
        """Judge, rewrite and spool every record after `skip`, cut into batches;
        `shift` (--shift-timestamps) applies to valid messages, after they are judged."""
        totals = ScanTotals(records=[0] * len(sources))
        cutter = self.cutter = Cutter(self.route, spool, [s.display for s in sources])
        self.shift = shift
        try:
            for si, source in enumerate(sources):
                totals.records[si] = self._scan_source(si, source, skip[si], rewriter, shift, totals, cutter)
            cutter.flush()
        finally:
            for cursor in self._raw_lines.values():
                if cursor is not None:
                    cursor.close()
        return totals

    def _scan_source(
        self,
        si: int,
        source: Source,
        skip: int,
        rewriter: Rewriter,
        shift: timedelta | None,
        totals: ScanTotals,
        cutter: Cutter,
    ) -> int:
        """Scan one source; returns how many records it holds."""
        as_is = shift is None and not self.mapped  # messages go to the cutter as they are
        add = cutter.add if as_is else self._add_valid
        # A large NDJSON file (plain or gzipped) is judged on two cores (parallel_scan.py): the
        # lines the worker passed come unparsed, to be sent as written (with the
        # worker's operations on a route that maps).
        worker = None
        if shift is None and eligible(source):
            if self.mapped:
                judge = mapped_as_written(rewriter.apply, source.key, self.route.prepare)
                worker = PrejudgedLines(source, judge, SHARE_MAPPED)
            else:
                worker = PrejudgedLines(source, sent_as_written(rewriter.apply, source.key), SHARE_AS_IS)
        try:
            records = iter_source(source) if worker is None else iter_ndjson_file(source, worker.passed)
            mapped_by = worker.verdict if worker is not None and self.mapped else None
            index = self._scan_records(si, source, skip, records, rewriter, add, mapped_by, totals, cutter)
        finally:
            if worker is not None:
                worker.close()
        totals.count += max(0, index + 1 - skip)
        return index + 1

    def _scan_records(
        self,
        si: int,
        source: Source,
        skip: int,
        records: Iterator[Record | Unparsed],
        rewriter: Rewriter,
        add: Callable[[int, int, int, Any, bytes], None],
        mapped_by: Callable[[int], list[bytes]] | None,
        totals: ScanTotals,
        cutter: Cutter,
    ) -> int:
        """The pre-pass loop over one source's records; returns the last record's
        index.  `mapped_by(line)`: the operations the two-core worker mapped a
        line it passed to (a route that maps)."""
        # Hoisted: this loop runs once per message.
        apply, key, encode, valid = rewriter.apply, source.key, messages.encode, fast_valid
        index = -1
        for index, rec in enumerate(records):
            if index < skip:
                continue
            if isinstance(rec, tuple):  # (line, raw): the two-core worker judged it: send as written
                line, written = rec
                if mapped_by is None:
                    add(si, index, line, None, written.strip())
                else:
                    cutter.add_items(si, index, line, written.strip(), mapped_by(line))
                continue
            msg = rec.message
            if rec.error is None and type(msg) is dict and not (len(msg) == 1 and DL_KEY in msg):
                # The common case, kept short: a message object, rewritten and
                # encoded once (sent as written when nothing changed it).
                raw = rec.raw
                if not apply(msg, key, index) and raw is not None and len(raw) <= RAW_MAX:
                    data = raw.strip()
                else:
                    data = encode(msg)
                if valid(msg, len(data)):
                    add(si, index, rec.line, msg, data)
                    continue
                judged = self._judge_message(msg, data)
            else:
                judged = self._judge_other(si, source, rec)
            if judged.reason is None and judged.data is not None:
                add(si, index, rec.line, judged.msg, judged.data)
            else:
                self._invalid(si, index, source, rec, judged, totals, cutter)
        return index

    def _add_valid(self, si: int, index: int, line: int, msg: dict[str, Any], data: bytes) -> None:
        """A valid message, shifted (--shift-timestamps) and mapped (a route that maps)."""
        cutter = self.cutter
        if self.shift is not None:
            shift_timestamps(msg, self.shift)
            data = messages.encode(msg)
            if len(data) > messages.MAX_MESSAGE_BYTES:
                reason = f"message is {len(data):,} bytes after shifting timestamps"
                meta = invalid_meta(reason, cutter.displays[si], line)
                cutter.add_resolved(si, index, dead_letter_line(data, msg, meta))
                return
        if self.mapped:
            cutter.add_mapped(si, index, line, msg, data)
        else:
            cutter.add(si, index, line, msg, data)

    def _judge_message(self, msg: dict[str, Any], data: bytes) -> _Judged:
        """A rewritten message object that `fast_valid` did not pass: the exact check."""
        return _Judged(problems_text(msg, size=len(data), email_identifies=self.email_ok), msg, data)

    def _judge_other(self, si: int, source: Source, rec: Record) -> _Judged:
        """A record that is not a message object to send: unreadable, not an
        object, or a dead-letter line that holds no message."""
        msg, reason = rec.message, rec.error
        if reason is not None:
            if msg is None:
                # Unreadable: keep the original text, so the dead-letter file is enough to fix it.
                return _Judged(reason, extra=self._raw_meta(si, source, rec.line))
            return _Judged(reason, msg)
        if type(msg) is not dict:
            msg = without_write_keys(msg)
            return _Judged(problems_text(msg), msg)
        # A dead-letter line that holds no message (the input was
        # unreadable, or not an object): nothing to send.
        reason, extra = no_message_entry(msg[DL_KEY])
        return _Judged(reason, extra=extra)

    def _invalid(
        self, si: int, index: int, source: Source, rec: Record, judged: _Judged, totals: ScanTotals, cutter: Cutter
    ) -> None:
        totals.invalid += 1
        reason = judged.reason or "not a message object"
        if len(self.examples) < EXAMPLES:
            self.examples.append(Example(source.display, rec.line, reason))
        if self.keep_invalid:  # otherwise the run stops before sending: nothing to spool
            dl_line = invalid_line(judged.data, judged.msg, judged.extra, reason, source.display, rec.line)
            cutter.add_resolved(si, index, dl_line)

    def _raw_meta(self, si: int, source: Source, line: int) -> dict[str, Any] | None:
        if si not in self._raw_lines:
            self._raw_lines[si] = RawLines.for_source(source)
        cursor = self._raw_lines[si]
        return cursor.meta(line) if cursor is not None else None


def newest_timestamp(sources: list[Source], skip: list[int]) -> datetime | None:
    """The newest timestamp of the input (--shift-timestamps), the records a
    checkpoint says are done included: a pass of its own, since the shift
    must be known before the pre-pass encodes and cuts the shifted messages."""
    newest = None
    for si, source in enumerate(sources):
        for index, rec in enumerate(iter_source(source)):
            msg = rec.message
            if rec.error is not None or not (type(msg) is dict if index >= skip[si] else isinstance(msg, dict)):
                continue
            ts = message_timestamp(msg)
            if ts is not None and (newest is None or ts > newest):
                newest = ts
    return newest


def sent_as_written(apply: Callable[[dict[str, Any], str, int], bool], key: str) -> Callable[[Any, bytes | None], bool]:
    """The pre-pass's judgement of one parsed line, for the two-core worker:
    the common case of `_scan_records` (a message object the rewrites leave
    alone, small enough to be sent as written, that `fast_valid` passes).
    `apply` changes nothing when it returns False, and the index it is given
    matters only when it changes something."""

    def judge(msg: Any, raw: bytes | None) -> bool:
        return (
            type(msg) is dict
            and not (len(msg) == 1 and DL_KEY in msg)
            and raw is not None
            and len(raw) <= RAW_MAX
            and not apply(msg, key, -1)
            and fast_valid(msg, len(raw.strip()))
        )

    return judge


def mapped_as_written(
    apply: Callable[[dict[str, Any], str, int], bool], key: str, prepare: Callable[[dict[str, Any], bytes], Prepared]
) -> Judge:
    """The same judgement on a route that maps, for the two-core worker: the
    line's operations as the pre-pass would make them (`route.prepare` of the
    message and the line), or None for anything but operations for the batch
    lane (a mapping drop, a problem, the metrics lane: this process decides)."""
    as_written = sent_as_written(apply, key)

    def judge(msg: Any, raw: bytes | None) -> list[bytes] | None:
        if not as_written(msg, raw):
            return None
        prepared = prepare(msg, raw.strip())  # type: ignore[union-attr]
        if prepared.dropped is None and prepared.problem is None and prepared.lane == LANE_BATCH and prepared.items:
            return prepared.items
        return None

    return judge


def iter_ndjson_file(source: Source, unparsed: Callable[[int], bool]) -> Iterator[Record | Unparsed]:
    """An NDJSON source's records (parallel_scan.eligible), the lines
    `unparsed` names left unparsed."""
    with open_ndjson(source.read_path) as fh:
        yield from iter_ndjson_unparsed(fh, source.read_path, unparsed)  # named as fixtures.iter_records names it

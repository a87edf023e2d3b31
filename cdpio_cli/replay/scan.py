"""The pre-pass: one streaming pass over the input (constant memory) that
validates and counts every message, finds the newest timestamp, and spools
each record ready to send, or its dead-letter line, so the input is parsed once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from cdpio_cli import messages
from cdpio_cli.fixtures import Record
from cdpio_cli.replay.deadletter import DL_KEY, no_message_entry, without_write_keys
from cdpio_cli.replay.inputs import RawLines, Source, iter_source
from cdpio_cli.replay.options import EXAMPLES, Example, ReplayOptions
from cdpio_cli.replay.rewrite import Rewriter, message_timestamp
from cdpio_cli.replay.route import Route, accepts_email_only, is_passthrough
from cdpio_cli.replay.spool import HEAD, INVALID, MAPPED, VALID, SpoolTables
from cdpio_cli.replay.validate import fast_valid, problems_text
from cdpio_cli.routes.segment import Prepared

# A line the rewrites leave alone is sent as written (not re-encoded) up to
# this size: re-encoding grows a message by under 4x at worst (`9E15,` becomes
# `9000000000000000.0,`), so its size stays on the same side of every limit.
_RAW_MAX = messages.MAX_MESSAGE_BYTES // 5


@dataclass
class ScanTotals:
    count: int = 0  # messages this run resolves (after the checkpoint's)
    invalid: int = 0
    newest: datetime | None = None  # the newest timestamp (when asked for)
    records: list[int] = field(default_factory=list)  # per source: records in it


@dataclass
class _Judged:
    """One record after the rewrites: invalid when `reason` is set."""

    reason: str | None
    msg: Any = None
    data: bytes | None = None  # the message encoded (or as written)
    extra: dict[str, Any] | None = None  # more `_cdpio` keys for its dead-letter line


class Scanner:
    def __init__(self, route: Route, options: ReplayOptions, tables: SpoolTables, examples: list[Example]):
        self.tables = tables
        self.examples = examples
        self.email_ok = accepts_email_only(route)
        # Invalid records are spooled only when they will be dead-lettered (--skip-invalid).
        self.keep_invalid = options.skip_invalid
        # A route that maps messages (not passthrough) maps each one here,
        # from the parsed message, unless timestamps are shifted after the pass.
        self.prepare: Callable[[dict[str, Any], bytes], Prepared] | None = None
        if not is_passthrough(route) and not options.shift_timestamps:
            self.prepare = route.prepare
        self._raw_lines: dict[int, RawLines | None] = {}  # opened on a source's first unreadable line

    def scan(
        self, sources: list[Source], skip: list[int], rewriter: Rewriter, want_newest: bool, spool: IO[bytes]
    ) -> ScanTotals:
        totals = ScanTotals(records=[0] * len(sources))
        try:
            for si, source in enumerate(sources):
                totals.records[si] = self._scan_source(si, source, skip[si], rewriter, want_newest, totals, spool)
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
        want_newest: bool,
        totals: ScanTotals,
        spool: IO[bytes],
    ) -> int:
        """Scan one source; returns how many records it holds."""
        index = -1
        for index, rec in enumerate(iter_source(source)):
            if index < skip:
                if want_newest and rec.error is None and isinstance(rec.message, dict):
                    _see_timestamp(rec.message, totals)
                continue
            totals.count += 1
            msg = rec.message
            if rec.error is None and type(msg) is dict and not (len(msg) == 1 and DL_KEY in msg):
                # The common case, kept short: a message object, rewritten and encoded once.
                data = _encoded(msg, rec.raw, rewriter.apply(msg, source.key, index))
                if want_newest:
                    _see_timestamp(msg, totals)
                if fast_valid(msg, len(data)):
                    self._spool_valid(spool, si, index, rec.line, msg, data)
                    continue
                judged = self._judge_message(msg, data)
            else:
                judged = self._judge_other(si, source, rec)
            if judged.reason is None and judged.data is not None:
                self._spool_valid(spool, si, index, rec.line, judged.msg, judged.data)
            else:
                self._spool_invalid(spool, si, index, source, rec, judged, totals)
        return index + 1

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

    def _spool_invalid(
        self, spool: IO[bytes], si: int, index: int, source: Source, rec: Record, judged: _Judged, totals: ScanTotals
    ) -> None:
        totals.invalid += 1
        reason = judged.reason or "not a message object"
        if len(self.examples) < EXAMPLES:
            self.examples.append(Example(source.display, rec.line, reason))
        if self.keep_invalid:  # otherwise the run stops before sending: nothing to spool
            payload = self.tables.pack_invalid(judged.data, judged.msg, judged.extra, reason)
            spool.write(HEAD.pack(si, index, rec.line, INVALID, len(payload)))
            spool.write(payload)

    def _raw_meta(self, si: int, source: Source, line: int) -> dict[str, Any] | None:
        if si not in self._raw_lines:
            self._raw_lines[si] = RawLines.for_source(source)
        cursor = self._raw_lines[si]
        return cursor.meta(line) if cursor is not None else None

    def _spool_valid(self, spool: IO[bytes], si: int, index: int, line: int, msg: Any, data: bytes) -> None:
        if self.prepare is not None:
            payload = self.tables.pack_prepared(data, self.prepare(msg, data))
            spool.write(HEAD.pack(si, index, line, MAPPED, len(payload)))
            spool.write(payload)
        else:
            spool.write(HEAD.pack(si, index, line, VALID, len(data)) + data)


def _encoded(msg: dict[str, Any], raw: bytes | None, changed: bool) -> bytes:
    """The message as sent: the line as written when nothing changed it (no re-encoding)."""
    if not changed and raw is not None and len(raw) <= _RAW_MAX:
        return raw.strip()
    return messages.encode(msg)


def _see_timestamp(msg: dict[str, Any], totals: ScanTotals) -> None:
    ts = message_timestamp(msg)
    if ts is not None and (totals.newest is None or ts > totals.newest):
        totals.newest = ts

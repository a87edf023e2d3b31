"""The spool: the pre-pass writes every record once, ready to send (ids
fixed, encoded, mapped when the route maps), so the main pass never parses
the input again.  Records are binary: a fixed head, then the payload."""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator
from typing import IO, Any

import orjson

from cdpio_cli.routes.segment import Prepared

# Writing failed because the disk (or a size limit) is full: a clear error, not a traceback.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# Spool record: source index, record index in the source, line, kind, length.
HEAD = struct.Struct("<IIIBI")
VALID, INVALID = 0, 1
# A valid record already mapped by a non-passthrough route (no timestamp shift
# to apply later): the reader batches its items without parsing it again.
MAPPED = 2
_CHUNK = 1 << 20
# A mapped record's payload: message length, lane (or one of the two codes
# below), number of parts; then the message and each part with its length.
_MAPPED_HEAD = struct.Struct("<IHI")
_PART_LEN = struct.Struct("<I")
_LANE_DROPPED, _LANE_PROBLEM = 0xFFFF, 0xFFFE
# An invalid record's spool payload: reason index, length of the encoded message.
_INVALID_HEAD = struct.Struct("<II")
_INLINE_REASON = 0xFFFFFFFF
# Distinct reasons kept in memory for the spool (beyond: spooled inline).
_MAX_REASONS = 10_000

SpoolRecord = tuple[int, int, int, int, bytes]  # source, index, line, kind, payload


class SpoolTables:
    """What records share, kept in memory once: lane names and invalid reasons."""

    def __init__(self) -> None:
        self.lanes: list[str] = []
        self.reasons: list[str] = []
        self._reason_ids: dict[str, int] = {}

    def pack_prepared(self, data: bytes, prepared: Prepared) -> bytes:
        if prepared.dropped is not None:
            code, parts = _LANE_DROPPED, [prepared.dropped.encode("utf-8", "surrogatepass")]
        elif prepared.problem is not None:
            code, parts = _LANE_PROBLEM, [prepared.problem.encode("utf-8", "surrogatepass")]
        else:
            try:
                code = self.lanes.index(prepared.lane)
            except ValueError:
                code = len(self.lanes)
                self.lanes.append(prepared.lane)
            parts = prepared.items
        out = [_MAPPED_HEAD.pack(len(data), code, len(parts)), data]
        for part in parts:
            out.append(_PART_LEN.pack(len(part)))
            out.append(part)
        return b"".join(out)

    def unpack_prepared(self, payload: bytes) -> tuple[bytes, Prepared]:
        size, code, count = _MAPPED_HEAD.unpack_from(payload)
        offset = _MAPPED_HEAD.size + size
        data = payload[_MAPPED_HEAD.size : offset]
        parts = []
        for _ in range(count):
            (length,) = _PART_LEN.unpack_from(payload, offset)
            offset += _PART_LEN.size
            parts.append(payload[offset : offset + length])
            offset += length
        if code == _LANE_DROPPED:
            return data, Prepared(dropped=parts[0].decode("utf-8", "surrogatepass"))
        if code == _LANE_PROBLEM:
            return data, Prepared(problem=parts[0].decode("utf-8", "surrogatepass"))
        return data, Prepared(items=parts, lane=self.lanes[code])

    def pack_invalid(self, data: bytes | None, msg: Any, extra: dict[str, Any] | None, reason: str) -> bytes:
        """An invalid record, compactly: the reason text is stored once."""
        rid = self._reason_ids.get(reason)
        if rid is None and len(self.reasons) < _MAX_REASONS:
            rid = self._reason_ids[reason] = len(self.reasons)
            self.reasons.append(reason)
        tail = orjson.dumps([None if data is not None else msg, extra, reason if rid is None else None], default=str)
        body = data or b""
        return _INVALID_HEAD.pack(_INLINE_REASON if rid is None else rid, len(body)) + body + tail

    def unpack_invalid(self, payload: bytes) -> tuple[bytes | None, Any, dict[str, Any] | None, str]:
        """(encoded message or None, the value when not encoded, extra `_cdpio` keys, reason)."""
        rid, size = _INVALID_HEAD.unpack_from(payload)
        data = payload[_INVALID_HEAD.size : _INVALID_HEAD.size + size] or None
        value, extra, inline = orjson.loads(payload[_INVALID_HEAD.size + size :])
        reason = inline if rid == _INLINE_REASON else self.reasons[rid]
        return data, value, extra, reason


def read_spool(spool: IO[bytes]) -> Iterator[SpoolRecord]:
    """The spooled records in order; the spool is read in large chunks and
    records are sliced out of them."""
    read, unpack_from, head_size = spool.read, HEAD.unpack_from, HEAD.size
    buf, off = b"", 0
    while True:
        if len(buf) - off < head_size:
            buf = buf[off:] + read(_CHUNK)
            off = 0
            if len(buf) < head_size:
                return
        si, index, line, kind, length = unpack_from(buf, off)
        off += head_size
        end = off + length
        if end > len(buf):
            buf = buf[off:] + read(max(_CHUNK, length))
            off, end = 0, length
        yield si, index, line, kind, buf[off:end]
        off = end

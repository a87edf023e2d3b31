"""The spool: the pre-pass cuts the input into batches and writes each one
once, ready to send (ids fixed, encoded, mapped when the route maps), so the
main pass never parses the input again and does no per-message work.

A record is one batch: a fixed head, a small JSON description (positions,
line numbers, item sizes, what was resolved without a request), then the
bytes it describes (the items, the messages when they differ from the items,
the dead-letter lines)."""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import IO, Any, overload

import orjson

from cdpio_cli.routes.segment import Prepared

# Writing failed because the disk (or a size limit) is full: a clear error, not a traceback.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# Spool record head: length of the description, length of the bytes.
HEAD = struct.Struct("<II")
_CHUNK = 1 << 20
# Examples a batch carries for the reader to report (in input order).
EXAMPLE_DROPPED, EXAMPLE_INVALID = 0, 1
# The ordinary lane, the one every route has; its items are spooled joined with b",".
LANE_BATCH = Prepared().lane


@dataclass(eq=False, repr=False)
class SpoolBatch:
    """One batch as the pre-pass cut it (see `Cutter`).

    `pos`: (source, records consumed) for each source the batch advanced;
    `runs`: (source, first message) where the messages' source changes;
    `lines`: each message's line; `sizes`: each item's length in `data`, then
    (`msg_sizes`, when the route maps) each message's, then (`dl_sizes`) each
    dead-letter line's; `owners`: item -> message (None: item i is message i);
    `examples`: (EXAMPLE_*, source, line, reason) for the reader to report.
    The items of the ordinary lane (LANE_BATCH) are joined with b"," as the
    request carries them, so the reader hands them on in one piece (`parts`);
    another lane's are written one after the other.
    """

    records: int
    pos: list[list[int]]
    lane: str
    runs: list[list[int]]
    lines: list[int]
    sizes: list[int]
    msg_sizes: list[int] | None
    owners: list[int] | None
    dl_sizes: list[int]
    invalid: int
    dropped: int
    examples: list[list[Any]]
    data: bytes

    def write(self, spool: IO[bytes]) -> None:
        meta = orjson.dumps(
            [
                self.records,
                self.pos,
                self.lane,
                self.runs,
                self.lines,
                self.sizes,
                self.msg_sizes,
                self.owners,
                self.dl_sizes,
                self.invalid,
                self.dropped,
                self.examples,
            ]
        )
        spool.write(HEAD.pack(len(meta), len(self.data)) + meta)
        spool.write(self.data)

    @classmethod
    def parse(cls, meta: bytes, data: bytes) -> SpoolBatch:
        return cls(*orjson.loads(meta), data=data)  # type: ignore[misc]  # fields in order

    def parts(self) -> tuple[list[bytes] | bytes, Sequence[bytes] | None, list[bytes]]:
        """The items (joined with b"," in the ordinary lane), the messages
        (None: the items are the messages; cut from `data` only when one is
        asked for: a message is needed only for its dead-letter line) and the
        dead-letter lines."""
        data, sizes = self.data, self.sizes
        items: list[bytes] | bytes
        if self.lane == LANE_BATCH:
            off = sum(sizes) + len(sizes) - 1 if sizes else 0
            if self.msg_sizes is None and not self.dl_sizes:
                return data, None, []  # the common batch: no copy at all
            items = data[:off] if off < len(data) else data
        else:
            items, off = _cut(data, 0, sizes)
        msgs = None
        if self.msg_sizes is not None:
            msgs = Pieces(data, off, self.msg_sizes)
            off += sum(self.msg_sizes)
        dl_lines, _ = _cut(data, off, self.dl_sizes)
        return items, msgs, dl_lines


class Pieces(Sequence[bytes]):
    """The pieces of `data` of these sizes from `off`, `gap` bytes apart (1:
    items joined with b","), each cut when asked for."""

    def __init__(self, data: bytes, off: int, sizes: list[int], gap: int = 0):
        self.data, self.off, self.sizes, self.gap = data, off, sizes, gap
        self.starts: list[int] | None = None

    def __len__(self) -> int:
        return len(self.sizes)

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self.sizes))[i]]
        if self.starts is None:  # worked out once, on the first message asked for
            gap = self.gap
            self.starts = list(accumulate((n + gap for n in self.sizes), initial=self.off))
        start = self.starts[i]
        return self.data[start : start + self.sizes[i]]


def _cut(data: bytes, off: int, sizes: list[int]) -> tuple[list[bytes], int]:
    """The pieces of `data` of these sizes from `off`, and where they end."""
    part = []
    for n in sizes:
        part.append(data[off : off + n])
        off += n
    return part, off


def read_spool(spool: IO[bytes]) -> Iterator[SpoolBatch]:
    """The spooled batches in order."""
    read, head_size = spool.read, HEAD.size
    while True:
        head = read(head_size)
        if len(head) < head_size:
            return
        meta_len, data_len = HEAD.unpack(head)
        meta = read(meta_len)
        yield SpoolBatch.parse(meta, read(data_len))

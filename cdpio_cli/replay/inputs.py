"""Reading the input: the files (or stdin, spooled to disk since it is read
twice), their records, and the original text of a line that could not be
read (kept in the dead-letter file so it can be fixed)."""

from __future__ import annotations

import gzip
import os
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from cdpio_cli import fixtures
from cdpio_cli.credentials import redact as redact_secrets
from cdpio_cli.errors import UsageError
from cdpio_cli.paths import open_private
from cdpio_cli.replay.spool import DISK_FULL

# An unreadable input line keeps its original text in the dead-letter file
# (`_cdpio.raw`), up to this many bytes.
RAW_KEEP_BYTES = 64 * 1024
# stdin is spooled to $TMPDIR (read twice); past this many bytes the run
# stops with a clear error instead of filling the disk.
STDIN_MAX_BYTES = 4 * 1024**3
STDIN_MAX_ENV = "CDPIO_REPLAY_STDIN_MAX_BYTES"


@dataclass(eq=False, repr=False)
class Source:
    """One input of a replay: what is opened, what is shown, and its identity."""

    read_path: str  # what we open
    display: str  # what we print ("-" for stdin)
    key: str  # identity for derived messageIds and the checkpoint


def prepare_sources(paths: list[str], stdin: IO[Any] | None, spool_dir: str) -> list[Source]:
    out = []
    for path in fixtures.expand_paths(paths):
        if path == "-":
            spool = os.path.join(spool_dir, "stdin")
            spool_stdin(stdin if stdin is not None else sys.stdin, spool)
            out.append(Source(spool, "-", "-"))
        else:
            out.append(Source(path, path, os.path.abspath(path)))
    return out


def stdin_max_bytes() -> int:
    """The stdin spool's bound (STDIN_MAX_BYTES, or $CDPIO_REPLAY_STDIN_MAX_BYTES)."""
    raw = os.environ.get(STDIN_MAX_ENV, "").strip()
    if not raw:
        return STDIN_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(
            f"{STDIN_MAX_ENV}={raw!r} is not a positive number of bytes",
            hint=f"set it to e.g. {STDIN_MAX_BYTES}, or unset it",
        )
    return value


def spool_stdin(stream: IO[Any] | bytes, spool: str) -> None:
    """stdin cannot be read twice (pre-pass + send): copy it to a private
    file, bounded, refusing binary data before it fills the disk."""
    try:
        with open_private(spool, truncate=True) as fh:
            _copy_bounded(getattr(stream, "buffer", stream), fh, stdin_max_bytes())
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        raise UsageError(
            f"stdin: cannot spool it to {os.path.dirname(spool)}: {exc.strerror or os.strerror(exc.errno or 0)}",
            hint="set TMPDIR to a disk with more free space, or replay a file instead of stdin",
        ) from None


def _copy_bounded(raw: Any, fh: IO[bytes], limit: int) -> None:
    written = 0
    first = True
    while True:
        chunk = raw if isinstance(raw, (bytes, bytearray)) else raw.read(1 << 20)
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8", "surrogateescape")
        if not chunk:
            break
        if first and chunk[:2] != b"\x1f\x8b" and fixtures.looks_binary(bytes(chunk[:8192])):
            raise UsageError(
                f"stdin: binary data, not fixture lines (expected {fixtures.SUPPORTED})",
                hint="pipe NDJSON (one message per line), or pass the file's path",
            )
        first = False
        written += len(chunk)
        if written > limit:
            raise UsageError(
                f"stdin: more than {limit:,} bytes; replay spools stdin to disk and stops at this bound",
                hint=f"write the input to a file and replay the file (raise the bound with {STDIN_MAX_ENV}=BYTES)",
            )
        fh.write(chunk)
        if isinstance(raw, (bytes, bytearray)):
            break


def iter_source(source: Source) -> Iterator[fixtures.Record]:
    return fixtures.iter_records([source.read_path])  # not a generator of its own: one layer less per record


# `"writeKey": "..."` in text that is not valid JSON (quotes optional, the
# value possibly cut short): the value is replaced.
_WRITE_KEY_TEXT = re.compile(rb"""(["']?writeKey["']?\s*:\s*)(?:"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|[^,}\s]*)""")


class RawLines:
    """The original text of an NDJSON source's unreadable lines, read forward
    only with a second handle (opened on the first unreadable line, so clean
    files cost nothing).  JSON and YAML documents have no per-message line."""

    def __init__(self, path: str):
        self.path = path
        self.fh: IO[bytes] | gzip.GzipFile | None = None
        self.lineno = 0
        self.broken = False

    @classmethod
    def for_source(cls, source: Source) -> RawLines | None:
        # Unreadable or not sniffable: no raw text, never an error.
        return cls(source.read_path) if fixtures.detect_format(source.read_path) == "ndjson" else None

    @staticmethod
    def _open(path: str) -> IO[bytes] | gzip.GzipFile:
        fh = open(path, "rb")
        if fh.read(2) == b"\x1f\x8b":
            fh.seek(0)
            return gzip.GzipFile(fileobj=fh, mode="rb")
        fh.seek(0)
        return fh

    def meta(self, line: int) -> dict[str, Any] | None:
        """`raw` (and `raw_note`) for the dead-letter line of input line `line`."""
        if self.broken or line <= self.lineno:
            return None
        try:
            found = self._seek_line(line)
        except (OSError, EOFError, ValueError, zlib.error):
            found = None
        if found is None:
            self.broken = True
            return None
        head, size, tail = found
        ending = 2 if tail.endswith(b"\r\n") else 1 if tail.endswith(b"\n") else 0
        length = size - ending  # the line's bytes, without its newline
        body = head[: len(head) - ending] if tail is head else head
        if line == 1 and body.startswith(b"\xef\xbb\xbf"):
            body, length = body[3:], length - 3
        if not body.strip():
            return None
        return _raw_meta(body, length)

    def _seek_line(self, line: int) -> tuple[bytes, int, bytes] | None:
        """Read forward to input line `line`: (its first bytes, its size, its
        last chunk), or None at the end of the file."""
        if self.fh is None:
            self.fh = self._open(self.path)
        while True:
            head = self.fh.readline(RAW_KEEP_BYTES + 2)
            if not head:
                return None
            self.lineno += 1
            size, tail = len(head), head
            if len(head) == RAW_KEEP_BYTES + 2 and not head.endswith(b"\n"):
                while True:  # skip the rest of a long line without holding it
                    more = self.fh.readline(1 << 20)
                    size += len(more)
                    tail = more or tail
                    if not more or more.endswith(b"\n"):
                        break
            if self.lineno == line:
                return head, size, tail

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def _raw_meta(body: bytes, length: int) -> dict[str, Any]:
    notes = []
    if length > RAW_KEEP_BYTES:
        body = body[:RAW_KEEP_BYTES]
        notes.append(f"truncated: the first {RAW_KEEP_BYTES:,} of {length:,} bytes")
    body = _WRITE_KEY_TEXT.sub(rb'\1"[removed by cdpio]"', body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")
        if length <= RAW_KEEP_BYTES or not _only_cut_short(body):
            notes.append("bytes that are not UTF-8 are replaced with U+FFFD")
    text = redact_secrets(text)  # a configured credential pasted into the data
    out: dict[str, Any] = {"raw": text}
    if notes:
        out["raw_note"] = "; ".join(notes)
    return out


def _only_cut_short(body: bytes) -> bool:
    """Is the only bad UTF-8 a character cut in two by truncation?"""
    for cut in range(1, 4):
        try:
            body[:-cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False

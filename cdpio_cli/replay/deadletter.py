"""The dead-letter file: one line per message a run could not deliver (the
message itself plus a `_cdpio` object saying why), replayable as is."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Sequence
from typing import IO, Any, NoReturn

import orjson

from cdpio_cli.errors import UsageError
from cdpio_cli.paths import open_private
from cdpio_cli.replay.spool import DISK_FULL

DL_KEY = "_cdpio"
WRITE_KEY_FIELD = "writeKey"
_INPUT_SUFFIXES = (".gz", ".ndjson", ".jsonl", ".json", ".yaml", ".yml")


def dead_letter_line(data: bytes | None, value: Any, meta: dict[str, Any]) -> bytes:
    """The message itself plus a `_cdpio` key (replayable as is)."""
    meta_bytes = orjson.dumps(meta)
    if data is not None and len(data) > 2 and data.endswith(b"}"):
        return data[:-1] + b',"' + DL_KEY.encode() + b'":' + meta_bytes + b"}\n"
    if isinstance(value, dict):
        return orjson.dumps({**value, DL_KEY: meta}) + b"\n"
    body: dict[str, Any] = {DL_KEY: meta}
    if value is not None:
        body[DL_KEY] = {**meta, "value": value}
    return orjson.dumps(body, default=str) + b"\n"


def without_write_keys(value: Any) -> Any:
    """A value that is not a message (e.g. a list of messages) loses any
    `writeKey` of its objects, one level down, before it is written anywhere."""
    if isinstance(value, list):
        return [without_write_keys(v) if isinstance(v, dict) else v for v in value]
    if isinstance(value, dict) and WRITE_KEY_FIELD in value:
        return {k: v for k, v in value.items() if k != WRITE_KEY_FIELD}
    return value


_RAW_KEYS = ("raw", "raw_note", "value")


def no_message_entry(prior: Any) -> tuple[str, dict[str, Any] | None]:
    """Why a dead-letter line with no message cannot be replayed, and what of
    its `_cdpio` object to keep (the original text) when it is dead-lettered again."""
    prior = prior if isinstance(prior, dict) else {}
    keep = {k: prior[k] for k in _RAW_KEYS if k in prior}
    was = prior.get("reason")
    was = f" ({was})" if isinstance(was, str) and was else ""
    if "raw" in keep:
        reason = (
            f"a dead-letter line with no message: the input line could not be read{was}; "
            "fix the original text in _cdpio.raw and put it in place of this line"
        )
    elif "value" in keep:
        reason = (
            f"a dead-letter line with no message: the input was not a message object{was}; "
            "turn _cdpio.value into a message and put it in place of this line"
        )
    else:
        reason = f"a dead-letter line with no message{was}: nothing to send; remove the line"
    return reason, keep or None


def invalid_meta(reason: str, display: str, line: int) -> dict[str, Any]:
    """The `_cdpio` object of a message dead-lettered without a request."""
    return {"reason": f"invalid: {reason}", "http_status": None, "attempts": 0, "file": display, "line": line}


def default_dead_letter_path(display: str | None, read_path: str | None) -> str:
    """`<name>.dead-letter.ndjson` in the current directory; for an input
    in another folder the name also carries a short hash of that folder,
    so same-named inputs from different folders never share a file."""
    if display is None or read_path is None or display == "-":
        return "stdin.dead-letter.ndjson"
    base = os.path.basename(display)
    for ext in _INPUT_SUFFIXES:
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    folder = os.path.dirname(os.path.realpath(read_path))
    if folder != os.path.realpath(os.getcwd()):
        import hashlib  # here only: OpenSSL's library loads in ~2 ms

        base = f"{base}-{hashlib.sha256(folder.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
    return f"{base}.dead-letter.ndjson"


def count_lines(path: str) -> int:
    count = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            count += chunk.count(b"\n")
    return count


class DeadLetterFile:
    """Appends dead-letter lines at `offset` (the length the checkpoint
    covers), opened on the first line, unbuffered so a full disk fails on the
    write that can be undone."""

    def __init__(self, path: str, offset: int, *, checkpoint: str | None):
        self.path = path
        self.offset = offset
        self.checkpoint = checkpoint
        self.fh: IO[bytes] | None = None

    def prepare(self, *, resuming: bool, force: bool) -> int:
        """A resume cuts the file back to what the checkpoint covers; a new
        run appends after what is there (`force`: truncates).  Returns the
        lines an earlier run left and this one keeps."""
        prior = 0
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        if not resuming and size:
            if force:
                self.offset = 0
            else:
                self.offset = size
                prior = count_lines(self.path)
        if os.path.exists(self.path) and size != self.offset:
            with open_private(self.path) as fh:
                fh.truncate(self.offset)
        return prior

    def append(self, lines: Sequence[bytes]) -> None:
        data = b"".join(lines)
        try:
            fh = self.fh
            if fh is None:
                fh = self.fh = open_private(self.path, buffering=0)
                fh.seek(self.offset)
                fh.truncate()
            view = memoryview(data)
            while view:
                view = view[fh.write(view) :]
        except OSError as exc:
            self._undo(exc)
        self.offset += len(data)

    def _undo(self, exc: OSError) -> NoReturn:
        if self.fh is not None:
            with contextlib.suppress(OSError):  # no half line left behind
                self.fh.truncate(self.offset)
        if exc.errno not in DISK_FULL and exc.errno not in (errno.EACCES, errno.EROFS, errno.EIO):
            raise exc
        resume = (
            f"rerun the same command: it resumes from --checkpoint {self.checkpoint}"
            if self.checkpoint
            else "rerun with --checkpoint PATH next time to resume instead of starting over"
        )
        raise UsageError(
            f"cannot write the dead-letter file {self.path}: "
            f"{exc.strerror or os.strerror(exc.errno or 0)}; the run stopped",
            hint=f"free some space (or raise the file-size limit), then {resume}",
        ) from None

    def sync(self) -> None:
        """The lines a checkpoint is about to claim must be on disk first."""
        if self.fh is not None:
            self.fh.flush()
            os.fsync(self.fh.fileno())

    def close(self) -> None:
        if self.fh is not None:
            with contextlib.suppress(OSError):  # a write error was already raised
                os.fsync(self.fh.fileno())
            self.fh.close()
            self.fh = None  # the final checkpoint must not flush a closed file

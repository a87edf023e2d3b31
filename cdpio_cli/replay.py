"""Replay fixture files to a route: batching, rate limit, retries, dead-letter
file, resume from a checkpoint.  The CLI (`cdpio replay`) is a thin wrapper.

Shape of a run:

1. A streaming pre-pass over the input (constant memory): validate every
   message (any invalid one stops the run before anything is sent, unless
   `skip_invalid`), count them, and find the newest timestamp
   (`shift_timestamps`).
2. The main pass: a reader thread rewrites each message (ids, timestamps),
   fixes its messageId *before the first attempt* (so retries can never
   duplicate), and cuts batches by count and bytes into a bounded queue;
   sender threads share one httpx client, a token bucket and the retry
   policy.
3. Batches are committed in input order: dead-letter lines are appended and
   the checkpoint advanced only up to the first batch still in flight.  A
   killed run therefore resumes exactly: the resolved prefix is skipped, the
   dead-letter file is cut back to what the checkpoint covers, and messages
   that were in flight are re-sent with the same messageIds (derived from
   the checkpoint's seed, file and position), which the services dedupe.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import math
import os
import queue
import random
import re
import secrets as _secrets
import shutil
import struct
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, Any

import orjson

from cdpio_cli import messages
from cdpio_cli.credentials import redact as redact_secrets
from cdpio_cli.errors import (
    EXIT_CHECK_FAILED,
    EXIT_CREDENTIAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    UsageError,
)
from cdpio_cli.paths import check_outputs, open_private
from cdpio_cli.routes.segment import Prepared
from cdpio_cli.transport import RetryPolicy, TokenBucket, check_timeout, make_client, send

CHECKPOINT_VERSION = 1
DL_KEY = "_cdpio"
# messageIds derived for messages that have none: stable across resumed runs.
ID_NAMESPACE = uuid.UUID("6f1c7a52-2b8e-4c55-9a51-3f0f2d7c9e11")
TIMESTAMP_KEYS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")
WRITE_KEY_FIELD = "writeKey"
# An unreadable input line keeps its original text in the dead-letter file
# (`_cdpio.raw`), up to this many bytes.
RAW_KEEP_BYTES = 64 * 1024
EXAMPLES = 5
# Spool record: source index, record index in the source, line, kind, length.
_SPOOL_HEAD = struct.Struct("<IIIBI")
_VALID, _INVALID = 0, 1
# A valid record already mapped by a non-passthrough route (no timestamp shift
# to apply later): the reader batches its items without parsing it again.
_MAPPED = 2
_SPOOL_CHUNK = 1 << 20
# A mapped record's payload: message length, lane (or one of the two codes
# below), number of parts; then the message and each part with its length.
_MAPPED_HEAD = struct.Struct("<IHI")
_PART_LEN = struct.Struct("<I")
_LANE_DROPPED, _LANE_PROBLEM = 0xFFFF, 0xFFFE
# An invalid record's spool payload: reason index, length of the encoded message.
_INVALID_HEAD = struct.Struct("<II")
_INLINE_REASON = 0xFFFFFFFF
# A line the rewrites leave alone is sent as written (not re-encoded) up to
# this size: re-encoding grows a message by under 4x at worst (`9E15,` becomes
# `9000000000000000.0,`), so its size stays on the same side of every limit.
_RAW_MAX = messages.MAX_MESSAGE_BYTES // 5
# Distinct reasons kept in memory for the spool (beyond: spooled inline).
_MAX_REASONS = 10_000
# stdin is spooled to $TMPDIR (read twice); past this many bytes the run
# stops with a clear error instead of filling the disk.
STDIN_MAX_BYTES = 4 * 1024**3
STDIN_MAX_ENV = "CDPIO_REPLAY_STDIN_MAX_BYTES"
# The fingerprint of an input in the checkpoint: its size and a hash of its
# first bytes (enough to notice another file under the same name).
FINGERPRINT_BYTES = 64 * 1024
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


# ---------------------------------------------------------------------------
# Options and result
# ---------------------------------------------------------------------------


@dataclass
class ReplayOptions:
    rate: float | None = 50.0  # requests/s; None or 0 = unlimited
    concurrency: int = 4
    max_retries: int = 5
    timeout: float = 10.0
    base_delay: float = 0.5  # retry backoff base (full jitter)
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    dead_letter: str | None = None  # default: <first input>.dead-letter.ndjson
    checkpoint: str | None = None
    skip_invalid: bool = False
    new_message_ids: bool = False
    id_prefix: str | None = None
    shift_timestamps: bool = False
    dry_run: bool = False
    force: bool = False  # truncate a non-empty dead-letter file (default: append)
    # Other files the command writes (e.g. ("--junit", path)): checked with
    # the dead-letter file and checkpoint before any work.
    other_outputs: list[tuple[str, str]] = field(default_factory=list)
    checkpoint_interval: float = 0.25  # seconds between checkpoint writes


@dataclass
class Example:
    file: str
    line: int
    reason: str
    http_status: int | None = None


@dataclass
class ReplayResult:
    route: str = ""
    read: int = 0
    invalid: int = 0
    sent: int = 0
    # Counted when committed: in input order, up to the first batch still
    # unresolved, which is what the checkpoint covers.
    accepted: int = 0
    failed: int = 0
    retried: int = 0
    dropped_by_mapping: int = 0
    requests: int = 0
    not_sent: int = 0  # not resolved by this run (interruption or abort)
    # Answered 2xx, but behind a batch left unresolved by a stop: not
    # committed, so a resume re-sends them (same messageIds; the service drops
    # them as duplicates).  Part of `not_sent`.
    accepted_uncommitted: int = 0
    skipped_resumed: int = 0  # resolved by an earlier run (checkpoint)
    total: int | None = None  # messages in the input (from the pre-pass)
    status_counts: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float | None] = field(default_factory=lambda: {"p50": None, "p95": None, "p99": None})
    events_per_second: float = 0.0
    duration: float = 0.0
    send_seconds: float = 0.0
    dead_letter: str | None = None  # path, when it holds any line
    dead_lettered: int = 0  # lines written by this run
    dead_letter_total: int = 0  # lines in the file, earlier runs included
    # Lines already in the dead-letter file from another run, kept: this run
    # appended after them (no --force).
    dead_letter_prior: int = 0
    checkpoint: str | None = None
    complete: bool = False
    dry_run: bool = False
    would_send: int = 0
    stopped_invalid: bool = False  # invalid input, nothing sent
    interrupted: bool = False
    interrupted_reading: bool = False  # stopped in the pre-pass: nothing was sent
    aborted: str | None = None  # "credential" | "unreachable" | "rate_limited"
    abort_reason: str | None = None
    invalid_examples: list[Example] = field(default_factory=list)
    failure_examples: list[Example] = field(default_factory=list)
    drop_examples: list[Example] = field(default_factory=list)
    auth_failures: int = 0  # requests answered 401/403
    # Failed messages whose request got no answer, a timeout (408) or a 5xx
    # after its last retry (part of `failed`).
    failed_unreachable: int = 0
    responses: int = 0  # requests that got any HTTP answer

    def exit_code(self) -> int:
        if self.stopped_invalid:
            return EXIT_USAGE
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.dry_run:
            return EXIT_CHECK_FAILED if self.invalid else EXIT_OK
        if self.aborted == "credential" or (self.requests and self.auth_failures == self.requests):
            return EXIT_CREDENTIAL
        if self.aborted == "unreachable" or (self.requests and self.responses == 0):
            return EXIT_UNREACHABLE
        if not self.accepted and self.failed and self.failed_unreachable == self.failed:
            # Nothing got through and every failure was the service's (5xx,
            # timeout, network) after the retries: the messages are in the
            # dead-letter file, but the finding is "could not be reached".
            return EXIT_UNREACHABLE
        if self.dead_letter_total or self.dead_lettered or self.not_sent:
            return EXIT_CHECK_FAILED
        return EXIT_OK

    def summary(self) -> dict[str, Any]:
        """What `--json` carries in `summary` (a stable interface)."""
        return {
            "route": self.route,
            "read": self.read,
            "invalid": self.invalid,
            "sent": self.sent,
            "accepted": self.accepted,
            "accepted_uncommitted": self.accepted_uncommitted,
            "failed": self.failed,
            "retried": self.retried,
            "dropped_by_mapping": self.dropped_by_mapping,
            "not_sent": self.not_sent,
            "skipped_resumed": self.skipped_resumed,
            "requests": self.requests,
            "status_counts": dict(sorted(self.status_counts.items())),
            "latency_ms": self.latency_ms,
            "events_per_second": round(self.events_per_second, 1),
            "duration_seconds": round(self.duration, 3),
            "dead_letter": self.dead_letter,
            "dead_lettered": self.dead_letter_total,
            "dead_letter_prior_lines": self.dead_letter_prior,
            "checkpoint": self.checkpoint,
            "complete": self.complete,
            "dry_run": self.dry_run,
            **({"would_send": self.would_send} if self.dry_run else {}),
            **({"aborted": self.aborted, "abort_reason": self.abort_reason} if self.aborted else {}),
            "interrupted": self.interrupted,
        }


@dataclass
class Progress:
    total: int | None
    done: int  # messages resolved (accepted, failed, dropped, invalid)
    accepted: int
    failed: int
    retried: int
    events_per_second: float


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


@dataclass
class Source:
    read_path: str  # what we open
    display: str  # what we print ("-" for stdin)
    key: str  # identity for derived messageIds and the checkpoint


def _prepare_sources(paths: list[str], stdin: IO | None, spool_dir: str) -> list[Source]:
    from cdpio_cli.fixtures import expand_paths

    out = []
    for path in expand_paths(paths):
        if path == "-":
            spool = os.path.join(spool_dir, "stdin")
            _spool_stdin(stdin if stdin is not None else sys.stdin, spool)
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


def _spool_stdin(stream, spool: str) -> None:
    """stdin cannot be read twice (pre-pass + send): copy it to a private
    file, bounded, refusing binary data before it fills the disk."""
    from cdpio_cli.fixtures import SUPPORTED, looks_binary

    raw = getattr(stream, "buffer", stream)
    limit = stdin_max_bytes()
    written = 0
    first = True
    try:
        with open_private(spool, truncate=True) as fh:
            while True:
                chunk = raw if isinstance(raw, (bytes, bytearray)) else raw.read(1 << 20)
                if isinstance(chunk, str):
                    chunk = chunk.encode("utf-8", "surrogateescape")
                if not chunk:
                    break
                if first and chunk[:2] != b"\x1f\x8b" and looks_binary(chunk[:8192]):
                    raise UsageError(
                        f"stdin: binary data, not fixture lines (expected {SUPPORTED})",
                        hint="pipe NDJSON (one message per line), or pass the file's path",
                    )
                first = False
                written += len(chunk)
                if written > limit:
                    raise UsageError(
                        f"stdin: more than {limit:,} bytes; replay spools stdin to disk and stops at this bound",
                        hint=f"write the input to a file and replay the file (raise the bound "
                        f"with {STDIN_MAX_ENV}=BYTES)",
                    )
                fh.write(chunk)
                if isinstance(raw, (bytes, bytearray)):
                    break
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        raise UsageError(
            f"stdin: cannot spool it to {os.path.dirname(spool)}: {exc.strerror or os.strerror(exc.errno)}",
            hint="set TMPDIR to a disk with more free space, or replay a file instead of stdin",
        ) from None


def _iter_source(source: Source) -> Iterator[Any]:
    from cdpio_cli.fixtures import iter_records

    yield from iter_records([source.read_path])


# ---------------------------------------------------------------------------
# Rewrites
# ---------------------------------------------------------------------------


def _format_ts(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_timestamp(msg: dict) -> datetime | None:
    for key in ("timestamp", "originalTimestamp"):
        parsed = messages.parse_timestamp(msg.get(key))
        if parsed is not None:
            return parsed
    return None


class Rewriter:
    """The per-message rewrites, applied identically in every run of a job."""

    def __init__(self, *, seed: str, new_message_ids: bool, id_prefix: str | None, shift: timedelta | None):
        self.seed = seed
        self.new_message_ids = new_message_ids
        self.id_prefix = id_prefix or None
        self.shift = shift

    def derived_id(self, source_key: str, index: int) -> str:
        return str(uuid.uuid5(ID_NAMESPACE, f"{self.seed}\x00{source_key}\x00{index}"))

    def apply(self, msg: dict, source_key: str, index: int) -> bool:
        """Rewrite in place; return whether anything changed."""
        changed = False
        if DL_KEY in msg:
            del msg[DL_KEY]  # a dead-letter file replays as is
            changed = True
        # The route authenticates; a key inside a message is never sent or
        # written anywhere (the dead-letter file is built from the rewritten message).
        if WRITE_KEY_FIELD in msg:
            del msg[WRITE_KEY_FIELD]
            changed = True
        if self.id_prefix:
            for key in ("userId", "anonymousId", "previousId"):
                value = msg.get(key)
                if isinstance(value, bool) or value is None or value == "":
                    continue
                if isinstance(value, (str, int, float)):
                    msg[key] = f"{self.id_prefix}{value}"
                    changed = True
        mid = msg.get("messageId")
        if self.new_message_ids or not isinstance(mid, str) or not mid:
            msg["messageId"] = self.derived_id(source_key, index)
            changed = True
        if self.shift is not None:
            _shift_timestamps(msg, self.shift)
            changed = True
        return changed


def _shift_timestamps(msg: dict, shift: timedelta) -> None:
    for key in TIMESTAMP_KEYS:
        parsed = messages.parse_timestamp(msg.get(key))
        if parsed is not None:
            msg[key] = _format_ts(parsed + shift)


_FAST_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})\Z")
_FAST_TYPES = frozenset(("track", "identify", "page", "screen"))
_TIMESTAMP_FIELDS = ("timestamp", "originalTimestamp", "sentAt")
_HOURS = frozenset(f"{h:02d}" for h in range(24))
_MINUTES = frozenset(f"{m:02d}" for m in range(60))
# Dates (YYYY-MM-DD) already judged: a file's timestamps share few dates, so
# the calendar check runs once per date, not once per message.
_DATES: dict[str, bool] = {}
_MAX_DATES = 4096


def _slow_timestamp_ok(value: str) -> bool:
    if _FAST_TS.match(value) is None:
        return False
    try:
        datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] == "Z" else value)
    except ValueError:
        return False
    return True


def _fast_timestamp_ok(value: Any) -> bool:
    """`_slow_timestamp_ok` without a regex or a datetime for the common UTC
    form `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z` (any other form takes the slow
    path; 3 or 6 fraction digits are what `fromisoformat` accepts on every
    supported Python, 3.10 included)."""
    if value is None:
        return True
    if type(value) is not str:
        return False
    n = len(value)
    if (
        (n == 20 or n == 24 or n == 27)
        and value[-1] == "Z"
        and value[10] == "T"
        and value[13] == ":"
        and value[16] == ":"
        and value[11:13] in _HOURS
        and value[14:16] in _MINUTES
        and value[17:19] in _MINUTES
        and (n == 20 or (value[19] == "." and value[20:-1].isdigit() and value.isascii()))
    ):
        date = value[:10]
        ok = _DATES.get(date)
        if ok is None:
            ok = _slow_timestamp_ok(date + "T00:00:00Z")
            if len(_DATES) < _MAX_DATES:
                _DATES[date] = ok
        return ok
    return _slow_timestamp_ok(value)


def fast_valid(msg: Any, size: int) -> bool:
    """A quick yes for the common, clean message: True only when
    `messages.spec_problems` would report no error (a property test holds
    the two together).  False means "ask spec_problems", not "invalid".

    Replay validates every message before sending anything; this keeps that
    pre-pass cheap on large files without a second implementation of the
    rules deciding what is invalid.
    """
    if type(msg) is not dict or size > messages.MAX_MESSAGE_BYTES:
        return False
    get = msg.get
    mtype = get("type")
    if type(mtype) is not str or mtype not in _FAST_TYPES:  # a list is unhashable
        return False
    uid = get("userId")
    if not (type(uid) is str and uid.strip()):
        anon = get("anonymousId")
        if not (type(anon) is str and anon.strip()):
            return False
    if mtype == "track":
        event = get("event")
        if type(event) is not str or not event:
            return False
    elif mtype != "identify":
        name = get("name")
        if name is not None and type(name) is not str:
            return False
    value = get("properties")
    if value is not None and type(value) is not dict:
        return False
    value = get("traits")
    if value is not None and type(value) is not dict:
        return False
    value = get("context")
    if value is not None and type(value) is not dict:
        return False
    for key in _TIMESTAMP_FIELDS:
        value = get(key)
        if value is not None and not _fast_timestamp_ok(value):
            return False
    mid = get("messageId")
    if mid is not None and (type(mid) is not str or len(mid) > messages.MAX_MESSAGE_ID_CHARS):
        return False
    return True


def _email_identify(msg: Any) -> bool:
    return (
        type(msg) is dict
        and msg.get("type") == "identify"
        and isinstance(msg.get("traits"), dict)
        and bool(msg["traits"].get("email"))
    )


def _problems_text(msg: Any, size: int | None = None, *, email_identifies: bool = False) -> str | None:
    """Why the message is invalid (all errors, one line), or None.
    `email_identifies`: the Pipelines API identifies by traits.email alone
    (docs/contracts.md), so an identify with only an email is valid there."""
    if size is None and type(msg) is dict:
        size = len(messages.encode(msg))
    if size is not None and fast_valid(msg, size):
        return None
    errors = [
        p
        for p in messages.spec_problems(msg, size=size)
        if p.severity == messages.ERROR
        and not (email_identifies and p.rule == "spec/no-identity" and _email_identify(msg))
    ]
    if not errors:
        return None
    return "; ".join(p.message for p in errors)


# ---------------------------------------------------------------------------
# Checkpoint
# ---------------------------------------------------------------------------


def _count_lines(path: str) -> int:
    count = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            count += chunk.count(b"\n")
    return count


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: str, data: dict) -> None:
    """temp file + fsync + rename: a reader sees the old or the new file, whole."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open_private(tmp, truncate=True) as fh:  # 0600: it names the inputs and ids
            fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path)


def load_checkpoint(path: str) -> dict | None:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot read the checkpoint: {exc.strerror}",
            hint="check the path, or delete the file to start over",
        ) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UsageError(
            f"{path}: not a cdpio replay checkpoint (invalid JSON)",
            hint="pass another --checkpoint path, or delete the file to start over",
        ) from None
    if not isinstance(data, dict) or data.get("kind") != "cdpio-replay-checkpoint":
        raise UsageError(
            f"{path}: not a cdpio replay checkpoint",
            hint="pass another --checkpoint path, or delete the file to start over",
        )
    if data.get("version") != CHECKPOINT_VERSION:
        raise UsageError(
            f"{path}: checkpoint version {data.get('version')} is not supported", hint="delete the file to start over"
        )
    problem = checkpoint_problem(data)
    if problem:
        raise UsageError(f"{path}: the checkpoint is damaged: {problem}", hint=BAD_CHECKPOINT_HINT)
    return data


BAD_CHECKPOINT_HINT = (
    "delete it (or pass another --checkpoint) to start over; messages that carry "
    "their own messageId are dropped by the service as duplicates when sent again"
)


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def checkpoint_problem(data: dict) -> str | None:
    """What is wrong with a checkpoint's fields (types, ranges), or None.
    Offsets are checked against the input and the dead-letter file later."""

    def optional(key, kinds):
        return data.get(key) is None or type(data.get(key)) in kinds

    required = {"route": str, "inputs": list, "seed": str, "dead_letter_bytes": int, "complete": bool}
    for key, kind in required.items():
        if key not in data:
            return f"`{key}` is missing"
        if type(data[key]) is not kind:
            return f"`{key}` must be {kind.__name__}, not {type(data[key]).__name__}"
    if not data["seed"] or len(data["seed"]) > 256:
        return "`seed` is empty or too long"
    if not _count(data["dead_letter_bytes"]):
        return f"`dead_letter_bytes` must be a whole number >= 0, not {data['dead_letter_bytes']!r}"
    for key, kinds in (
        ("id_prefix", (str,)),
        ("dead_letter", (str,)),
        ("new_message_ids", (bool,)),
        ("shift_timestamps", (bool,)),
        ("shift_seconds", (int, float)),
        ("totals", (dict,)),
    ):
        if not optional(key, kinds):
            return f"`{key}` has the wrong type ({type(data.get(key)).__name__})"
    shift = data.get("shift_seconds")
    if shift is not None and not (abs(shift) < 1e10):  # also NaN
        return f"`shift_seconds` is out of range ({shift!r})"
    for key, value in (data.get("totals") or {}).items():
        if not _count(value):
            return f"`totals.{key}` must be a whole number >= 0, not {value!r}"
    for i, entry in enumerate(data["inputs"]):
        if type(entry) is not dict:
            return f"`inputs[{i}]` must be an object"
        if type(entry.get("path")) is not str:
            return f"`inputs[{i}].path` is missing or not a string"
        if not _count(entry.get("done", 0)):
            return f"`inputs[{i}].done` must be a whole number >= 0, not {entry.get('done')!r}"
        for key in ("size", "records"):
            if entry.get(key) is not None and not _count(entry[key]):
                return f"`inputs[{i}].{key}` must be a whole number >= 0, not {entry[key]!r}"
        if entry.get("head_sha256") is not None and type(entry["head_sha256"]) is not str:
            return f"`inputs[{i}].head_sha256` must be a string"
    return None


def fingerprint(path: str) -> dict[str, Any]:
    """Size and hash of the first bytes of an input file, for the checkpoint."""
    with open(path, "rb") as fh:
        head = fh.read(FINGERPRINT_BYTES)
        size = os.fstat(fh.fileno()).st_size
    return {"size": size, "head_sha256": hashlib.sha256(head).hexdigest()}


# ---------------------------------------------------------------------------
# Batches and commit
# ---------------------------------------------------------------------------


@dataclass
class _Batch:
    seq: int
    end_pos: list[int]  # per source: records consumed after this batch
    lane: str = "batch"
    items: list[bytes] = field(default_factory=list)
    owners: list[int] | None = None  # item -> message index (None: one item each)
    msgs: list[tuple] = field(default_factory=list)  # (file, line, encoded message)
    nbytes: int = 0
    # Resolved by the reader (no request): invalid / dropped records.
    dl_lines: list[bytes] = field(default_factory=list)
    invalid: int = 0
    dropped: int = 0
    records: int = 0
    # Filled in by a sender.
    resolved: bool = False
    accepted: int = 0
    failed: int = 0
    failed_unreachable: int = 0


def _service_failure(status: int | None) -> bool:
    """The service's failure, after the retries: no answer (network error or
    timeout), 408 or a 5xx.  (429 and other 4xx are answers: rejections.)"""
    return status is None or status == 408 or status >= 500


def _dl_line(data: bytes | None, value: Any, meta: dict) -> bytes:
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


def _without_write_keys(value: Any) -> Any:
    """A value that is not a message (e.g. a list of messages) loses any
    `writeKey` of its objects, one level down, before it is written anywhere."""
    if isinstance(value, list):
        return [_without_write_keys(v) if isinstance(v, dict) else v for v in value]
    if isinstance(value, dict) and WRITE_KEY_FIELD in value:
        return {k: v for k, v in value.items() if k != WRITE_KEY_FIELD}
    return value


_RAW_KEYS = ("raw", "raw_note", "value")


def _no_message_entry(prior: Any) -> tuple[str, dict | None]:
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


# `"writeKey": "..."` in text that is not valid JSON (quotes optional, the
# value possibly cut short): the value is replaced.
_WRITE_KEY_TEXT = re.compile(rb"""(["']?writeKey["']?\s*:\s*)(?:"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|[^,}\s]*)""")


class _RawLines:
    """The original text of an NDJSON source's unreadable lines, read forward
    only with a second handle (opened on the first unreadable line, so clean
    files cost nothing).  JSON and YAML documents have no per-message line."""

    def __init__(self, path: str):
        self.path = path
        self.fh: IO[bytes] | None = None
        self.lineno = 0
        self.broken = False

    @classmethod
    def for_source(cls, source: Source) -> _RawLines | None:
        from cdpio_cli import fixtures

        # Unreadable or not sniffable: no raw text, never an error.
        return cls(source.read_path) if fixtures.detect_format(source.read_path) == "ndjson" else None

    @staticmethod
    def _open(path: str) -> IO[bytes]:
        import gzip

        fh = open(path, "rb")
        if fh.read(2) == b"\x1f\x8b":
            fh.seek(0)
            return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
        fh.seek(0)
        return fh

    def meta(self, line: int) -> dict | None:
        """`raw` (and `raw_note`) for the dead-letter line of input line `line`."""
        if self.broken or line <= self.lineno:
            return None
        try:
            if self.fh is None:
                self.fh = self._open(self.path)
            while True:
                head = self.fh.readline(RAW_KEEP_BYTES + 2)
                if not head:
                    self.broken = True
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
                    break
        except (OSError, EOFError, ValueError, zlib.error):
            self.broken = True
            return None
        ending = 2 if tail.endswith(b"\r\n") else 1 if tail.endswith(b"\n") else 0
        length = size - ending  # the line's bytes, without its newline
        body = head[: len(head) - ending] if tail is head else head
        if line == 1 and body.startswith(b"\xef\xbb\xbf"):
            body, length = body[3:], length - 3
        if not body.strip():
            return None
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

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def _only_cut_short(body: bytes) -> bool:
    """Is the only bad UTF-8 a character cut in two by truncation?"""
    for cut in range(1, 4):
        try:
            body[:-cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


class _Reservoir:
    """Latencies for percentiles in bounded memory (Algorithm R)."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self.seen = 0
        self.values: list[float] = []
        self._rng = random.Random(7)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.size:
                self.values[j] = value

    def percentiles(self) -> dict[str, float | None]:
        if not self.values:
            return {"p50": None, "p95": None, "p99": None}
        data = sorted(self.values)
        n = len(data)

        def pick(q: float) -> float:
            return round(data[min(n - 1, max(0, int(round(q * n + 0.5)) - 1))] * 1000.0, 2)

        return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


# ---------------------------------------------------------------------------
# The replay
# ---------------------------------------------------------------------------


class Replay:
    """One replay job.  `run()` returns a ReplayResult; it raises UsageError
    for bad flags, an unusable checkpoint or unreadable files."""

    def __init__(
        self,
        paths: list[str],
        route,
        options: ReplayOptions,
        *,
        client=None,
        stdin: IO | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        progress_interval: float = 0.1,
        on_start: Callable[[ReplayResult], None] | None = None,
    ):
        self.paths = list(paths)
        self.route = route
        self.opts = options
        self.client = client
        self.stdin = stdin
        self.on_progress = on_progress
        self.on_start = on_start
        self.progress_interval = progress_interval
        self.result = ReplayResult(
            route=getattr(route, "name", ""), dry_run=options.dry_run, checkpoint=options.checkpoint
        )
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._latency = _Reservoir()
        self._status_counts: dict[str, int] = {}
        self._any_accepted = False
        self._consecutive_down = 0
        self._down_throttled = False  # a 429 among the consecutive failures

    # -- setup ----------------------------------------------------------------
    def _check_options(self) -> None:
        o = self.opts
        if o.concurrency < 1 or o.concurrency > 64:
            raise UsageError("--concurrency must be between 1 and 64")
        # Written so that NaN fails too (every comparison with NaN is false).
        if o.rate is not None and not 0 <= o.rate < math.inf:
            raise UsageError(f"--rate must be a finite number of requests per second (0 for no limit), not {o.rate!r}")
        if o.max_retries < 0 or o.max_retries > 20:
            raise UsageError("--max-retries must be between 0 and 20")
        check_timeout(o.timeout, "--timeout")
        if o.id_prefix is not None and (o.id_prefix.strip() != o.id_prefix or not o.id_prefix):
            raise UsageError("--id-prefix must be non-empty and have no surrounding whitespace")

    def _default_dead_letter(self, sources: list[Source]) -> str:
        """`<name>.dead-letter.ndjson` in the current directory; for an input
        in another folder the name also carries a short hash of that folder,
        so same-named inputs from different folders never share a file."""
        first = sources[0] if sources else None
        if first is None or first.display == "-":
            return "stdin.dead-letter.ndjson"
        base = os.path.basename(first.display)
        for ext in (".gz", ".ndjson", ".jsonl", ".json", ".yaml", ".yml"):
            if base.lower().endswith(ext):
                base = base[: -len(ext)]
        folder = os.path.dirname(os.path.realpath(first.read_path))
        if folder != os.path.realpath(os.getcwd()):
            base = f"{base}-{hashlib.sha256(folder.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
        return f"{base}.dead-letter.ndjson"

    # -- pre-pass: validate, count, rewrite, encode, spool ----------------------
    def _scan(
        self, sources: list[Source], skip: list[int], rewriter: Rewriter, want_newest: bool, spool: IO[bytes]
    ) -> tuple[int, int, datetime | None]:
        """One streaming pass over the input (constant memory): validate and
        count every message, find the newest timestamp, and write each record
        ready to send (ids fixed, encoded) or its dead-letter line to `spool`,
        so the input is parsed once.  A route that maps messages (not
        passthrough) maps each one here, from the parsed message, unless
        timestamps are shifted after the pass.  Returns (count, invalid, newest)."""
        count = invalid = 0
        newest: datetime | None = None
        examples = self.result.invalid_examples
        email_ok = getattr(self.route, "name", "") == "pipelines"
        write = spool.write
        pack = _SPOOL_HEAD.pack
        encode = messages.encode
        raw_lines: dict[int, _RawLines | None] = {}  # opened on a source's first unreadable line
        # Invalid records are spooled only when they will be dead-lettered
        # (--skip-invalid), compactly: the reason text is stored once.
        keep_invalid = self.opts.skip_invalid
        prepare = None
        if not getattr(self.route, "passthrough", False) and not self.opts.shift_timestamps:
            prepare = self.route.prepare
        self._lanes: list[str] = []
        reasons: dict[str, int] = {}
        self._reasons: list[str] = []
        self._records = [0] * len(sources)
        try:
            for si, source in enumerate(sources):
                display = source.display
                index = -1
                for index, rec in enumerate(_iter_source(source)):
                    if index < skip[si]:
                        if want_newest and rec.error is None and isinstance(rec.message, dict):
                            ts = message_timestamp(rec.message)
                            if ts is not None and (newest is None or ts > newest):
                                newest = ts
                        continue
                    count += 1
                    msg = rec.message
                    reason = rec.error
                    data = None
                    extra: dict | None = None
                    if reason is not None and msg is None:
                        # Unreadable: keep the original text, so the dead-letter
                        # file is enough to fix it.
                        if si not in raw_lines:
                            raw_lines[si] = _RawLines.for_source(source)
                        extra = raw_lines[si].meta(rec.line) if raw_lines[si] is not None else None
                    elif reason is None:
                        if type(msg) is dict and len(msg) == 1 and DL_KEY in msg:
                            # A dead-letter line that holds no message (the input
                            # was unreadable, or not an object): nothing to send.
                            reason, extra = _no_message_entry(msg[DL_KEY])
                            msg = None
                        elif type(msg) is dict:
                            changed = rewriter.apply(msg, source.key, index)
                            if want_newest:
                                ts = message_timestamp(msg)
                                if ts is not None and (newest is None or ts > newest):
                                    newest = ts
                            raw = rec.raw
                            if not changed and raw is not None and len(raw) <= _RAW_MAX:
                                data = raw.strip()  # the line as written: no re-encoding
                            else:
                                data = encode(msg)
                            if not fast_valid(msg, len(data)):
                                reason = _problems_text(msg, size=len(data), email_identifies=email_ok)
                        else:
                            msg = _without_write_keys(msg)
                            reason = _problems_text(msg)
                    if reason is None:
                        if prepare is not None:
                            data = self._pack_prepared(data, prepare(msg, data))
                            write(pack(si, index, rec.line, _MAPPED, len(data)))
                            write(data)
                        else:
                            write(pack(si, index, rec.line, _VALID, len(data)) + data)
                        continue
                    invalid += 1
                    if len(examples) < EXAMPLES:
                        examples.append(Example(display, rec.line, reason))
                    if not keep_invalid:
                        continue  # the run stops before sending: nothing to spool
                    rid = reasons.get(reason)
                    if rid is None and len(self._reasons) < _MAX_REASONS:
                        rid = reasons[reason] = len(self._reasons)
                        self._reasons.append(reason)
                    tail = orjson.dumps(
                        [None if data is not None else msg, extra, reason if rid is None else None], default=str
                    )
                    data = data or b""
                    payload_size = _INVALID_HEAD.size + len(data) + len(tail)
                    write(pack(si, index, rec.line, _INVALID, payload_size))
                    write(_INVALID_HEAD.pack(_INLINE_REASON if rid is None else rid, len(data)))
                    write(data)
                    write(tail)
                self._records[si] = index + 1
        finally:
            for cursor in raw_lines.values():
                if cursor is not None:
                    cursor.close()
        return count, invalid, newest

    def _pack_prepared(self, data: bytes, prepared) -> bytes:
        if prepared.dropped is not None:
            code, parts = _LANE_DROPPED, [prepared.dropped.encode("utf-8", "surrogatepass")]
        elif prepared.problem is not None:
            code, parts = _LANE_PROBLEM, [prepared.problem.encode("utf-8", "surrogatepass")]
        else:
            try:
                code = self._lanes.index(prepared.lane)
            except ValueError:
                code = len(self._lanes)
                self._lanes.append(prepared.lane)
            parts = prepared.items
        out = [_MAPPED_HEAD.pack(len(data), code, len(parts)), data]
        for part in parts:
            out.append(_PART_LEN.pack(len(part)))
            out.append(part)
        return b"".join(out)

    def _unpack_prepared(self, payload: bytes):
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
        return data, Prepared(items=parts, lane=self._lanes[code])

    # -- run ------------------------------------------------------------------
    def run(self) -> ReplayResult:
        self._check_options()
        started = time.perf_counter()
        spool_dir = tempfile.mkdtemp(prefix="cdpio-replay-")
        try:
            return self._run(started, spool_dir)
        finally:
            shutil.rmtree(spool_dir, ignore_errors=True)

    def _run(self, started: float, spool_dir: str) -> ReplayResult:
        o, res = self.opts, self.result
        try:
            sources = _prepare_sources(self.paths, self.stdin, spool_dir)
        except KeyboardInterrupt:
            return self._interrupted_reading(started)
        if o.checkpoint and any(s.display == "-" for s in sources):
            raise UsageError(
                "--checkpoint cannot resume input read from stdin", hint="write the input to a file and replay the file"
            )
        inputs = [s.read_path for s in sources if s.display != "-"]
        # Checkpoint: resume or start (read before the output check: it names
        # the dead-letter file of the run it records).
        if o.checkpoint and not o.dry_run:
            check_outputs([("--checkpoint", o.checkpoint)], inputs)
        ckpt = load_checkpoint(o.checkpoint) if o.checkpoint and not o.dry_run else None
        dl_path = o.dead_letter or self._default_dead_letter(sources)
        if ckpt is not None and o.dead_letter is None and ckpt.get("dead_letter"):
            dl_path = ckpt["dead_letter"]
        # Every file this run writes, together, before any work.
        outputs = list(o.other_outputs)
        if not o.dry_run:
            outputs += [("--dead-letter", dl_path)]
            if o.checkpoint:
                outputs += [("--checkpoint", o.checkpoint)]
        check_outputs(outputs, inputs)

        keys = [s.key for s in sources]
        self._fingerprints = [fingerprint(s.read_path) if s.display != "-" else {} for s in sources]
        if ckpt is not None:
            if [f.get("path") for f in ckpt["inputs"]] != keys:
                raise UsageError(
                    f"{o.checkpoint}: the checkpoint was written for other input files",
                    hint="replay the same files in the same order, or pass another --checkpoint",
                )
            for entry, now in zip(ckpt["inputs"], self._fingerprints, strict=False):
                recorded = {k: entry.get(k) for k in ("size", "head_sha256") if entry.get(k) is not None}
                if recorded and recorded != {k: now[k] for k in recorded}:
                    raise UsageError(
                        f"{o.checkpoint}: {entry['path']} changed since the checkpoint was "
                        "written (its size or first bytes differ)",
                        hint="replay the file the checkpoint was written for, or " + BAD_CHECKPOINT_HINT,
                    )
            for flag, value in (
                ("route", res.route),
                ("id_prefix", o.id_prefix),
                ("new_message_ids", o.new_message_ids),
                ("shift_timestamps", o.shift_timestamps),
            ):
                if ckpt.get(flag, value if flag != "route" else None) != value:
                    raise UsageError(
                        f"{o.checkpoint}: the checkpoint was written with "
                        f"{flag}={ckpt.get(flag)!r}, this run has {value!r}",
                        hint="resume with the same flags, or pass another --checkpoint",
                    )
            seed = ckpt["seed"]
            skip = [int(f.get("done", 0)) for f in ckpt["inputs"]]
            shift = timedelta(seconds=ckpt["shift_seconds"]) if ckpt.get("shift_seconds") is not None else None
            dl_offset = ckpt["dead_letter_bytes"]
            totals = dict(ckpt.get("totals") or {})
            dl_size = os.path.getsize(dl_path) if os.path.exists(dl_path) else None
            if dl_offset and dl_size is None:
                raise UsageError(
                    f"{o.checkpoint}: the dead-letter file {dl_path} it refers to is missing",
                    hint="restore it, or delete the checkpoint to start over",
                )
            if dl_size is not None and dl_offset > dl_size:
                raise UsageError(
                    f"{o.checkpoint}: the checkpoint says the dead-letter file {dl_path} holds "
                    f"{dl_offset:,} bytes, but it holds {dl_size:,}",
                    hint="restore the dead-letter file, or " + BAD_CHECKPOINT_HINT,
                )
        else:
            seed = _secrets.token_hex(16)
            skip = [0] * len(sources)
            shift = None
            dl_offset = 0
            totals = {}
        res.dead_letter_total = int(totals.get("dead_lettered", 0))
        res.checkpoint = o.checkpoint

        rewriter = Rewriter(seed=seed, new_message_ids=o.new_message_ids, id_prefix=o.id_prefix, shift=None)
        need_newest = o.shift_timestamps and shift is None
        spool_path = os.path.join(spool_dir, "messages.spool")
        try:
            with open_private(spool_path, truncate=True, buffering=1 << 20) as spool:
                total, invalid, newest = self._scan(sources, skip, rewriter, need_newest, spool)
        except KeyboardInterrupt:
            return self._interrupted_reading(started)
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            raise UsageError(
                f"cannot write the replay spool in {spool_dir}: {exc.strerror}",
                hint="replay parses the input once and spools it (about the size of the "
                "uncompressed input); set TMPDIR to a disk with more free space",
            ) from None
        for source, done, count in zip(sources, skip, self._records, strict=False):
            if done > count:
                # A checkpoint never records more than the input holds.
                raise UsageError(
                    f"{o.checkpoint}: the checkpoint says {done:,} message(s) of "
                    f"{source.display} are done, but it holds {count:,}",
                    hint=BAD_CHECKPOINT_HINT,
                )
        res.skipped_resumed = sum(skip)
        res.total = total
        if invalid and not o.skip_invalid:
            res.stopped_invalid = True
            res.invalid = invalid
            res.read = total
            res.duration = time.perf_counter() - started
            return res
        if need_newest:
            shift = (datetime.now(timezone.utc) - newest) if newest is not None else timedelta(0)

        # Dead-letter file: a resume cuts it back to what the checkpoint
        # covers; a new run appends after what is there (--force: truncates).
        self._dl_path = dl_path
        self._dl_fh = None
        if not o.dry_run and ckpt is None and os.path.exists(dl_path) and os.path.getsize(dl_path):
            if o.force:
                dl_offset = 0
            else:
                dl_offset = os.path.getsize(dl_path)
                res.dead_letter_prior = _count_lines(dl_path)
        if not o.dry_run and os.path.exists(dl_path) and os.path.getsize(dl_path) != dl_offset:
            with open_private(dl_path) as fh:
                fh.truncate(dl_offset)
        self._dl_offset = dl_offset

        self._sources = sources
        self._skip = skip
        self._done = list(skip)  # per source: resolved records (committed)
        self._seed = seed
        self._shift = shift
        self._totals = totals
        self._ckpt_written = 0.0
        if o.checkpoint and not o.dry_run:
            self._write_checkpoint(complete=False, force=True)
        if self.on_start is not None:
            self.on_start(res)

        send_started = time.perf_counter()
        try:
            with open(spool_path, "rb", buffering=1 << 20) as spool:
                self._pump(spool, shift)
        finally:
            res.send_seconds = time.perf_counter() - send_started
            if self._dl_fh is not None:
                with contextlib.suppress(OSError):  # a write error was already raised
                    os.fsync(self._dl_fh.fileno())
                self._dl_fh.close()
                self._dl_fh = None  # the final checkpoint below must not flush a closed file
        res.latency_ms = self._latency.percentiles()
        res.status_counts = dict(self._status_counts)
        if res.send_seconds > 0:
            res.events_per_second = (res.sent if not o.dry_run else res.would_send) / res.send_seconds
        res.complete = not (res.interrupted or res.aborted or self.stop.is_set())
        if not res.complete:
            # Not resolved by this run (never sent, or in flight at the stop):
            # a resume from the checkpoint sends them.
            resolved = res.invalid + res.dropped_by_mapping + res.accepted + res.failed
            res.not_sent = max(0, (res.total or 0) - resolved)
            # Answered but behind an unresolved batch: never committed.
            res.accepted_uncommitted = sum(b.accepted for b in self._pending.values())
        if o.checkpoint and not o.dry_run:
            self._write_checkpoint(complete=res.complete, force=True)
        if res.dead_letter_total:
            res.dead_letter = dl_path
        res.duration = time.perf_counter() - started
        return res

    def _interrupted_reading(self, started: float) -> ReplayResult:
        """Ctrl-C or SIGTERM before the first request: nothing was sent."""
        res = self.result
        res.interrupted = res.interrupted_reading = True
        res.duration = time.perf_counter() - started
        return res

    # -- checkpoint -------------------------------------------------------------
    def _write_checkpoint(self, *, complete: bool, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._ckpt_written < self.opts.checkpoint_interval:
            return
        if self._dl_fh is not None:
            # The lines the checkpoint claims must be on disk first.
            self._dl_fh.flush()
            os.fsync(self._dl_fh.fileno())
        res = self.result
        data = {
            "kind": "cdpio-replay-checkpoint",
            "version": CHECKPOINT_VERSION,
            "route": res.route,
            "inputs": [
                {"path": s.key, "done": d, "records": n, **fp}
                for s, d, n, fp in zip(self._sources, self._done, self._records, self._fingerprints, strict=False)
            ],
            "seed": self._seed,
            "id_prefix": self.opts.id_prefix,
            "new_message_ids": self.opts.new_message_ids,
            "shift_timestamps": self.opts.shift_timestamps,
            "shift_seconds": None if self._shift is None else self._shift.total_seconds(),
            "dead_letter": os.path.abspath(self._dl_path),
            "dead_letter_bytes": self._dl_offset,
            "totals": {**self._totals, "dead_lettered": res.dead_letter_total},
            "complete": complete,
            "updated_at": messages.now_iso(),
        }
        try:
            write_json_atomic(self.opts.checkpoint, data)
        except OSError as exc:
            # e.g. the disk filled up, or the directory went away mid-run.
            raise UsageError(
                f"cannot write the checkpoint {self.opts.checkpoint}: {exc.strerror or exc}",
                hint="free some space or fix the path, then rerun the same command: the "
                "last checkpoint written is still valid",
            ) from None
        self._ckpt_written = now

    def _write_dead_letters(self, lines: list[bytes]) -> None:
        if not lines or self.opts.dry_run:
            return
        data = b"".join(lines)
        try:
            if self._dl_fh is None:
                # Unbuffered: a full disk fails here, where it can be undone.
                self._dl_fh = open_private(self._dl_path, buffering=0)
                self._dl_fh.seek(self._dl_offset)
                self._dl_fh.truncate()
            view = memoryview(data)
            while view:
                view = view[self._dl_fh.write(view) :]
        except OSError as exc:
            if self._dl_fh is not None:
                with contextlib.suppress(OSError):  # no half line left behind
                    self._dl_fh.truncate(self._dl_offset)
            if exc.errno not in _DISK_FULL and exc.errno not in (errno.EACCES, errno.EROFS, errno.EIO):
                raise
            resume = (
                f"rerun the same command: it resumes from --checkpoint {self.opts.checkpoint}"
                if self.opts.checkpoint
                else "rerun with --checkpoint PATH next time to resume instead of starting over"
            )
            raise UsageError(
                f"cannot write the dead-letter file {self._dl_path}: "
                f"{exc.strerror or os.strerror(exc.errno)}; the run stopped",
                hint=f"free some space (or raise the file-size limit), then {resume}",
            ) from None
        self._dl_offset += len(data)
        self.result.dead_letter_total += len(lines)
        self.result.dead_lettered += len(lines)

    # -- main pass ----------------------------------------------------------------
    def _pump(self, spool: IO[bytes], shift: timedelta | None) -> None:
        o = self.opts
        window = o.concurrency * 4  # batches not yet committed, at most
        self._window = threading.BoundedSemaphore(window)
        self._queue: queue.Queue = queue.Queue(maxsize=o.concurrency * 2)
        self._pending: dict[int, _Batch] = {}
        self._next_commit = 0
        self._reader_error: BaseException | None = None
        policy = RetryPolicy(
            max_retries=o.max_retries,
            base_delay=o.base_delay,
            max_delay=o.max_delay,
            max_retry_after=o.max_retry_after,
            bounded=True,
        )  # each batch ends within policy.total_bound(timeout)
        # A small burst (50 ms of slots) lets senders win back time lost to
        # scheduling jitter; the bucket never lets it exceed the rate within
        # any one second, the first one included.
        limiter = TokenBucket(o.rate, burst=replay_burst(o.rate)) if o.rate else None
        own_client = self.client is None and not o.dry_run
        client = self.client
        if own_client:
            client = make_client(o.timeout, max_connections=o.concurrency)
        reader = threading.Thread(target=self._reader, args=(spool, shift), name="cdpio-replay-reader", daemon=True)
        senders = (
            []
            if o.dry_run
            else [
                threading.Thread(
                    target=self._sender, args=(client, policy, limiter), name=f"cdpio-replay-sender-{i}", daemon=True
                )
                for i in range(o.concurrency)
            ]
        )
        self._t0 = time.perf_counter()
        try:
            reader.start()
            for t in senders:
                t.start()
            try:
                while True:
                    alive = [t for t in [reader, *senders] if t.is_alive()]
                    if not alive:
                        break
                    alive[0].join(self.progress_interval)
                    self._report_progress()
            except KeyboardInterrupt:
                self.result.interrupted = True
                self.stop.set()
                # Unblock the reader and let senders finish their request in flight.
                self._drain_queue()
                for t in senders:
                    t.join()
                reader.join(timeout=5)
            self._report_progress()
        finally:
            if own_client:
                client.close()
        if self._reader_error is not None:
            raise self._reader_error

    def _drain_queue(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        for _ in range(self.opts.concurrency):
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break

    def _report_progress(self) -> None:
        if self.on_progress is None:
            return
        res = self.result
        elapsed = max(1e-9, time.perf_counter() - self._t0)
        with self._lock:
            done = res.accepted + res.failed + res.dropped_by_mapping + res.invalid
            if res.dry_run:
                done = res.read
            snap = Progress(
                total=res.total,
                done=done,
                accepted=res.accepted,
                failed=res.failed,
                retried=res.retried,
                events_per_second=(res.would_send if res.dry_run else res.accepted + res.failed) / elapsed,
            )
        try:
            self.on_progress(snap)
        except Exception:
            pass  # a progress display must never break the replay

    # Reader ------------------------------------------------------------------
    def _reader(self, spool: IO[bytes], shift: timedelta | None) -> None:
        try:
            self._read_all(spool, shift)
        except BaseException as exc:  # surfaced by _pump in the main thread
            self._reader_error = exc
            self.stop.set()
        finally:
            if not self.opts.dry_run:
                for _ in range(self.opts.concurrency):
                    self._put(None, final=True)

    def _put(self, item, final: bool = False) -> bool:
        while True:
            if self.stop.is_set() and not final:
                return False
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                if self.stop.is_set() and final:
                    return False

    def _read_all(self, spool: IO[bytes], shift: timedelta | None) -> None:
        """Cut the spooled records into batches, in input order."""
        route, o, res = self.route, self.opts, self.result
        displays = [s.display for s in self._sources]
        pos = list(self._skip)
        seq = 0
        batch: _Batch | None = None
        passthrough = bool(getattr(route, "passthrough", False))
        limit = route.lane_limits("batch")
        envelope, max_bytes = route.envelope_bytes, route.max_batch_bytes
        read, unpack_from, head_size = spool.read, _SPOOL_HEAD.unpack_from, _SPOOL_HEAD.size

        def new_batch(lane: str) -> _Batch | None:
            # Back-pressure: never run more than `window` batches ahead of
            # the commit point (bounded memory, bounded checkpoint lag).
            while not self._window.acquire(timeout=0.05):
                if self.stop.is_set():
                    return None
            return _Batch(seq=seq, end_pos=list(pos), lane=lane)

        def flush() -> bool:
            nonlocal batch, seq
            if batch is None:
                return True
            b, batch = batch, None
            b.end_pos = list(pos)
            seq += 1
            with self._lock:
                res.read += b.records
            if o.dry_run or not b.items:
                if b.items:
                    with self._lock:
                        res.requests += 1
                        res.would_send += len(b.msgs)
                self._complete(b)
                return True
            return self._put(b)

        # The spool is read in large chunks and records are sliced out of them.
        buf, off = b"", 0
        while True:
            if len(buf) - off < head_size:
                buf = buf[off:] + read(_SPOOL_CHUNK)
                off = 0
                if len(buf) < head_size:
                    break
            si, index, line, kind, length = unpack_from(buf, off)
            off += head_size
            end = off + length
            if end > len(buf):
                buf = buf[off:] + read(max(_SPOOL_CHUNK, length))
                off, end = 0, length
            payload = buf[off:end]
            off = end
            if self.stop.is_set():
                return
            pos[si] = index + 1
            if batch is None:
                batch = new_batch("batch")
                if batch is None:
                    return
            batch.records += 1
            display = displays[si]
            if kind == _INVALID:
                batch.invalid += 1
                batch.dl_lines.append(self._invalid_dl_line(payload, display, line))
                continue
            data = payload
            msg = None
            prepared = None
            if kind == _MAPPED:
                data, prepared = self._unpack_prepared(payload)
            elif shift is not None:
                msg = orjson.loads(data)
                _shift_timestamps(msg, shift)
                data = messages.encode(msg)
                if len(data) > messages.MAX_MESSAGE_BYTES:
                    reason = f"message is {len(data):,} bytes after shifting timestamps"
                    batch.invalid += 1
                    batch.dl_lines.append(
                        _dl_line(
                            data,
                            msg,
                            {
                                "reason": f"invalid: {reason}",
                                "http_status": None,
                                "attempts": 0,
                                "file": display,
                                "line": line,
                            },
                        )
                    )
                    continue
            if passthrough and prepared is None:
                # Segment-shaped routes send the message as encoded.
                if not batch.items or (
                    len(batch.items) < limit and batch.nbytes + len(data) + 1 + envelope <= max_bytes
                ):
                    batch.msgs.append((display, line, data))
                    batch.items.append(data)
                    batch.nbytes += len(data) + 1
                    if len(batch.items) >= limit and not flush():
                        return
                    continue
            if prepared is None:
                if msg is None:
                    msg = orjson.loads(data)
                prepared = route.prepare(msg, data)
            if prepared.dropped is not None:
                batch.dropped += 1
                if len(res.drop_examples) < EXAMPLES:
                    res.drop_examples.append(Example(display, line, prepared.dropped))
                continue
            if prepared.problem is not None:
                batch.invalid += 1
                batch.dl_lines.append(
                    _dl_line(
                        data,
                        msg,
                        {
                            "reason": f"invalid: {prepared.problem}",
                            "http_status": None,
                            "attempts": 0,
                            "file": display,
                            "line": line,
                        },
                    )
                )
                if len(res.invalid_examples) < EXAMPLES:
                    res.invalid_examples.append(Example(display, line, prepared.problem))
                continue
            size = sum(len(i) + 1 for i in prepared.items)
            lane_limit = route.lane_limits(prepared.lane)
            if batch.items and (
                prepared.lane != batch.lane
                or len(batch.items) + len(prepared.items) > lane_limit
                or batch.nbytes + size + envelope > max_bytes
            ):
                # Cut before this message: its record belongs to the next batch.
                pos[si] = index
                batch.records -= 1
                if not flush():
                    return
                pos[si] = index + 1
                batch = new_batch(prepared.lane)
                if batch is None:
                    return
                batch.records += 1
            if not batch.items:
                batch.lane = prepared.lane
            mi = len(batch.msgs)
            batch.msgs.append((display, line, data))
            if not passthrough:
                if batch.owners is None:
                    batch.owners = list(range(len(batch.items)))
                batch.owners.extend([mi] * len(prepared.items))
            batch.items.extend(prepared.items)
            batch.nbytes += size
            if len(batch.items) >= lane_limit:
                if not flush():
                    return
        if batch is not None:
            flush()

    def _invalid_dl_line(self, payload: bytes, display: str, line: int) -> bytes:
        """The dead-letter line of an invalid record, from its compact spool form."""
        rid, size = _INVALID_HEAD.unpack_from(payload)
        data = payload[_INVALID_HEAD.size : _INVALID_HEAD.size + size] or None
        value, extra, inline = orjson.loads(payload[_INVALID_HEAD.size + size :])
        reason = inline if rid == _INLINE_REASON else self._reasons[rid]
        meta = {"reason": f"invalid: {reason}", "http_status": None, "attempts": 0, "file": display, "line": line}
        if extra:
            meta.update(extra)
        return _dl_line(data, value, meta)

    # Senders -------------------------------------------------------------------
    def _sender(self, client, policy: RetryPolicy, limiter: TokenBucket | None) -> None:
        while True:
            b = self._queue.get()
            if b is None:
                return
            if self.stop.is_set():
                continue  # never resolved: the checkpoint stays before it, a resume sends it
            try:
                self._send_batch(client, policy, limiter, b)
            except BaseException as exc:  # pragma: no cover - a bug; stop cleanly
                self._reader_error = exc
                self.stop.set()

    def _send_batch(self, client, policy: RetryPolicy, limiter: TokenBucket | None, b: _Batch) -> None:
        route, res = self.route, self.result
        spec = route.build_request(b.items, lane=b.lane)
        attempt = send(client, spec, policy, limiter, cancel=self.stop)
        with self._lock:
            res.requests += attempt.attempts
            res.retried += attempt.retries
            for status, latency in zip(attempt.history, attempt.latencies, strict=False):
                key = "error" if status is None else str(status)
                self._status_counts[key] = self._status_counts.get(key, 0) + 1
                self._latency.add(latency)
                if status is not None:
                    res.responses += 1
                if status in (401, 403):
                    res.auth_failures += 1
        if attempt.cancelled and not attempt.history:
            return  # never sent: unresolved
        if attempt.cancelled:
            # Sent at least once but the outcome is unknown: leave it unresolved;
            # a resume re-sends it with the same messageIds.
            with self._lock:
                res.sent += len(b.msgs)
            return
        verdict = route.interpret(attempt, len(b.items))
        failed_msgs: dict[int, str] = {}
        if not verdict.accepted:
            for mi in range(len(b.msgs)):
                failed_msgs[mi] = verdict.reason or attempt.describe_failure()
        else:
            for item, text in verdict.item_errors.items():
                mi = item if b.owners is None else b.owners[item]
                failed_msgs[mi] = f"{failed_msgs[mi]}; {text}" if mi in failed_msgs else text
        for mi, reason in sorted(failed_msgs.items()):
            file, line, data = b.msgs[mi]
            b.dl_lines.append(
                _dl_line(
                    data,
                    None,
                    {
                        "reason": reason,
                        "http_status": attempt.status,
                        "attempts": attempt.attempts,
                        "file": file,
                        "line": line,
                    },
                )
            )
            if len(res.failure_examples) < EXAMPLES:
                res.failure_examples.append(Example(file, line, reason, attempt.status))
        b.failed = len(failed_msgs)
        b.accepted = len(b.msgs) - b.failed
        if not verdict.accepted and _service_failure(attempt.status):
            b.failed_unreachable = b.failed
        with self._lock:
            res.sent += len(b.msgs)
        b.msgs = []  # what failed is in dl_lines now; free the rest early
        with self._lock:
            if b.accepted:
                self._any_accepted = True
        self._check_abort(attempt, verdict.accepted)
        self._complete(b)

    def _check_abort(self, attempt, accepted: bool) -> None:
        """Stop early when the rest cannot succeed and nothing ever was
        accepted: a credential rejection (401/403 is definitive), or several
        batches in a row that failed after every retry (the service is down)."""
        res = self.result
        with self._lock:
            if accepted:
                self._consecutive_down = 0
                self._down_throttled = False
            elif _service_failure(attempt.status) or attempt.status == 429:
                self._consecutive_down += 1
                self._down_throttled = self._down_throttled or attempt.status == 429
            if accepted or self._any_accepted or self.stop.is_set():
                return
            if attempt.status in (401, 403):
                res.aborted = "credential"
                res.abort_reason = f"the service rejected the credentials: {attempt.describe_failure()}"
                self.stop.set()
            elif self._consecutive_down >= max(5, 2 * self.opts.concurrency):
                if self._down_throttled:
                    # Reached, but refusing: a 429 is a rejection (exit 1), not "unreachable".
                    res.aborted = "rate_limited"
                    res.abort_reason = (
                        "the service kept answering 429 Too Many Requests after every "
                        f"retry: {attempt.describe_failure()}"
                    )
                else:
                    res.aborted = "unreachable"
                    res.abort_reason = f"the service could not be reached: {attempt.describe_failure()}"
                self.stop.set()

    # Commit ------------------------------------------------------------------------
    def _complete(self, b: _Batch) -> None:
        """Mark a batch resolved; commit every resolved batch in input order."""
        b.items = []
        b.resolved = True
        with self._lock:
            self._pending[b.seq] = b
            res = self.result
            while self._next_commit in self._pending:
                done = self._pending.pop(self._next_commit)
                self._next_commit += 1
                self._write_dead_letters(done.dl_lines)
                res.invalid += done.invalid
                res.dropped_by_mapping += done.dropped
                res.accepted += done.accepted
                res.failed += done.failed
                res.failed_unreachable += done.failed_unreachable
                self._done = done.end_pos
                for key, value in (
                    ("accepted", done.accepted),
                    ("failed", done.failed),
                    ("invalid", done.invalid),
                    ("dropped_by_mapping", done.dropped),
                ):
                    self._totals[key] = self._totals.get(key, 0) + value
                self._window.release()
                if self.opts.checkpoint and not self.opts.dry_run:
                    self._write_checkpoint(complete=False)


def replay_burst(rate: float) -> float:
    """The limiter's catch-up allowance for `--rate`: 50 ms of slots."""
    return max(1.0, rate * 0.05)


def replay(paths: list[str], route, options: ReplayOptions, **kwargs) -> ReplayResult:
    """Replay `paths` (files, globs, or "-") to `route`.  See `Replay`."""
    return Replay(paths, route, options, **kwargs).run()


def make_route(
    name: str,
    base_url: str,
    *,
    write_key: str | None = None,
    site_id: str | None = None,
    track_api_key: str | None = None,
    pipelines_api_key: str | None = None,
    batch_size: int = 100,
    strict: bool = False,
):
    """Build the route object replay sends through."""
    if name == "segment":
        from cdpio_cli.routes.segment import SegmentRoute

        if not write_key:
            raise UsageError(
                "the segment route needs a Segment write key",
                hint="set segment.write_key in cdpio.yaml (or use --sandbox)",
            )
        return SegmentRoute(base_url, write_key, batch_size=batch_size)
    if name == "pipelines":
        from cdpio_cli.routes.pipelines import PipelinesRoute

        if not pipelines_api_key:
            raise UsageError(
                "the pipelines route needs a Customer.io Pipelines API key",
                hint="set customerio.pipelines_api_key in cdpio.yaml (or use --sandbox)",
            )
        return PipelinesRoute(base_url, pipelines_api_key, batch_size=batch_size, strict=strict)
    if name == "customerio":
        from cdpio_cli.routes.customerio import CustomerioRoute

        if not site_id or not track_api_key:
            raise UsageError(
                "the customerio route needs a Customer.io site id and Track API key",
                hint="set customerio.site_id and customerio.track_api_key in cdpio.yaml (or use --sandbox)",
            )
        return CustomerioRoute(base_url, site_id, track_api_key, batch_size=batch_size)
    raise UsageError(f"unknown route {name!r}", hint="use segment, pipelines or customerio")

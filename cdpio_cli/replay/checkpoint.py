"""The checkpoint: what a run has resolved, written atomically as it goes, so
a killed run resumes exactly (`ResumeState`), and the checks that a checkpoint
read back belongs to this input, these flags and this dead-letter file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson

from cdpio_cli import messages
from cdpio_cli.errors import UsageError
from cdpio_cli.paths import open_private

CHECKPOINT_KIND = "cdpio-replay-checkpoint"
CHECKPOINT_VERSION = 1
# The fingerprint of an input in the checkpoint: its size and a hash of its
# first bytes (enough to notice another file under the same name).
FINGERPRINT_BYTES = 64 * 1024
BAD_CHECKPOINT_HINT = (
    "delete it (or pass another --checkpoint) to start over; messages that carry "
    "their own messageId are dropped by the service as duplicates when sent again"
)


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


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
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


def load_checkpoint(path: str) -> dict[str, Any] | None:
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
    if not isinstance(data, dict) or data.get("kind") != CHECKPOINT_KIND:
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


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


_REQUIRED = {"route": str, "inputs": list, "seed": str, "dead_letter_bytes": int, "complete": bool}
_OPTIONAL: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("id_prefix", (str,)),
    ("dead_letter", (str,)),
    ("new_message_ids", (bool,)),
    ("shift_timestamps", (bool,)),
    ("shift_seconds", (int, float)),
    ("totals", (dict,)),
)


def checkpoint_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a checkpoint's fields (types, ranges), or None.
    Offsets are checked against the input and the dead-letter file later."""
    for key, kind in _REQUIRED.items():
        if key not in data:
            return f"`{key}` is missing"
        if type(data[key]) is not kind:
            return f"`{key}` must be {kind.__name__}, not {type(data[key]).__name__}"
    if not data["seed"] or len(data["seed"]) > 256:
        return "`seed` is empty or too long"
    if not _count(data["dead_letter_bytes"]):
        return f"`dead_letter_bytes` must be a whole number >= 0, not {data['dead_letter_bytes']!r}"
    for key, kinds in _OPTIONAL:
        if data.get(key) is not None and type(data.get(key)) not in kinds:
            return f"`{key}` has the wrong type ({type(data.get(key)).__name__})"
    shift = data.get("shift_seconds")
    if shift is not None and not (abs(shift) < 1e10):  # also NaN
        return f"`shift_seconds` is out of range ({shift!r})"
    for key, value in (data.get("totals") or {}).items():
        if not _count(value):
            return f"`totals.{key}` must be a whole number >= 0, not {value!r}"
    for i, entry in enumerate(data["inputs"]):
        problem = _input_problem(i, entry)
        if problem:
            return problem
    return None


def _input_problem(i: int, entry: Any) -> str | None:
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
    import hashlib  # only a run with a checkpoint (OpenSSL's library loads in ~2 ms)

    with open(path, "rb") as fh:
        head = fh.read(FINGERPRINT_BYTES)
        size = os.fstat(fh.fileno()).st_size
    return {"size": size, "head_sha256": hashlib.sha256(head).hexdigest()}


@dataclass(eq=False, repr=False)
class ResumeState:
    """Where a run starts (a checkpoint's, or nothing done yet) and, as batches
    commit, how far it got: what the next checkpoint records."""

    seed: str  # derived messageIds: stable across the runs of one job
    skip: list[int]  # per input: records resolved by an earlier run
    shift: timedelta | None  # --shift-timestamps, fixed by the first run
    dead_letter_bytes: int  # the dead-letter file's length the checkpoint covers
    totals: dict[str, int] = field(default_factory=dict)  # counts over every run of the job
    done: list[int] = field(default_factory=list)  # per input: records committed so far

    def __post_init__(self) -> None:
        if not self.done:
            self.done = list(self.skip)

    @classmethod
    def fresh(cls, inputs: int) -> ResumeState:
        # secrets.token_hex(16) is this (os.urandom); `secrets` imports hmac and hashlib (OpenSSL: ~2 ms).
        return cls(seed=os.urandom(16).hex(), skip=[0] * inputs, shift=None, dead_letter_bytes=0)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> ResumeState:
        shift = ckpt.get("shift_seconds")
        return cls(
            seed=ckpt["seed"],
            skip=[int(f.get("done", 0)) for f in ckpt["inputs"]],
            shift=timedelta(seconds=shift) if shift is not None else None,
            dead_letter_bytes=ckpt["dead_letter_bytes"],
            totals=dict(ckpt.get("totals") or {}),
        )


def check_resumable(
    ckpt: dict[str, Any],
    path: str,
    keys: list[str],
    fingerprints: list[dict[str, Any]],
    flags: Sequence[tuple[str, object]],
) -> None:
    """Refuse a checkpoint written for other inputs, changed inputs or other flags."""
    if [f.get("path") for f in ckpt["inputs"]] != keys:
        raise UsageError(
            f"{path}: the checkpoint was written for other input files",
            hint="replay the same files in the same order, or pass another --checkpoint",
        )
    for entry, now in zip(ckpt["inputs"], fingerprints, strict=False):
        recorded = {k: entry.get(k) for k in ("size", "head_sha256") if entry.get(k) is not None}
        if recorded and recorded != {k: now[k] for k in recorded}:
            raise UsageError(
                f"{path}: {entry['path']} changed since the checkpoint was written (its size or first bytes differ)",
                hint="replay the file the checkpoint was written for, or " + BAD_CHECKPOINT_HINT,
            )
    for flag, value in flags:
        if ckpt.get(flag, value if flag != "route" else None) != value:
            raise UsageError(
                f"{path}: the checkpoint was written with {flag}={ckpt.get(flag)!r}, this run has {value!r}",
                hint="resume with the same flags, or pass another --checkpoint",
            )


def check_dead_letter_length(path: str, dl_path: str, dl_offset: int) -> None:
    """The dead-letter file must still hold what the checkpoint says it holds."""
    dl_size = os.path.getsize(dl_path) if os.path.exists(dl_path) else None
    if dl_offset and dl_size is None:
        raise UsageError(
            f"{path}: the dead-letter file {dl_path} it refers to is missing",
            hint="restore it, or delete the checkpoint to start over",
        )
    if dl_size is not None and dl_offset > dl_size:
        raise UsageError(
            f"{path}: the checkpoint says the dead-letter file {dl_path} holds "
            f"{dl_offset:,} bytes, but it holds {dl_size:,}",
            hint="restore the dead-letter file, or " + BAD_CHECKPOINT_HINT,
        )


def checkpoint_document(
    *,
    route: str,
    keys: list[str],
    records: list[int],
    fingerprints: list[dict[str, Any]],
    state: ResumeState,
    flags: dict[str, Any],
    dead_letter: str,
    dead_lettered: int,
    complete: bool,
) -> dict[str, Any]:
    """The checkpoint file's content (`flags`: id_prefix, new_message_ids, shift_timestamps)."""
    return {
        "kind": CHECKPOINT_KIND,
        "version": CHECKPOINT_VERSION,
        "route": route,
        "inputs": [
            {"path": key, "done": done, "records": n, **fp}
            for key, done, n, fp in zip(keys, state.done, records, fingerprints, strict=False)
        ],
        "seed": state.seed,
        **flags,
        "shift_seconds": None if state.shift is None else state.shift.total_seconds(),
        "dead_letter": os.path.abspath(dead_letter),
        "dead_letter_bytes": state.dead_letter_bytes,
        "totals": {**state.totals, "dead_lettered": dead_lettered},
        "complete": complete,
        "updated_at": messages.now_iso(),
    }


def save_checkpoint(path: str, data: dict[str, Any]) -> None:
    try:
        write_json_atomic(path, data)
    except OSError as exc:
        # e.g. the disk filled up, or the directory went away mid-run.
        raise UsageError(
            f"cannot write the checkpoint {path}: {exc.strerror or exc}",
            hint="free some space or fix the path, then rerun the same command: the "
            "last checkpoint written is still valid",
        ) from None

"""Is a message valid?  `fast_valid` says yes cheaply for the common clean
message; anything else is judged by `messages.spec_problems`, the one
implementation of the rules."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from cdpio_cli import messages

_FAST_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})\Z")
_FAST_TYPES = frozenset(("track", "identify", "page", "screen"))
_MAX_BYTES = messages.MAX_MESSAGE_BYTES
_MAX_ID = messages.MAX_MESSAGE_ID_CHARS
_OBJECT_OR_NONE = frozenset((dict, type(None)))
_SECONDS = frozenset(f":{m:02d}" for m in range(60))  # ":SS" (no leap second)
_MILLIS = frozenset(f".{m:03d}Z" for m in range(1000))  # ".fffZ"
# "YYYY-MM-DDTHH:MM" heads already judged by the exact check: a file's
# timestamps share few minutes, so the calendar and clock check runs once per
# minute, not once per message.  Cleared when full (bounded memory).
_HEADS: dict[str, bool] = {}
_MAX_HEADS = 4096


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
    supported Python, 3.10 included).  The head up to the minute is judged
    by the exact check (cached); the seconds and fraction here."""
    if value is None:
        return True
    if type(value) is not str:
        return False
    n = len(value)
    if n == 24:
        tail_ok = value[19:] in _MILLIS
    elif n == 20:
        tail_ok = value[19] == "Z"
    elif n == 27:
        tail_ok = value[19] == "." and value[26] == "Z" and value[20:26].isdigit() and value.isascii()
    else:
        return _slow_timestamp_ok(value)
    if tail_ok and value[16:19] in _SECONDS:
        head = value[:16]
        ok = _HEADS.get(head)
        if ok is None:
            ok = _slow_timestamp_ok(head + ":00Z")
            if len(_HEADS) >= _MAX_HEADS:
                _HEADS.clear()
            _HEADS[head] = ok
        return ok
    return _slow_timestamp_ok(value)


def fast_valid(msg: Any, size: int) -> bool:
    """A quick yes for the common, clean message: True only when
    `messages.spec_problems` would report no error (a property test holds
    the two together).  False means "ask spec_problems", not "invalid".

    Replay validates every message before sending anything; this keeps that
    pre-pass cheap on large files without a second implementation of the
    rules deciding what is invalid.  It runs once per message, so it is
    written for few operations: `s and not s.isspace()` is `s.strip()`
    without a copy, and the common timestamp form is checked inline.
    """
    if type(msg) is not dict or size > _MAX_BYTES:
        return False
    get = msg.get
    mtype = get("type")
    if type(mtype) is not str or mtype not in _FAST_TYPES:  # a list is unhashable
        return False
    uid = get("userId")
    if not (type(uid) is str and uid and not uid.isspace()):
        anon = get("anonymousId")
        if not (type(anon) is str and anon and not anon.isspace()):
            return False
    if mtype == "track":
        event = get("event")
        if type(event) is not str or not event:
            return False
    elif mtype != "identify":
        name = get("name")
        if name is not None and type(name) is not str:
            return False
    if (
        type(get("properties")) not in _OBJECT_OR_NONE
        or type(get("traits")) not in _OBJECT_OR_NONE
        or type(get("context")) not in _OBJECT_OR_NONE
    ):
        return False
    value = get("timestamp")
    if value is not None and not (
        # "YYYY-MM-DDTHH:MM:SS.fffZ" whose minute is known good: _fast_timestamp_ok's first case.
        type(value) is str
        and len(value) == 24
        and value[19:] in _MILLIS
        and value[16:19] in _SECONDS
        and _HEADS.get(value[:16]) is True
    ):
        if not _fast_timestamp_ok(value):
            return False
    value = get("originalTimestamp")
    if value is not None and not _fast_timestamp_ok(value):
        return False
    value = get("sentAt")
    if value is not None and not _fast_timestamp_ok(value):
        return False
    mid = get("messageId")
    return mid is None or (type(mid) is str and len(mid) <= _MAX_ID)


def _email_identify(msg: Any) -> bool:
    return (
        type(msg) is dict
        and msg.get("type") == "identify"
        and isinstance(msg.get("traits"), dict)
        and bool(msg["traits"].get("email"))
    )


def problems_text(msg: Any, size: int | None = None, *, email_identifies: bool = False) -> str | None:
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
        if p.severity == messages.Severity.ERROR
        and not (email_identifies and p.rule == "spec/no-identity" and _email_identify(msg))
    ]
    if not errors:
        return None
    return "; ".join(p.message for p in errors)


# ---------------------------------------------------------------------------
# Checkpoint
# ---------------------------------------------------------------------------

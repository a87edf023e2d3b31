"""Segment-spec messages: limits, size, ids, timestamps and spec validation.

One implementation shared by the sandbox (what Segment drops on ingest), lint
(the `spec/*` rules), replay (validation before sending) and send-test.
Facts (docs/contracts.md, "Segment"): the HTTP Tracking API's fields, limits
and responses, and the Segment Spec (https://segment.com/docs/connections/spec/).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from cdpio_cli.enums import TextEnum

# Segment Tracking API limits (docs/contracts.md, "Segment").  The same limits
# hold for the Customer.io Pipelines API (docs/contracts.md, "Pipelines").
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
MAX_MESSAGE_ID_CHARS = 100

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")


class Severity(TextEnum):
    """How bad a problem with a message is (lint's finding levels are these)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


# Every rule id `spec_problems` can return (lint checks --disable against it).
SPEC_RULES = (
    "spec/not-an-object",
    "spec/missing-type",
    "spec/unknown-type",
    "spec/no-identity",
    "spec/track-without-event",
    "spec/event-not-string",
    "spec/group-without-group-id",
    "spec/alias-without-previous-id",
    "spec/alias-without-user-id",
    "spec/name-not-string",
    "spec/properties-not-object",
    "spec/traits-not-object",
    "spec/context-not-object",
    "spec/bad-timestamp",
    "spec/message-id-not-string",
    "spec/message-id-too-long",
    "spec/message-too-large",
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one message.  `rule` is a stable id (lint uses it)."""

    rule: str
    severity: Severity
    message: str
    # Segment's "failed on ingest" discard code when Segment itself drops the
    # message with a 200 (None: Segment accepts it, or rejects the request).
    ingest_code: str | None = None


def encode(msg: Any) -> bytes:
    """Compact JSON, the way it goes on the wire (and is measured for limits)."""
    try:
        # Without OPT_NON_STR_KEYS (which costs about 40% more) orjson writes the
        # same bytes whenever it accepts the value; it refuses a key that is not a
        # string, which the option handles (tests/test_messages.py holds it).
        return _dumps(msg)
    except TypeError:
        pass
    try:
        return _dumps(msg, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # orjson refuses integers beyond 64 bits, which JSON and YAML allow.
        return json.dumps(msg, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


_dumps = orjson.dumps


def message_size(msg: Any) -> int:
    return len(encode(msg))


def new_message_id() -> str:
    return str(uuid.uuid4())


def ensure_message_id(msg: dict) -> str:
    """Give the message a messageId if it has none, and return it.

    Fixing the id before the first attempt is what makes retries safe:
    Segment and Customer.io drop a messageId they have already seen.
    """
    mid = msg.get("messageId")
    if not isinstance(mid, str) or not mid:
        mid = new_message_id()
        msg["messageId"] = mid
    return mid


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$")
# The form nearly every SDK sends (`2026-11-01T10:00:00.000Z`): a subset of _ISO_RE.
_CANONICAL_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z")
_LONG_FRACTION_RE = re.compile(r"^(.*\.\d{6})\d+(.*)$")
_fromisoformat = datetime.fromisoformat


def parse_timestamp(value: Any) -> datetime | None:
    """Parse an ISO-8601 timestamp as Segment accepts it; None when it is not one."""
    if type(value) is str and len(value) in (20, 24) and value[-1] == "Z" and _CANONICAL_RE.fullmatch(value):
        try:
            # Python 3.11+ reads the "Z" itself; 3.10 raises and takes the general path.
            return _fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, str) or not _ISO_RE.match(value.strip()):
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python < 3.11 accepts at most 6 fractional digits.
    m = _LONG_FRACTION_RE.match(text) if "." in text else None
    if m:
        text = m.group(1) + m.group(2)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def to_unix_seconds(value: Any) -> int | None:
    """ISO string, datetime or number -> integer unix seconds (Customer.io's unit)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
        # A millisecond timestamp is ~1000x a plausible seconds value.
        if number > 100_000_000_000:
            number /= 1000.0
        return int(number)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    if isinstance(value, str):
        if value.isdigit():
            return to_unix_seconds(int(value))
        parsed = parse_timestamp(value)
        return None if parsed is None else int(parsed.timestamp())
    return None


def has_identity(msg: dict) -> bool:
    return _nonempty_id(msg.get("userId")) or _nonempty_id(msg.get("anonymousId"))


def _nonempty_id(value: Any) -> bool:
    if type(value) is str:  # the usual case, first
        return value.strip() != ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and value.strip() != ""


def spec_problems(msg: Any, *, size: int | None = None) -> list[Problem]:
    """Everything that breaks the Segment spec or its limits, in a stable order.

    `size` may be passed when the caller already encoded the message.
    """
    if not isinstance(msg, dict):
        return [
            Problem(
                "spec/not-an-object",
                Severity.ERROR,
                f"a message must be a JSON object, got {type(msg).__name__}",
                "bad_request",
            )
        ]
    mtype = msg.get("type")
    out = _type_problems(mtype)
    out += _required_field_problems(msg, mtype)
    out += _shape_problems(msg)
    if size is None:
        size = message_size(msg)
    if size > MAX_MESSAGE_BYTES:
        out.append(
            Problem(
                "spec/message-too-large",
                Severity.ERROR,
                f"message is {size:,} bytes; Segment rejects messages over {MAX_MESSAGE_BYTES:,} bytes with 400",
            )
        )
    return out


def _type_problems(mtype: Any) -> list[Problem]:
    if mtype is None:
        text = "message has no type (identify, track, page, screen, group or alias)"
        return [Problem("spec/missing-type", Severity.ERROR, text, "bad_request")]
    if mtype not in MESSAGE_TYPES:
        text = f"unknown type {mtype!r}; expected one of {', '.join(MESSAGE_TYPES)}"
        return [Problem("spec/unknown-type", Severity.ERROR, text, "bad_request")]
    return []


def _required_field_problems(msg: dict[str, Any], mtype: Any) -> list[Problem]:
    """The identity every message needs, and the fields its type needs."""
    out = []
    if not has_identity(msg):
        text = "message has neither userId nor anonymousId; Segment drops it on ingest"
        out.append(Problem("spec/no-identity", Severity.ERROR, text, "no_user_anon_id"))
    if mtype == "track":
        event = msg.get("event")
        if event is None or event == "":
            text = "track message has no event name; Segment drops it on ingest"
            out.append(Problem("spec/track-without-event", Severity.ERROR, text, "event_not_defined"))
        elif not isinstance(event, str):
            text = f"event name must be a string, got {type(event).__name__}"
            out.append(Problem("spec/event-not-string", Severity.ERROR, text, "event_not_string"))
    if mtype == "group" and not _nonempty_id(msg.get("groupId")):
        out.append(
            Problem("spec/group-without-group-id", Severity.ERROR, "group message has no groupId", "id_required")
        )
    if mtype == "alias":
        if not _nonempty_id(msg.get("previousId")):
            text = "alias message has no previousId"
            out.append(Problem("spec/alias-without-previous-id", Severity.ERROR, text, "id_required"))
        if not _nonempty_id(msg.get("userId")):
            out.append(
                Problem("spec/alias-without-user-id", Severity.ERROR, "alias message has no userId", "id_required")
            )
    if mtype in ("page", "screen") and msg.get("name") is not None and not isinstance(msg.get("name"), str):
        out.append(Problem("spec/name-not-string", Severity.ERROR, "name must be a string", "name_not_string"))
    return out


# Fields that must be objects when present: (field, rule, Segment's discard code).
_OBJECT_FIELDS = (
    ("properties", "spec/properties-not-object", "properties_not_object"),
    ("traits", "spec/traits-not-object", "traits_not_object"),
    ("context", "spec/context-not-object", "bad_request"),
)


_TIMESTAMP_FIELDS = ("timestamp", "originalTimestamp", "sentAt")


def _shape_problems(msg: dict[str, Any]) -> list[Problem]:
    """Fields of the wrong type: objects, timestamps, the messageId."""
    out = []
    get = msg.get
    for key, rule, code in _OBJECT_FIELDS:
        value = get(key)
        if value is not None and not isinstance(value, dict):
            text = f"{key} must be an object, got {type(value).__name__}"
            out.append(Problem(rule, Severity.ERROR, text, code))
    for key in _TIMESTAMP_FIELDS:
        value = get(key)
        if value is not None and parse_timestamp(value) is None:
            text = f"{key} {str(value)[:40]!r} is not an ISO-8601 timestamp"
            out.append(Problem("spec/bad-timestamp", Severity.ERROR, text))
    mid = msg.get("messageId")
    if mid is not None and not isinstance(mid, str):
        out.append(Problem("spec/message-id-not-string", Severity.ERROR, "messageId must be a string"))
    elif mid is not None and len(mid) > MAX_MESSAGE_ID_CHARS:
        text = f"messageId is {len(mid)} characters; the limit is {MAX_MESSAGE_ID_CHARS}"
        out.append(Problem("spec/message-id-too-long", Severity.ERROR, text))
    return out


def ingest_drop_reason(msg: Any) -> str | None:
    """The discard code Segment uses when it answers 200 but drops this message."""
    for problem in spec_problems(msg, size=0):
        if problem.ingest_code:
            return problem.ingest_code
    return None


def describe(msg: dict) -> str:
    """A short human label: `track "Signed Up" user=u1`."""
    mtype = msg.get("type", "?")
    label = mtype if isinstance(mtype, str) else repr(mtype)[:30]
    if mtype == "track":
        label += f' "{msg["event"]}"' if msg.get("event") else " (no event)"
    elif mtype in ("page", "screen") and msg.get("name"):
        label += f' "{msg.get("name")}"'
    who = msg.get("userId") or msg.get("anonymousId")
    if who is not None:
        label += f" {'user' if msg.get('userId') else 'anon'}={who}"
    return label


def show_value(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it (JSON: true, null, "text"), not Python's repr; cut at `limit`."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

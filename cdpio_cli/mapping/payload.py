"""Field helpers shared by every action: identifier resolution, timestamp
conversion, and the Track v2 body (utils.ts resolveIdentifiers, isEmail,
buildPayload in segmentio/action-destinations
`packages/destination-actions/src/destinations/customerio/`)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from cdpio_cli.messages import parse_timestamp

# ajv-formats' "email" format, which the destination uses to decide whether a
# person id is an email (utils.ts isEmail).
_EMAIL_RE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    re.IGNORECASE,
)

# segmentio/isostring, the destination's test for "this attribute is a date".
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}((T\d{2}:\d{2}(:\d{2})?)(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?)?$")
DIGITS_RE = re.compile(r"^\d+(\.\d+)?$")


def is_email(value: Any) -> bool:
    return isinstance(value, str) and "@" in value and _EMAIL_RE.match(value) is not None


def str_id(value: Any) -> str | None:
    """A mapped id as the destination sees it: a non-empty string (numbers coerced)."""
    if type(value) is str:  # the usual case, first
        return value if value != "" else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value != "":
        return value
    return None


def resolve_identifiers(
    person_id: Any = None, email: Any = None, anonymous_id: Any = None, object_id: Any = None, object_type_id: Any = "1"
) -> dict | None:
    """The destination's identifier resolution (utils.ts resolveIdentifiers)."""
    if type(person_id) is str and person_id and not object_id and "@" not in person_id and person_id[:4] != "cio_":
        return {"id": person_id}  # the usual id: neither an object, nor an email, nor a cio_ id
    if object_id and object_type_id:
        return {"object_id": object_id, "object_type_id": object_type_id}
    pid = str_id(person_id)
    if pid is not None:
        if pid.startswith("cio_"):
            return {"cio_id": pid[4:]}
        if is_email(pid):
            return {"email": pid}
        return {"id": pid}
    if email:
        return {"email": email}
    if anonymous_id:
        return {"anonymous_id": anonymous_id}
    return None


def _unix(value: str) -> int | None:
    parsed: datetime | None
    try:
        # Fast path (Python 3.11+ reads "...Z" and most ISO-8601 forms).
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = parse_timestamp(value)
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


def convert_timestamp(value: Any) -> Any:
    """`timestamp` is always converted to unix seconds; digit strings are left alone."""
    if not isinstance(value, str) or ("-" not in value and DIGITS_RE.match(value)):
        return value
    unix = _unix(value)
    return value if unix is None else unix


def iso_to_unix(value: str) -> Any:
    if len(value) < 10 or value[4] != "-" or not _ISO_RE.match(value):
        return value
    unix = _unix(value)
    return value if unix is None else unix


def convert_attribute_timestamps(obj: dict) -> dict:
    """ISO-8601 strings inside (nested) objects -> unix seconds ("Convert Timestamps", on by default).

    Like the destination, it walks objects only, not arrays.  Always a new
    dict; most objects hold no date and no object, and are copied whole.
    """
    for value in obj.values():
        tv = type(value)
        # A date has its "-" at 4 and 7 (`YYYY-MM-DD`): ids such as "user-1100@..." are not dates.
        if tv is dict or (tv is str and len(value) >= 10 and value[4] == "-" and value[7] == "-"):
            break
    else:
        return dict(obj)
    out = {}
    for key, value in obj.items():
        if type(value) is str:
            # iso_to_unix's own first test, inlined: most strings are not dates.
            out[key] = value if len(value) < 10 or value[4] != "-" else iso_to_unix(value)
        elif type(value) is dict:
            out[key] = convert_attribute_timestamps(value)
        else:
            out[key] = value
    return out


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def first_not_null(*values: Any) -> Any:
    """The destination's `@if exists` chains: the first value that is not null."""
    for value in values:
        if value is not None:
            return value
    return None


def build_payload(
    type_: str,
    action: str,
    *,
    person_id: Any = None,
    anonymous_id: Any = None,
    email: Any = None,
    object_id: Any = None,
    object_type_id: Any = None,
    timestamp: Any = None,
    convert: bool = True,
    **rest: Any,
) -> dict:
    """utils.ts buildPayload: the v2 body from the mapped fields.

    With "Convert Timestamps" on, every ISO-8601 string in the body's own
    fields is converted, top-level strings (an event name, an event id)
    included, then nested objects; arrays are left alone.
    """
    body: dict[str, Any] = {"type": type_, "action": action}
    for key, value in rest.items():
        if value is None:
            continue  # undefined fields vanish from the JSON
        if convert:
            if type(value) is str:
                value = iso_to_unix(value)
            elif type(value) is dict:
                value = convert_attribute_timestamps(value)
        body[key] = value
    if timestamp:
        body["timestamp"] = convert_timestamp(timestamp)
    if anonymous_id:
        body["attributes"] = {**as_dict(body.get("attributes")), "anonymous_id": anonymous_id}
    if action != "merge":
        kwargs = {"object_type_id": object_type_id} if object_type_id is not None else {}
        identifiers = resolve_identifiers(person_id, email, anonymous_id, object_id, **kwargs)
        if identifiers is not None:
            body["identifiers"] = identifiers
            if "anonymous_id" in identifiers and "attributes" in body:
                body["attributes"].pop("anonymous_id", None)
    return body

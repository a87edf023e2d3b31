"""Track API v2 operations (docs/contracts.md, "Customer.io Track API"): the
actions the sandbox knows, and the checks that reject an operation.

The limits themselves are cdpio_cli/limits.py, the one table `cdpio lint`,
`cdpio explain` and the sandbox share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdpio_cli import limits
from cdpio_cli.sandbox.people import compact_json

PERSON_IDENTIFIERS = ("id", "email", "cio_id")
EVENT_ACTIONS = ("event", "page", "screen")
CONTENT_ACTIONS = ("viewed_content", "clicked_content")
PERSON_ACTIONS = (
    "identify",
    *EVENT_ACTIONS,
    "delete",
    "suppress",
    "unsuppress",
    "add_device",
    "delete_device",
    "add_relationships",
    "delete_relationships",
    "merge",
    *CONTENT_ACTIONS,
)
OBJECT_ACTIONS = ("identify", "identify_anonymous", "delete", "add_relationships", "delete_relationships")
# Actions that may address a person by anonymous_id alone.
ANONYMOUS_OK = ("identify", *EVENT_ACTIONS, *CONTENT_ACTIONS)
RESERVED_ATTRIBUTES = ("_update", "_timestamp", "cio_relationships", "cio_subscription_preferences")


@dataclass(frozen=True)
class OpError:
    """Why Customer.io rejected one operation (v2 `errors[]` entry, v1 `meta.error`)."""

    reason: str
    field: str
    message: str

    def as_v2(self, index: int | None = None) -> dict:
        out: dict[str, Any] = {"reason": self.reason, "field": self.field, "message": self.message}
        if index is not None:
            out = {"batch_index": index, **out}
        return out


def _op_error(violation: limits.Violation | None) -> OpError | None:
    if violation is None:
        return None
    return OpError(violation.reason, violation.field, violation.message)


def check_id(value: Any, field: str = "identifiers.id") -> OpError | None:
    """Customer.io's id rules (cdpio_cli/limits.py, the one table)."""
    return _op_error(limits.check_id(value, field))


def check_attributes(attrs: Any, field: str = "attributes") -> OpError | None:
    if not isinstance(attrs, dict):
        return OpError("invalid", field, "attributes must be an object")
    return _op_error(next(limits.attribute_violations(attrs, field), None))


def check_event(name: Any, data: Any, action: str = "event") -> OpError | None:
    err = checked_event_data(name, data, action)
    return err if isinstance(err, OpError) else None


def checked_event_data(name: Any, data: Any, action: str = "event") -> OpError | bytes | None:
    """The error, or the event data as JSON (measured once, stored as is)."""
    err = limits.check_event_name(name, action)
    if err is not None:
        return _op_error(err)
    if data is None:
        return None
    if type(data) is not dict:
        return OpError("invalid", "attributes", limits.EVENT_DATA_NOT_HASH)
    if not data:
        return None
    blob = compact_json(data)
    return _op_error(limits.check_event_data_size(len(blob))) or blob


def validate_operation(op: Any) -> OpError | None:
    """Why Customer.io would reject this v2 operation; None if it would not."""
    if not isinstance(op, dict):
        return OpError("invalid", "", "each operation must be an object")
    otype = op.get("type")
    if otype == "person":
        return _validate_person(op, op.get("action"))
    if otype == "object":
        return _validate_object(op, op.get("action"))
    if otype == "delivery":
        return None
    return OpError("invalid", "type", f"unknown type {otype!r}; expected person, object or delivery")


def _validate_person(op: dict, action: Any) -> OpError | None:
    if action not in PERSON_ACTIONS:
        return OpError("invalid", "action", f"unknown person action {action!r}")
    if action == "merge":
        for side in ("primary", "secondary"):
            err = check_person_identifiers(op.get(side), side, allow_anonymous=False)
            if err:
                return err
        return None
    err = check_person_identifiers(op.get("identifiers"), "identifiers", allow_anonymous=action in ANONYMOUS_OK)
    if err:
        return err
    if action == "identify":
        return check_attributes(op.get("attributes") or {})
    if action in EVENT_ACTIONS:
        return check_event(op.get("name"), op.get("attributes"), action)
    if action in ("add_device", "delete_device"):
        device = op.get("device")
        if not isinstance(device, dict) or not device.get("token"):
            return OpError("required", "device.token", "device token is required")
        if action == "add_device" and not device.get("platform"):
            return OpError("required", "device.platform", "device platform is required")
    return None


def _validate_object(op: dict, action: Any) -> OpError | None:
    if action not in OBJECT_ACTIONS:
        return OpError("invalid", "action", f"unknown object action {action!r}")
    ids = op.get("identifiers")
    if not isinstance(ids, dict) or not ids.get("object_id") or not ids.get("object_type_id"):
        return OpError("required", "identifiers", "object identifiers need object_type_id and object_id")
    if action in ("identify", "identify_anonymous") and op.get("attributes") is not None:
        return check_attributes(op.get("attributes"))
    return None


def check_person_identifiers(ids: Any, field: str, *, allow_anonymous: bool) -> OpError | None:
    if not isinstance(ids, dict) or not ids:
        return OpError("required", field, limits.ID_MISSING)
    if len(ids) != 1:
        return OpError("invalid", field, "cannot have multiple identifiers")
    kind, value = next(iter(ids.items()))
    if kind == "anonymous_id" and allow_anonymous:
        return (
            None
            if isinstance(value, str) and value
            else OpError("invalid", f"{field}.anonymous_id", "anonymous_id must be a non-empty string")
        )
    if kind not in PERSON_IDENTIFIERS:
        return OpError("invalid", field, f"unknown identifier {kind!r}; use id, email or cio_id")
    if kind == "id":
        return check_id(value, f"{field}.id")
    if not isinstance(value, str) or not value:
        return OpError("invalid", f"{field}.{kind}", f"{kind} must be a non-empty string")
    return None


def identifier_from_path(value: str) -> tuple[str, str]:
    """Track v1 decides the identifier type from the value's shape (docs/contracts.md)."""
    if value.startswith("cio_"):
        return "cio_id", value[4:]
    if "@" in value and "." in value.rsplit("@", 1)[-1]:
        return "email", value
    return "id", value

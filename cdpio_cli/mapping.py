"""Segment message -> what the Customer.io (Actions) destination does with it.

The one implementation shared by the sandbox (it applies the operations to its
in-memory workspace), `cdpio lint`, `cdpio explain` and replay's customerio
route (which posts the operations to Track v2 `/api/v2/batch`).

Facts: the destination's source, segmentio/action-destinations
`packages/destination-actions/src/destinations/customerio/` (index.ts for the
default subscriptions, utils.ts buildPayload for the Track v2 bodies, each
action's index.ts for its fields).  Where its code and docs disagree, this
follows the code; its own unit tests, transcribed in tests/data/destination/,
are the check (docs/mapping.md).

Default subscriptions (trigger -> action -> Track v2 `type`/`action`):

================================  ====================  ==========================
trigger                           action                Customer.io operation
================================  ====================  ==========================
type = identify                   createUpdatePerson    person / identify
type = track (other events)       trackEvent            person / event
type = page                       trackPageView         person / page (name = properties.url)
type = screen                     trackScreenView       person / screen (name = name)
event = Application Installed,    createUpdateDevice    person / add_device
  Application Opened,
  Device Created or Updated
event = Application Uninstalled,  deleteDevice          person / delete_device
  Device Deleted
event = User Deleted              deletePerson          person / delete
event = User Suppressed           suppressPerson        person / suppress
event = User Unsuppressed         unsuppressPerson      person / unsuppress
type = group                      createUpdateObject    object / identify | identify_anonymous
event = Object Deleted            deleteObject          object / delete
event = Relationship Deleted      deleteRelationship    object / delete_relationships
type = alias                      mergePeople           person / merge
event = Report Delivery Event     reportDeliveryEvent   POST /api/v1/metrics (not v2)
event = Report Content Event      reportContentEvent    person / properties.actionType
================================  ====================  ==========================

A message the destination cannot send (a required mapped field is missing) is
dropped with a `MESSAGE_REJECTED: ...` reason; a message no subscription
matches is dropped with `NO_MATCHING_MAPPING: ...` (Segment's discard reasons).

An operation that breaks one of Customer.io's limits (cdpio_cli/limits.py)
is dropped with `CUSTOMERIO_400: <Customer.io's message>`: the destination
sends it and Customer.io rejects it, which Segment shows as a failed delivery.

This module is pure: no I/O, no starlette; only the standard library,
cdpio_cli.messages, cdpio_cli.limits and the Track host table in
cdpio_cli.routes.endpoints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cdpio_cli import limits
from cdpio_cli.messages import parse_timestamp

V2 = "v2"  # POST {track}/api/v2/entity or /api/v2/batch
V1_METRICS = "/api/v1/metrics"  # reportDeliveryEvent only

DROP_NO_MAPPING = "NO_MATCHING_MAPPING"
DROP_REJECTED = "MESSAGE_REJECTED"


@dataclass(frozen=True)
class ActionInfo:
    name: str
    trigger: str  # the default subscription, as Segment writes it
    operation: str  # Customer.io `type / action`
    title: str


_DEVICE_EVENTS = ("Application Installed", "Application Opened", "Device Created or Updated")
_DEVICE_DELETE_EVENTS = ("Application Uninstalled", "Device Deleted")

ACTIONS: dict[str, ActionInfo] = {
    a.name: a
    for a in (
        ActionInfo("createUpdatePerson", 'type = "identify"', "person / identify", "Create or Update Person"),
        ActionInfo(
            "trackEvent", 'type = "track" and event not in the semantic events below', "person / event", "Track Event"
        ),
        ActionInfo("trackPageView", 'type = "page"', "person / page", "Track Page View"),
        ActionInfo("trackScreenView", 'type = "screen"', "person / screen", "Track Screen View"),
        ActionInfo(
            "createUpdateDevice",
            'event = "Application Installed" or "Application Opened" or "Device Created or Updated"',
            "person / add_device",
            "Create or Update Device",
        ),
        ActionInfo(
            "deleteDevice",
            'event = "Application Uninstalled" or "Device Deleted"',
            "person / delete_device",
            "Delete Device",
        ),
        ActionInfo("deletePerson", 'event = "User Deleted"', "person / delete", "Delete Person"),
        ActionInfo("suppressPerson", 'event = "User Suppressed"', "person / suppress", "Suppress Person"),
        ActionInfo("unsuppressPerson", 'event = "User Unsuppressed"', "person / unsuppress", "Unsuppress Person"),
        ActionInfo(
            "createUpdateObject", 'type = "group"', "object / identify (identify_anonymous)", "Create or Update Object"
        ),
        ActionInfo("deleteObject", 'event = "Object Deleted"', "object / delete", "Delete Object"),
        ActionInfo(
            "deleteRelationship",
            'event = "Relationship Deleted"',
            "object / delete_relationships",
            "Delete Relationship",
        ),
        ActionInfo("mergePeople", 'type = "alias"', "person / merge", "Merge People"),
        ActionInfo(
            "reportDeliveryEvent", 'event = "Report Delivery Event"', "POST /api/v1/metrics", "Report Delivery Event"
        ),
        ActionInfo(
            "reportContentEvent",
            'event = "Report Content Event"',
            "person / viewed_content | clicked_content",
            "Report Content Event",
        ),
    )
}

# Track events that a semantic subscription takes instead of trackEvent.
SEMANTIC_EVENTS: dict[str, str] = {
    **{e: "createUpdateDevice" for e in _DEVICE_EVENTS},
    **{e: "deleteDevice" for e in _DEVICE_DELETE_EVENTS},
    "User Deleted": "deletePerson",
    "User Suppressed": "suppressPerson",
    "User Unsuppressed": "unsuppressPerson",
    "Object Deleted": "deleteObject",
    "Relationship Deleted": "deleteRelationship",
    "Report Delivery Event": "reportDeliveryEvent",
    "Report Content Event": "reportContentEvent",
}

DELIVERY_METRICS = ("delivered", "opened", "clicked", "converted", "spammed", "bounced", "dropped", "deferred")
CONTENT_ACTIONS = ("viewed_content", "clicked_content")


@dataclass(frozen=True)
class Mapping:
    """What the destination does with one message.

    `operations` are Customer.io Track API bodies exactly as the destination
    builds them (v2 entity bodies, or one /api/v1/metrics body when
    `endpoint` is V1_METRICS).  `drop_reason` is set when nothing is sent.
    """

    action: str | None
    operations: list[dict] = field(default_factory=list)
    drop_reason: str | None = None
    endpoint: str = V2
    # Every Customer.io limit the operations break (the first is the drop reason).
    violations: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.drop_reason is None

    @property
    def trigger(self) -> str | None:
        info = ACTIONS.get(self.action or "")
        return info.trigger if info else None


def _rejected(action: str, why: str) -> Mapping:
    return Mapping(action, [], f"{DROP_REJECTED}: {action} requires {why}")


# --- field helpers --------------------------------------------------------

# ajv-formats' "email" format, which the destination uses to decide whether a
# person id is an email (utils.ts isEmail).
_EMAIL_RE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    re.IGNORECASE,
)

# segmentio/isostring, the destination's test for "this attribute is a date".
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}((T\d{2}:\d{2}(:\d{2})?)(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?)?$")
_DIGITS_RE = re.compile(r"^\d+(\.\d+)?$")


def is_email(value: Any) -> bool:
    return isinstance(value, str) and "@" in value and _EMAIL_RE.match(value) is not None


def _str_id(value: Any) -> str | None:
    """A mapped id as the destination sees it: a non-empty string (numbers coerced)."""
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
    if object_id and object_type_id:
        return {"object_id": object_id, "object_type_id": object_type_id}
    pid = _str_id(person_id)
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
    if not isinstance(value, str) or ("-" not in value and _DIGITS_RE.match(value)):
        return value
    unix = _unix(value)
    return value if unix is None else unix


def _iso_to_unix(value: str) -> Any:
    if len(value) < 10 or value[4] != "-" or not _ISO_RE.match(value):
        return value
    unix = _unix(value)
    return value if unix is None else unix


def convert_attribute_timestamps(obj: dict) -> dict:
    """ISO-8601 strings inside (nested) objects -> unix seconds ("Convert Timestamps", on by default).

    Like the destination, it walks objects only, not arrays.
    """
    out = {}
    for key, value in obj.items():
        if type(value) is str:
            out[key] = _iso_to_unix(value)
        elif type(value) is dict:
            out[key] = convert_attribute_timestamps(value)
        else:
            out[key] = value
    return out


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _first(*values: Any) -> Any:
    """The destination's `@if exists` chains: the first value that is not null."""
    for value in values:
        if value is not None:
            return value
    return None


def _build(
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
                value = _iso_to_unix(value)
            elif type(value) is dict:
                value = convert_attribute_timestamps(value)
        body[key] = value
    if timestamp:
        body["timestamp"] = convert_timestamp(timestamp)
    if anonymous_id:
        body["attributes"] = {**_dict(body.get("attributes")), "anonymous_id": anonymous_id}
    if action != "merge":
        kwargs = {"object_type_id": object_type_id} if object_type_id is not None else {}
        identifiers = resolve_identifiers(person_id, email, anonymous_id, object_id, **kwargs)
        if identifiers is not None:
            body["identifiers"] = identifiers
            if "anonymous_id" in identifiers and "attributes" in body:
                body["attributes"].pop("anonymous_id", None)
    return body


# --- field mappings --------------------------------------------------------

# Each action's plain `@path` defaults, from the action definitions
# (segmentio/action-destinations, packages/destination-actions/src/
# destinations/customerio/<action>/index.ts, `fields.*.default`).  Fields
# whose default is an `@if`/`@template` chain are described in docs/mapping.md.
DEFAULT_PATHS: dict[str, dict[str, str]] = {
    "createUpdatePerson": {
        "anonymous_id": "$.anonymousId",
        "group_id": "$.traits.objectId",
        "custom_attributes": "$.traits",
        "relationship_attributes": "$.traits.relationshipAttributes",
        "timestamp": "$.timestamp",
    },
    "trackEvent": {
        "id": "$.userId",
        "anonymous_id": "$.anonymousId",
        "name": "$.event",
        "event_id": "$.messageId",
        "timestamp": "$.timestamp",
        "data": "$.properties",
    },
    "trackPageView": {
        "id": "$.userId",
        "anonymous_id": "$.anonymousId",
        "event_id": "$.messageId",
        "url": "$.properties.url",
        "timestamp": "$.timestamp",
        "data": "$.properties",
    },
    "trackScreenView": {
        "id": "$.userId",
        "anonymous_id": "$.anonymousId",
        "event_id": "$.messageId",
        "name": "$.name",
        "timestamp": "$.timestamp",
        "data": "$.properties",
    },
    "createUpdateDevice": {
        "person_id": "$.userId",
        "device_id": "$.context.device.token",
        "app_version": "$.context.app.version",
        "platform": "$.context.device.type",
        "last_used": "$.timestamp",
        "attributes": "$.properties",
    },
    "deleteDevice": {"person_id": "$.userId", "device_id": "$.context.device.token"},
    "deletePerson": {"person_id": "$.userId"},
    "suppressPerson": {"person_id": "$.userId"},
    "unsuppressPerson": {"person_id": "$.userId"},
    "createUpdateObject": {
        "id": "$.groupId",
        "custom_attributes": "$.traits.objectAttributes",
        "relationship_attributes": "$.traits.relationshipAttributes",
        "user_id": "$.userId",
        "anonymous_id": "$.anonymousId",
    },
    "deleteObject": {"object_id": "$.properties.objectId"},
    "deleteRelationship": {
        "person_id": "$.userId",
        "anonymous_id": "$.anonymousId",
        "object_id": "$.properties.objectId",
    },
    "mergePeople": {"primary": "$.userId", "secondary": "$.previousId"},
    "reportDeliveryEvent": {
        "delivery_id": "$.properties.deliveryId",
        "metric": "$.properties.metric",
        "recipient": "$.properties.recipient",
        "reason": "$.properties.reason",
        "href": "$.properties.href",
        "action_name": "$.properties.actionName",
        "action_value": "$.properties.actionValue",
        "timestamp": "$.timestamp",
    },
    "reportContentEvent": {
        "anonymous_id": "$.anonymousId",
        "actionType": "$.properties.actionType",
        "timestamp": "$.timestamp",
        "data": "$.properties",
    },
}

# Actions with a "Convert Timestamps" field (on by default); the others never convert.
_CONVERTING = frozenset(
    {
        "createUpdatePerson",
        "trackEvent",
        "trackPageView",
        "trackScreenView",
        "createUpdateDevice",
        "createUpdateObject",
        "reportContentEvent",
    }
)


@dataclass(frozen=True)
class Fields:
    """Departures from an action's default field mapping: "Convert Timestamps"
    off, or fields left unmapped (older subscriptions lack newer fields)."""

    convert_timestamp: bool = True
    unmapped: frozenset[str] = frozenset()

    def get(self, name: str, value: Any) -> Any:
        return None if name in self.unmapped else value


DEFAULT_FIELDS = Fields()


def fields_from_mapping(action: str, mapping: dict | None = None, unmapped: list[str] | tuple[str, ...] = ()) -> Fields:
    """A Segment-style field mapping (`{"convert_timestamp": false}`,
    `{"data": {"@path": "$.properties"}}`) -> Fields.

    Only the departures cdpio reproduces are accepted; anything else raises
    ValueError naming the field, rather than silently mapping by default.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    paths = DEFAULT_PATHS.get(action, {})
    convert = True
    for name, value in (mapping or {}).items():
        if name == "convert_timestamp" and isinstance(value, bool) and action in _CONVERTING:
            convert = value
        elif isinstance(value, dict) and value.get("@path") == paths.get(name) and len(value) == 1:
            pass  # the default itself
        else:
            raise ValueError(
                f"{action}: field mapping {name}={value!r} is not supported "
                "(only convert_timestamp and the default @path of each field)"
            )
    for name in unmapped:
        if name not in paths:
            raise ValueError(f"{action}: cannot unmap {name!r} (fields: {', '.join(paths)})")
    return Fields(convert, frozenset(unmapped))


# --- actions -------------------------------------------------------------

_PERSON_TRAITS_MOVED = ("createdAt", "created_at", "object_type_id", "objectTypeId", "relationshipAttributes")


def _create_update_person(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    traits = _dict(msg.get("traits"))
    user_id = msg.get("userId")
    person_id = user_id if user_id is not None else traits.get("email")
    email = traits.get("email")
    anonymous_id = f.get("anonymous_id", msg.get("anonymousId"))
    if _str_id(person_id) is None and not email and not anonymous_id:
        return _rejected("createUpdatePerson", "a person: userId, traits.email or anonymousId")
    attributes = {k: v for k, v in _dict(f.get("custom_attributes", traits)).items() if k not in _PERSON_TRAITS_MOVED}
    created_at = _first(traits.get("created_at"), traits.get("createdAt"))
    if created_at:
        attributes["created_at"] = created_at
    if email:
        attributes["email"] = email
    relationships = None
    group_id = f.get("group_id", traits.get("objectId"))
    if group_id:
        rel: dict[str, Any] = {
            "identifiers": {
                "object_type_id": _first(traits.get("object_type_id"), traits.get("objectTypeId"), "1"),
                "object_id": group_id,
            }
        }
        rel_attrs = f.get("relationship_attributes", traits.get("relationshipAttributes"))
        if rel_attrs:
            rel["relationship_attributes"] = rel_attrs
        relationships = [rel]
    body = _build(
        "person",
        "identify",
        person_id=person_id,
        anonymous_id=anonymous_id,
        attributes=attributes,
        cio_relationships=relationships,
        timestamp=f.get("timestamp", msg.get("timestamp")),
        convert=f.convert_timestamp,
    )
    return Mapping("createUpdatePerson", [body])


def _person_event(msg: dict, action_name: str, cio_action: str, name: Any, f: Fields = DEFAULT_FIELDS) -> Mapping:
    """trackEvent / trackPageView / trackScreenView: most traffic, so built directly.

    Same body as `_build` would make (tests/test_mapping.py checks that).
    """
    person_id = _str_id(f.get("id", msg.get("userId")))
    anonymous_id = f.get("anonymous_id", msg.get("anonymousId"))
    if person_id is None and not anonymous_id:
        return _rejected(action_name, "a person: userId or anonymousId")
    convert = f.convert_timestamp
    body: dict[str, Any] = {
        "type": "person",
        "action": cio_action,
        "name": _iso_to_unix(name) if convert and type(name) is str else name,
    }
    message_id = f.get("event_id", msg.get("messageId"))
    # trackEvent sends any mapped event id; page and screen only a non-empty one.
    if message_id is not None and (message_id or action_name == "trackEvent"):
        body["id"] = _iso_to_unix(message_id) if convert and type(message_id) is str else message_id
    props = f.get("data", msg.get("properties"))
    attributes = None
    if type(props) is dict:
        attributes = convert_attribute_timestamps(props) if convert else props
        body["attributes"] = attributes
    timestamp = f.get("timestamp", msg.get("timestamp"))
    if timestamp:
        body["timestamp"] = convert_timestamp(timestamp)
    if person_id is not None:
        if anonymous_id:
            body["attributes"] = {**(attributes or {}), "anonymous_id": anonymous_id}
        body["identifiers"] = resolve_identifiers(person_id)
    else:
        # Identified by the anonymous id: the copy in attributes is removed again.
        body["attributes"] = dict(attributes) if attributes is not None else {}
        body["identifiers"] = {"anonymous_id": anonymous_id}
    return Mapping(action_name, [body])


def _track_event(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    name = f.get("name", msg.get("event"))
    if not isinstance(name, str) or name == "":
        return _rejected("trackEvent", "event (the Customer.io event name)")
    return _person_event(msg, "trackEvent", "event", name, f)


def _track_page(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    url = f.get("url", _dict(msg.get("properties")).get("url"))
    if not url:
        return _rejected("trackPageView", "properties.url (the page URL becomes the Customer.io page name)")
    return _person_event(msg, "trackPageView", "page", url, f)


def _track_screen(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    name = f.get("name", msg.get("name"))
    if not name:
        return _rejected("trackScreenView", "name (the screen name becomes the Customer.io screen name)")
    return _person_event(msg, "trackScreenView", "screen", name, f)


def _device(msg: dict) -> dict:
    return _dict(_dict(msg.get("context")).get("device"))


def _create_update_device(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "createUpdateDevice"
    if _str_id(f.get("person_id", msg.get("userId"))) is None:
        return _rejected(action, "userId (devices belong to an identified person)")
    device = _device(msg)
    token = f.get("device_id", device.get("token"))
    if not token:
        return _rejected(action, "context.device.token (the push token)")
    platform = f.get("platform", device.get("type"))
    if not platform:
        return _rejected(action, "context.device.type (the device platform: ios or android)")
    # The destination always sends `device.attributes`, `{}` when there are none.
    attributes = dict(_dict(f.get("attributes", msg.get("properties"))))
    app_version = f.get("app_version", _dict(_dict(msg.get("context")).get("app")).get("version"))
    if app_version:
        attributes["app_version"] = app_version
    dev: dict[str, Any] = {"token": token, "platform": platform, "attributes": attributes}
    last_used = f.get("last_used", msg.get("timestamp"))
    if last_used is not None:
        dev["last_used"] = last_used
    # last_used is not the root `timestamp`: it converts only as an ISO-8601
    # attribute would (an unparseable or non-ISO value is sent as it is).
    body = _build("person", "add_device", person_id=msg.get("userId"), device=dev, convert=f.convert_timestamp)
    return Mapping(action, [body])


def _delete_device(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "deleteDevice"
    if _str_id(f.get("person_id", msg.get("userId"))) is None:
        return _rejected(action, "userId (devices belong to an identified person)")
    token = f.get("device_id", _device(msg).get("token"))
    if not token:
        return _rejected(action, "context.device.token (the push token)")
    body = _build("person", "delete_device", person_id=msg.get("userId"), device={"token": token}, convert=False)
    return Mapping(action, [body])


def _person_only(msg: dict, action: str, cio_action: str, f: Fields = DEFAULT_FIELDS) -> Mapping:
    person_id = f.get("person_id", msg.get("userId"))
    if _str_id(person_id) is None:
        return _rejected(action, "userId")
    return Mapping(action, [_build("person", cio_action, person_id=person_id, convert=False)])


def _object_type(container: dict) -> Any:
    return _first(container.get("object_type_id"), container.get("objectTypeId"), "1")


_OBJECT_ATTRIBUTES_DROPPED = ("object_type_id", "objectTypeId", "relationshipAttributes")


def _create_update_object(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "createUpdateObject"
    group_id = _str_id(f.get("id", msg.get("groupId")))
    if group_id is None:
        return _rejected(action, "groupId (the object id)")
    traits = _dict(msg.get("traits"))
    user_id = _str_id(f.get("user_id", msg.get("userId")))
    anonymous_id = f.get("anonymous_id", msg.get("anonymousId"))
    convert = f.convert_timestamp
    attributes = f.get("custom_attributes", traits.get("objectAttributes"))
    if isinstance(attributes, dict):
        # The API does not use these; the destination removes them.
        attributes = {k: v for k, v in attributes.items() if k not in _OBJECT_ATTRIBUTES_DROPPED}
        if convert:
            attributes = convert_attribute_timestamps(attributes)
    rel_attrs = f.get("relationship_attributes", traits.get("relationshipAttributes"))
    rel: dict[str, Any] | None = None
    cio_action = "identify"
    if user_id is not None:
        rel = {"identifiers": resolve_identifiers(person_id=user_id)}
    elif anonymous_id:
        cio_action = "identify_anonymous"
        rel = {"identifiers": {"anonymous_id": anonymous_id}}
    if rel is not None and rel_attrs:
        rel["relationship_attributes"] = (
            convert_attribute_timestamps(rel_attrs) if convert and type(rel_attrs) is dict else rel_attrs
        )
    created_at = _first(traits.get("created_at"), traits.get("createdAt")) or None
    if convert and type(created_at) is str:
        created_at = _iso_to_unix(created_at)
    # Converted above like the destination's mapPayload; buildPayload does not convert again.
    body = _build(
        "object",
        cio_action,
        anonymous_id=anonymous_id,
        object_id=group_id,
        object_type_id=_object_type(traits),
        created_at=created_at,
        attributes=attributes,
        cio_relationships=[rel] if rel else None,
        convert=False,
    )
    return Mapping(action, [body])


def _delete_object(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    props = _dict(msg.get("properties"))
    object_id = _str_id(f.get("object_id", props.get("objectId")))
    if object_id is None:
        # The destination would send a body without identifiers, which
        # Customer.io cannot apply; cdpio reports it as not sendable.
        return _rejected("deleteObject", "properties.objectId")
    body = _build("object", "delete", object_id=object_id, object_type_id=_object_type(props), convert=False)
    return Mapping("deleteObject", [body])


def _delete_relationship(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "deleteRelationship"
    props = _dict(msg.get("properties"))
    object_id = _str_id(f.get("object_id", props.get("objectId")))
    if object_id is None:
        return _rejected(action, "properties.objectId")
    # person_id is a required field of the action: an anonymous-only message is rejected.
    user_id = _str_id(f.get("person_id", msg.get("userId")))
    if user_id is None:
        return _rejected(action, "userId (the person whose relationship is deleted)")
    body = _build(
        "object",
        "delete_relationships",
        object_id=object_id,
        object_type_id=_object_type(props),
        anonymous_id=f.get("anonymous_id", msg.get("anonymousId")),
        cio_relationships=[{"identifiers": resolve_identifiers(person_id=user_id)}],
        convert=False,
    )
    return Mapping(action, [body])


def _merge_people(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    primary = resolve_identifiers(person_id=f.get("primary", msg.get("userId")))
    secondary = resolve_identifiers(person_id=f.get("secondary", msg.get("previousId")))
    if primary is None:
        return _rejected("mergePeople", "userId (the primary person)")
    if secondary is None:
        return _rejected("mergePeople", "previousId (the secondary person)")
    body = _build("person", "merge", primary=primary, secondary=secondary, convert=False)
    return Mapping("mergePeople", [body])


def _report_delivery(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "reportDeliveryEvent"
    props = _dict(msg.get("properties"))
    delivery_id = f.get("delivery_id", props.get("deliveryId"))
    metric = f.get("metric", props.get("metric"))
    if not delivery_id:
        return _rejected(action, "properties.deliveryId")
    if metric not in DELIVERY_METRICS:
        return _rejected(action, f"properties.metric (one of {', '.join(DELIVERY_METRICS)})")
    # The destination always sends a timestamp: the message's, else the time of sending.
    ts = convert_timestamp(f.get("timestamp", msg.get("timestamp")))
    if isinstance(ts, str) and _DIGITS_RE.match(ts):
        ts = float(ts) if "." in ts else int(ts)
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        ts = int(datetime.now(timezone.utc).timestamp())
    body: dict[str, Any] = {"delivery_id": delivery_id, "metric": metric, "timestamp": ts}
    for name, src in (("recipient", "recipient"), ("reason", "reason"), ("href", "href")):
        value = f.get(name, props.get(src))
        if value:
            body[name] = value
    metadata = {
        k: v
        for k, v in (
            ("action_name", f.get("action_name", props.get("actionName"))),
            ("action_value", f.get("action_value", props.get("actionValue"))),
        )
        if v
    }
    if metadata:
        body["metadata"] = metadata
    return Mapping(action, [body], endpoint=V1_METRICS)


def _report_content(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "reportContentEvent"
    props = _dict(msg.get("properties"))
    action_type = f.get("actionType", props.get("actionType"))
    if action_type not in CONTENT_ACTIONS:
        return _rejected(action, "properties.actionType (viewed_content or clicked_content)")
    anonymous_id = f.get("anonymous_id", msg.get("anonymousId"))
    if not anonymous_id:
        # The destination would send it without identifiers; Customer.io cannot apply it.
        return _rejected(action, "anonymousId")
    data = f.get("data", msg.get("properties"))
    # actionType becomes the operation; the destination removes it from the attributes.
    attributes = {k: v for k, v in data.items() if k != "actionType"} if isinstance(data, dict) else None
    body = _build(
        "person",
        action_type,
        anonymous_id=anonymous_id,
        name=action_type,
        attributes=attributes,
        timestamp=f.get("timestamp", msg.get("timestamp")),
        convert=f.convert_timestamp,
    )
    return Mapping(action, [body])


ACTION_BUILDERS = {
    "createUpdatePerson": _create_update_person,
    "trackEvent": _track_event,
    "trackPageView": _track_page,
    "trackScreenView": _track_screen,
    "createUpdateDevice": _create_update_device,
    "deleteDevice": _delete_device,
    "deletePerson": lambda m, f=DEFAULT_FIELDS: _person_only(m, "deletePerson", "delete", f),
    "suppressPerson": lambda m, f=DEFAULT_FIELDS: _person_only(m, "suppressPerson", "suppress", f),
    "unsuppressPerson": lambda m, f=DEFAULT_FIELDS: _person_only(m, "unsuppressPerson", "unsuppress", f),
    "createUpdateObject": _create_update_object,
    "deleteObject": _delete_object,
    "deleteRelationship": _delete_relationship,
    "mergePeople": _merge_people,
    "reportDeliveryEvent": _report_delivery,
    "reportContentEvent": _report_content,
}
_SEMANTIC_BUILDERS = {name: ACTION_BUILDERS[name] for name in set(SEMANTIC_EVENTS.values())}


def run_action(action: str, msg: Any, fields: Fields = DEFAULT_FIELDS) -> Mapping:
    """Run one message through the named action, whatever its trigger (as the
    destination's own tests and a custom subscription do).  KeyError for an
    unknown action name."""
    builder = ACTION_BUILDERS[action]
    if not isinstance(msg, dict):
        return Mapping(action, [], f"{DROP_REJECTED}: {action} needs a JSON object message")
    return builder(msg, fields)


# The destination's "Account Region" setting values (utils.ts AccountRegion);
# anything but EU posts to the US Track host, as trackApiEndpoint does.
ACCOUNT_REGIONS = {"US \U0001f1fa\U0001f1f8": "us", "EU \U0001f1ea\U0001f1fa": "eu"}
FORMS = ("entity", "batch")


def track_requests(result: Mapping, form: str = "entity", region: str = "us") -> list[tuple[str, dict]]:
    """The (url, JSON body) requests the destination sends for one mapped message.

    `entity` is the per-message `perform` (`POST /api/v2/entity`, one body);
    `batch` is `performBatch` (`POST /api/v2/batch` with `{"batch": [...]}`).
    reportDeliveryEvent has no batch form: always one `POST /api/v1/metrics`.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, not {form!r}")
    if not result.ok:
        return []
    from cdpio_cli.routes.endpoints import real_endpoint

    base = real_endpoint("track", region)
    if result.endpoint == V1_METRICS:
        return [(base + V1_METRICS, op) for op in result.operations]
    if form == "batch":
        return [(base + "/api/v2/batch", {"batch": list(result.operations)})]
    return [(base + "/api/v2/entity", op) for op in result.operations]


def map_message(msg: Any, *, check_limits: bool = True) -> Mapping:
    """Map one Segment-spec message to the destination's action and operations,
    or the reason it is dropped (including Customer.io rejecting an operation
    for a limit, so lint, explain and the sandbox agree).

    `check_limits=False` is for sending to a real Customer.io, which then
    says itself what it rejects (a 207 item error or a 400)."""
    result = _map(msg)
    if check_limits and result.drop_reason is None and result.endpoint == V2:
        found = [v for op in result.operations for v in limits.operation_violations(op)]
        if found:
            return Mapping(result.action, [], limits.rejection_reason(found[0]), result.endpoint, violations=found)
    return result


def _map(msg: Any) -> Mapping:
    if not isinstance(msg, dict):
        return Mapping(None, [], f"{DROP_NO_MAPPING}: the message is not a JSON object")
    mtype = msg.get("type")
    if mtype == "identify":
        return _create_update_person(msg)
    if mtype == "track":
        event = msg.get("event")
        semantic = SEMANTIC_EVENTS.get(event) if isinstance(event, str) else None
        if semantic is not None:
            return _SEMANTIC_BUILDERS[semantic](msg)
        return _track_event(msg)
    if mtype == "page":
        return _track_page(msg)
    if mtype == "screen":
        return _track_screen(msg)
    if mtype == "group":
        return _create_update_object(msg)
    if mtype == "alias":
        return _merge_people(msg)
    return Mapping(
        None,
        [],
        f"{DROP_NO_MAPPING}: no subscription matches type {mtype!r} "
        "(the defaults cover identify, track, page, screen, group and alias)",
    )


def subscription_for(msg: Any) -> str | None:
    """The action whose default trigger matches the message (None: no match)."""
    return map_message(msg).action


# --- subscriptions ---------------------------------------------------------
#
# A workspace's Customer.io (Actions) destination runs every enabled
# subscription whose trigger matches a message (a message can match several).
# Triggers are Segment's FQL, parsed and evaluated as
# segmentio/action-destinations packages/destination-subscriptions does
# (parse-fql.ts, validate.ts); its own tests are transcribed in
# tests/data/destination/fql-*.json.


@dataclass(frozen=True)
class Subscription:
    action: str  # the action key, e.g. trackEvent
    trigger: str  # FQL, e.g. 'type = "track" and event = "Signed Up"'
    enabled: bool = True
    name: str | None = None  # as shown in Segment, e.g. "Track Event"

    @property
    def title(self) -> str:
        if self.name:
            return self.name
        return ACTIONS[self.action].title if self.action in ACTIONS else self.action


# The Track Event preset's exclusions, in the preset's own order (index.ts).
_TRACK_EVENT_EXCLUDES = (
    "Application Installed",
    "Application Opened",
    "Application Uninstalled",
    "Device Created or Updated",
    "Device Deleted",
    "Relationship Deleted",
    "User Deleted",
    "User Suppressed",
    "User Unsuppressed",
    "Object Deleted",
    "Report Delivery Event",
    "Report Content Event",
)


def _preset_trigger(action: str) -> str:
    if action == "trackEvent":
        excluded = " and ".join(f'event != "{e}"' for e in _TRACK_EVENT_EXCLUDES)
        return f'type = "track" and {excluded}'
    events = [e for e, a in SEMANTIC_EVENTS.items() if a == action]
    if events:
        return " or ".join(f'event = "{e}"' for e in events)
    return ACTIONS[action].trigger


# The destination's automatic presets ("Quick Setup"), as FQL.
DEFAULT_SUBSCRIPTIONS: tuple[Subscription, ...] = tuple(
    Subscription(name, _preset_trigger(name), True, info.title) for name, info in ACTIONS.items()
)

_FQL_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)|'
    r"(?P<operator>!=|<=|>=|=|<|>|!)|(?P<parenleft>\()|(?P<parenright>\))|"
    r"(?P<dot>\.)|(?P<comma>,)|(?P<ident>[A-Za-z_$][\w$]*))"
)

# Condition types by the path's first segment (parse-fql.ts tokenToConditionType).
_CONDITION_TYPES = {
    "type": "event-type",
    "event": "event",
    "name": "name",
    "userId": "userId",
    "context": "event-context",
    "properties": "event-property",
    "traits": "event-trait",
}
_NESTED = {"event-context": "context", "event-property": "properties", "event-trait": "traits"}


class TriggerError(ValueError):
    """A trigger Segment cannot parse: it matches no message."""


def _fql_lex(text: str) -> list[tuple[str, str]]:
    """Tokens as Segment's FQL lexer gives them (a string keeps its quotes),
    with `a.b.c` joined into one identifier, then an end token."""
    tokens: list[tuple[str, str]] = []
    pos, text = 0, text.rstrip()
    while pos < len(text):
        m = _FQL_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise TriggerError(f"cannot read the trigger at {text[pos : pos + 20].strip()!r}")
        pos = m.end()
        kind, value = m.lastgroup or "", m.group(m.lastgroup or 0)
        if kind == "ident" and value in ("and", "or"):
            kind = "conditional"
        if kind == "ident" and len(tokens) >= 2 and tokens[-1][0] == "dot" and tokens[-2][0] == "ident":
            tokens.pop()
            value = tokens.pop()[1] + "." + value
        tokens.append((kind, value))
    tokens.append(("eos", "eos"))
    return tokens


def _token_value(token: tuple[str, str]) -> Any:
    kind, value = token
    if kind == "string":
        return value[1:-1] if len(value) >= 2 else value
    if kind == "number":
        return float(value) if "." in value else int(value)
    if kind == "ident" and value in ("true", "false"):
        return value == "true"
    return value


def _js_string(value: Any) -> str:
    """String(value) in JavaScript, for the values a trigger holds."""
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fql_function(name: str, nodes: list, tokens: list, negate: bool) -> None:
    tokens.pop(0)  # "("
    if not tokens:
        raise TriggerError(f"{name}() is missing a 1st argument")
    path = tokens.pop(0)[1]
    if tokens:
        tokens.pop(0)  # ","
    if not tokens:
        raise TriggerError(f"{name}() is missing a 2nd argument")
    value_token = tokens.pop(0)
    if tokens:
        tokens.pop(0)  # ")"
    if name == "contains":
        operator, value = ("not_contains" if negate else "contains"), _js_string(_token_value(value_token))
    elif value_token[1].endswith('*"'):
        operator, value = ("not_starts_with" if negate else "starts_with"), _js_string(_token_value(value_token))[:-1]
    else:
        operator, value = ("not_ends_with" if negate else "ends_with"), _js_string(_token_value(value_token))[1:]
    if path in ("event", "name", "userId"):
        nodes.append({"type": path, "operator": operator, "value": value})
    for ctype, head in _NESTED.items():
        if path.startswith(head):
            nodes.append(
                {"type": ctype, "name": re.sub(rf"^{head}\.", "", path, count=1), "operator": operator, "value": value}
            )


def _fql_parse(tokens: list) -> dict | None:
    nodes: list[dict] = []
    operator = "and"
    token = tokens.pop(0) if tokens else None
    while token is not None and token[0] != "eos":
        kind, value = token
        if kind == "ident":
            ctype = _CONDITION_TYPES.get(value.split(".")[0])
            if ctype:
                if not tokens:
                    raise TriggerError("Operator token is missing")
                op_token = tokens.pop(0)
                if not tokens:
                    raise TriggerError("Value token is missing")
                value_token = tokens.pop(0)
                op, raw = op_token[1], value_token[1]
                special = {
                    ("=", "true"): "is_true",
                    ("=", "false"): "is_false",
                    ("!=", "null"): "exists",
                    ("=", "null"): "not_exists",
                }.get((op, raw))
                if ctype in ("event", "event-type"):
                    nodes.append({"type": ctype, "operator": op, "value": _js_string(_token_value(value_token))})
                elif ctype in ("name", "userId"):
                    if special in ("exists", "not_exists") or (ctype == "userId" and special):
                        nodes.append({"type": ctype, "operator": special})
                    else:
                        nodes.append({"type": ctype, "operator": op, "value": _js_string(_token_value(value_token))})
                else:
                    node: dict[str, Any] = {"type": ctype, "name": re.sub(rf"^{_NESTED[ctype]}\.", "", value, count=1)}
                    if special:
                        node["operator"] = special
                    elif value_token[0] == "number" and op in ("=", "!="):
                        node["operator"] = "number_equals" if op == "=" else "number_not_equals"
                        node["value"] = _token_value(value_token)
                    else:
                        node["operator"] = op
                        node["value"] = _token_value(value_token)
                    nodes.append(node)
            if value in ("contains", "match") and tokens:
                _fql_function(value, nodes, tokens, negate=False)
        if (
            kind == "operator"
            and value == "!"
            and tokens
            and tokens[0][0] == "ident"
            and tokens[0][1] in ("contains", "match")
        ):
            name = tokens.pop(0)[1]
            _fql_function(name, nodes, tokens, negate=True)
        if kind == "parenleft":
            group: list = []
            inner = tokens.pop(0) if tokens else ("eos", "eos")
            while inner[0] != "parenright":
                if inner[0] == "eos":
                    raise TriggerError("a parenthesis is not closed")
                group.append(inner)
                inner = tokens.pop(0) if tokens else ("eos", "eos")
            group.append(("eos", "eos"))
            nodes.append(_fql_parse(group))
        if kind == "conditional":
            # One operator per group: the last `and`/`or` in it (as Segment parses).
            operator = value
        token = tokens.pop(0) if tokens else None
    if len(nodes) > 1:
        return {"type": "group", "operator": operator, "children": nodes}
    return nodes[0] if nodes else None


def parse_trigger(trigger: str) -> dict:
    """A subscription trigger -> the condition tree Segment evaluates (the shape
    of @segment/destination-subscriptions parseFql), or `{"error": ...}`."""
    try:
        ast = _fql_parse(_fql_lex(trigger))
        if ast is None or not isinstance(ast, dict) or "type" not in ast:
            raise TriggerError(f"no condition cdpio or Segment can evaluate in {trigger!r}")
    except TriggerError as exc:
        return {"error": str(exc)}
    if ast["type"] != "group":
        return {"type": "group", "operator": "and", "children": [ast]}
    return ast


def _get(obj: Any, path: str) -> Any:
    for key in re.findall(r"[^[.\]]+", path or ""):
        if obj is None or obj is False or obj == "" or (_is_number(obj) and not obj):
            return obj  # JavaScript's `previous && previous[key]` on a falsy value
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, (list, str)) and key.isdigit() and int(key) < len(obj):
            obj = obj[int(key)]
        else:
            return None
    return obj


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _js_number(value: Any) -> float:
    if value is None:
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _check_value(actual: Any, operator: str, expected: Any = None) -> bool:
    if operator == "=":
        return isinstance(actual, str) and actual == _js_string(expected)
    if operator == "!=":
        return not (isinstance(actual, str) and actual == _js_string(expected))
    if operator in ("number_equals", "number_not_equals", "<", "<=", ">", ">="):
        if not _is_number(actual):
            return False
        a, e = float(actual), _js_number(expected)
        return {
            "number_equals": a == e,
            "number_not_equals": a != e,
            "<": a < e,
            "<=": a <= e,
            ">": a > e,
            ">=": a >= e,
        }[operator]
    text = _js_string(expected)
    if operator in ("contains", "starts_with", "ends_with", "not_contains", "not_starts_with", "not_ends_with"):
        if not isinstance(actual, str):
            return False
        hit = {"contains": text in actual, "starts_with": actual.startswith(text), "ends_with": actual.endswith(text)}[
            operator.replace("not_", "")
        ]
        return not hit if operator.startswith("not_") else hit
    if operator == "exists":
        return actual is not None
    if operator == "not_exists":
        return actual is None
    if operator == "is_true":
        return actual is True
    if operator == "is_false":
        return actual is False
    return False


def _field(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def _check_condition(cond: dict, data: Any) -> bool:
    ctype = cond.get("type")
    if ctype == "group":
        return _check_group(cond, data)
    if ctype in ("event-type", "event", "name", "userId"):
        key = "type" if ctype == "event-type" else ctype
        return _check_value(_field(data, key), cond.get("operator", ""), cond.get("value"))
    if ctype in _NESTED:
        return _check_value(
            _get(_field(data, _NESTED[ctype]), cond.get("name", "")), cond.get("operator", ""), cond.get("value")
        )
    return False


def _check_group(cond: dict, data: Any) -> bool:
    children = cond.get("children") or []
    if cond.get("operator") == "and":
        return all(_check_condition(c, data) for c in children)
    if cond.get("operator") == "or":
        return any(_check_condition(c, data) for c in children)
    return False


def condition_matches(ast: dict, data: Any) -> bool:
    """Evaluate a parsed trigger against a message (destination-subscriptions validate)."""
    if not isinstance(ast, dict) or ast.get("error") or data is None:
        return False
    return _check_group(ast, data)


def trigger_matches(trigger: str, msg: Any) -> bool:
    """Whether a subscription's trigger matches the message; a trigger Segment
    cannot parse matches nothing."""
    return condition_matches(_parsed_trigger(trigger), msg)


_TRIGGER_CACHE: dict[str, dict] = {}


def _parsed_trigger(trigger: str) -> dict:
    ast = _TRIGGER_CACHE.get(trigger)
    if ast is None:
        ast = _TRIGGER_CACHE[trigger] = parse_trigger(trigger)
    return ast


def check_trigger(trigger: str) -> None:
    """Raise TriggerError for a trigger Segment cannot parse (it would match nothing)."""
    ast = _parsed_trigger(trigger)
    if "error" in ast:
        raise TriggerError(f"Segment cannot parse the trigger {trigger!r}: {ast['error']}")


def map_subscribed(msg: Any, subscriptions: tuple[Subscription, ...] | list[Subscription]) -> Mapping:
    """Run the message through every enabled subscription whose trigger matches.

    Several matches send all their operations (action names joined by "+");
    no match is NO_MATCHING_MAPPING naming the subscription that would have
    taken the message by default and why it did not (disabled, or its trigger
    excludes the message)."""
    if not isinstance(msg, dict):
        return Mapping(None, [], f"{DROP_NO_MAPPING}: the message is not a JSON object")
    results = [
        run_action(s.action, msg)
        for s in subscriptions
        if s.enabled and s.action in ACTION_BUILDERS and trigger_matches(s.trigger, msg)
    ]
    if not results:
        return Mapping(None, [], f"{DROP_NO_MAPPING}: {_why_unmatched(msg, subscriptions)}")
    if len(results) == 1:
        return results[0]
    sent = [r for r in results if r.ok]
    if not sent:
        return Mapping("+".join(r.action or "" for r in results), [], "; ".join(r.drop_reason or "" for r in results))
    endpoint = V1_METRICS if all(r.endpoint == V1_METRICS for r in sent) else V2
    # One result can only carry one endpoint: metrics bodies join only metrics bodies.
    sent = [r for r in sent if r.endpoint == endpoint]
    return Mapping("+".join(r.action or "" for r in sent), [op for r in sent for op in r.operations], endpoint=endpoint)


def _message_label(msg: dict) -> str:
    if msg.get("type") == "track" and isinstance(msg.get("event"), str):
        return f"`{msg['event']}`"
    return f"{msg.get('type')!s} messages"


def _why_unmatched(msg: dict, subscriptions) -> str:
    default = map_message(msg).action
    mine = [s for s in subscriptions if s.action == default] if default else []
    label = _message_label(msg)
    if not mine:
        return f"no subscription takes {label}" + (
            f" (the default would be {ACTIONS[default].title}, and this destination has no {default} subscription)"
            if default
            else ""
        )
    disabled = [s for s in mine if not s.enabled]
    if disabled and len(disabled) == len(mine):
        return f"your {disabled[0].title} subscription is disabled, so it does not send {label}"
    return f"your {mine[0].title} subscription's trigger excludes {label}"

"""Segment message -> what the Customer.io (Actions) destination does with it.

The one implementation shared by the sandbox (it applies the operations to its
in-memory workspace), `cdpio lint`, `cdpio explain` and replay's customerio
route (which posts the operations to Track v2 `/api/v2/batch`).

Facts: reference/segment-api.md §5 (the destination's default "Quick Setup"
subscriptions, §5.3, and how it builds Track v2 bodies, §5.2).  Where the
destination's code and its docs disagree, the reference follows the code.

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
matches is dropped with `NO_MATCHING_MAPPING: ...` (segment-api.md §5.4, §6).

An operation that breaks one of Customer.io's limits (cdpio_cli/limits.py)
is dropped with `CUSTOMERIO_400: <Customer.io's message>`: the destination
sends it and Customer.io rejects it, which Segment shows as a failed delivery.

This module is pure: no I/O, no starlette; only the standard library,
cdpio_cli.messages and cdpio_cli.limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cdpio_cli import limits
from cdpio_cli.messages import parse_timestamp

V2 = "v2"                       # POST {track}/api/v2/entity or /api/v2/batch
V1_METRICS = "/api/v1/metrics"  # reportDeliveryEvent only

DROP_NO_MAPPING = "NO_MATCHING_MAPPING"
DROP_REJECTED = "MESSAGE_REJECTED"


@dataclass(frozen=True)
class ActionInfo:
    name: str
    trigger: str            # the default subscription, as Segment writes it
    operation: str          # Customer.io `type / action`
    title: str


_DEVICE_EVENTS = ("Application Installed", "Application Opened", "Device Created or Updated")
_DEVICE_DELETE_EVENTS = ("Application Uninstalled", "Device Deleted")

ACTIONS: dict[str, ActionInfo] = {a.name: a for a in (
    ActionInfo("createUpdatePerson", 'type = "identify"', "person / identify",
               "Create or Update Person"),
    ActionInfo("trackEvent", 'type = "track" and event not in the semantic events below',
               "person / event", "Track Event"),
    ActionInfo("trackPageView", 'type = "page"', "person / page", "Track Page View"),
    ActionInfo("trackScreenView", 'type = "screen"', "person / screen", "Track Screen View"),
    ActionInfo("createUpdateDevice",
               'event = "Application Installed" or "Application Opened" or "Device Created or Updated"',
               "person / add_device", "Create or Update Device"),
    ActionInfo("deleteDevice", 'event = "Application Uninstalled" or "Device Deleted"',
               "person / delete_device", "Delete Device"),
    ActionInfo("deletePerson", 'event = "User Deleted"', "person / delete", "Delete Person"),
    ActionInfo("suppressPerson", 'event = "User Suppressed"', "person / suppress",
               "Suppress Person"),
    ActionInfo("unsuppressPerson", 'event = "User Unsuppressed"', "person / unsuppress",
               "Unsuppress Person"),
    ActionInfo("createUpdateObject", 'type = "group"', "object / identify (identify_anonymous)",
               "Create or Update Object"),
    ActionInfo("deleteObject", 'event = "Object Deleted"', "object / delete", "Delete Object"),
    ActionInfo("deleteRelationship", 'event = "Relationship Deleted"',
               "object / delete_relationships", "Delete Relationship"),
    ActionInfo("mergePeople", 'type = "alias"', "person / merge", "Merge People"),
    ActionInfo("reportDeliveryEvent", 'event = "Report Delivery Event"', "POST /api/v1/metrics",
               "Report Delivery Event"),
    ActionInfo("reportContentEvent", 'event = "Report Content Event"',
               "person / viewed_content | clicked_content", "Report Content Event"),
)}

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

DELIVERY_METRICS = ("delivered", "opened", "clicked", "converted", "spammed", "bounced",
                    "dropped", "deferred")
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
# person id is an email (segment-api.md §5.2).
_EMAIL_RE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    re.IGNORECASE)

# segmentio/isostring, the destination's test for "this attribute is a date".
_ISO_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}((T\d{2}:\d{2}(:\d{2})?)(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?)?$")
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


def resolve_identifiers(person_id: Any = None, email: Any = None, anonymous_id: Any = None,
                        object_id: Any = None, object_type_id: Any = "1") -> dict | None:
    """The destination's identifier resolution (segment-api.md §5.2)."""
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


def _build(type_: str, action: str, *, person_id: Any = None, anonymous_id: Any = None,
           email: Any = None, object_id: Any = None, object_type_id: Any = None,
           timestamp: Any = None, convert: bool = True, **rest: Any) -> dict:
    """utils.ts buildPayload: the v2 body from the mapped fields."""
    body: dict[str, Any] = {"type": type_, "action": action}
    for key, value in rest.items():
        if value is None:
            continue      # undefined fields vanish from the JSON
        body[key] = convert_attribute_timestamps(value) if convert and type(value) is dict else value
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


# --- actions -------------------------------------------------------------

_PERSON_TRAITS_MOVED = ("createdAt", "created_at", "object_type_id", "objectTypeId",
                        "relationshipAttributes")


def _create_update_person(msg: dict) -> Mapping:
    traits = _dict(msg.get("traits"))
    user_id = msg.get("userId")
    person_id = user_id if user_id is not None else traits.get("email")
    email = traits.get("email")
    anonymous_id = msg.get("anonymousId")
    if _str_id(person_id) is None and not email and not anonymous_id:
        return _rejected("createUpdatePerson", "a person: userId, traits.email or anonymousId")
    attributes = {k: v for k, v in traits.items() if k not in _PERSON_TRAITS_MOVED}
    created_at = _first(traits.get("created_at"), traits.get("createdAt"))
    if created_at:
        attributes["created_at"] = created_at
    if email:
        attributes["email"] = email
    relationships = None
    group_id = traits.get("objectId")
    if group_id:
        rel: dict[str, Any] = {"identifiers": {
            "object_type_id": _first(traits.get("object_type_id"), traits.get("objectTypeId"), "1"),
            "object_id": group_id}}
        if traits.get("relationshipAttributes"):
            rel["relationship_attributes"] = traits["relationshipAttributes"]
        relationships = [rel]
    body = _build("person", "identify", person_id=person_id, anonymous_id=anonymous_id,
                  attributes=attributes, cio_relationships=relationships,
                  timestamp=msg.get("timestamp"))
    return Mapping("createUpdatePerson", [body])


def _person_event(msg: dict, action_name: str, cio_action: str, name: Any) -> Mapping:
    """trackEvent / trackPageView / trackScreenView: most traffic, so built directly.

    Same body as `_build` would make (tests/test_mapping.py checks that).
    """
    person_id = _str_id(msg.get("userId"))
    anonymous_id = msg.get("anonymousId")
    if person_id is None and not anonymous_id:
        return _rejected(action_name, "a person: userId or anonymousId")
    body: dict[str, Any] = {"type": "person", "action": cio_action, "name": name}
    message_id = msg.get("messageId")
    if message_id is not None:
        body["id"] = message_id
    props = msg.get("properties")
    attributes = convert_attribute_timestamps(props) if type(props) is dict else None
    if attributes is not None:
        body["attributes"] = attributes
    timestamp = msg.get("timestamp")
    if timestamp:
        body["timestamp"] = convert_timestamp(timestamp)
    if person_id is not None:
        if anonymous_id:
            body["attributes"] = {**(attributes or {}), "anonymous_id": anonymous_id}
        body["identifiers"] = resolve_identifiers(person_id)
    else:
        # Identified by the anonymous id: the copy in attributes is removed again.
        body["attributes"] = attributes if attributes is not None else {}
        body["identifiers"] = {"anonymous_id": anonymous_id}
    return Mapping(action_name, [body])


def _track_event(msg: dict) -> Mapping:
    name = msg.get("event")
    if not isinstance(name, str) or name == "":
        return _rejected("trackEvent", "event (the Customer.io event name)")
    return _person_event(msg, "trackEvent", "event", name)


def _track_page(msg: dict) -> Mapping:
    url = _dict(msg.get("properties")).get("url")
    if not url:
        return _rejected("trackPageView",
                         "properties.url (the page URL becomes the Customer.io page name)")
    return _person_event(msg, "trackPageView", "page", url)


def _track_screen(msg: dict) -> Mapping:
    name = msg.get("name")
    if not name:
        return _rejected("trackScreenView", "name (the screen name becomes the Customer.io screen name)")
    return _person_event(msg, "trackScreenView", "screen", name)


def _device(msg: dict) -> dict:
    return _dict(_dict(msg.get("context")).get("device"))


def _create_update_device(msg: dict) -> Mapping:
    action = "createUpdateDevice"
    if _str_id(msg.get("userId")) is None:
        return _rejected(action, "userId (devices belong to an identified person)")
    device = _device(msg)
    token = device.get("token")
    if not token:
        return _rejected(action, "context.device.token (the push token)")
    platform = device.get("type")
    if not platform:
        return _rejected(action, "context.device.type (the device platform: ios or android)")
    attributes = dict(_dict(msg.get("properties")))
    app_version = _dict(_dict(msg.get("context")).get("app")).get("version")
    if app_version is not None:
        attributes["app_version"] = app_version
    dev: dict[str, Any] = {"token": token, "platform": platform}
    last_used = convert_timestamp(msg.get("timestamp")) if msg.get("timestamp") else None
    if last_used is not None:
        dev["last_used"] = last_used
    if attributes:
        dev["attributes"] = convert_attribute_timestamps(attributes)
    body = _build("person", "add_device", person_id=msg.get("userId"), device=dev, convert=False)
    return Mapping(action, [body])


def _delete_device(msg: dict) -> Mapping:
    action = "deleteDevice"
    if _str_id(msg.get("userId")) is None:
        return _rejected(action, "userId (devices belong to an identified person)")
    token = _device(msg).get("token")
    if not token:
        return _rejected(action, "context.device.token (the push token)")
    body = _build("person", "delete_device", person_id=msg.get("userId"),
                  device={"token": token}, convert=False)
    return Mapping(action, [body])


def _person_only(msg: dict, action: str, cio_action: str) -> Mapping:
    if _str_id(msg.get("userId")) is None:
        return _rejected(action, "userId")
    return Mapping(action, [_build("person", cio_action, person_id=msg.get("userId"))])


def _object_type(container: dict) -> Any:
    return _first(container.get("object_type_id"), container.get("objectTypeId"), "1")


def _create_update_object(msg: dict) -> Mapping:
    action = "createUpdateObject"
    group_id = _str_id(msg.get("groupId"))
    if group_id is None:
        return _rejected(action, "groupId (the object id)")
    traits = _dict(msg.get("traits"))
    user_id = _str_id(msg.get("userId"))
    anonymous_id = msg.get("anonymousId")
    attributes = traits.get("objectAttributes")
    if isinstance(attributes, dict):
        attributes = convert_attribute_timestamps(
            {k: v for k, v in attributes.items() if k != "object_type_id"})
    rel_attrs = traits.get("relationshipAttributes")
    rel: dict[str, Any] | None = None
    cio_action = "identify"
    if user_id is not None:
        rel = {"identifiers": resolve_identifiers(person_id=user_id)}
    elif anonymous_id:
        cio_action = "identify_anonymous"
        rel = {"identifiers": {"anonymous_id": anonymous_id}}
    if rel is not None and isinstance(rel_attrs, dict):
        rel["relationship_attributes"] = convert_attribute_timestamps(rel_attrs)
    created_at = _first(traits.get("created_at"), traits.get("createdAt"))
    body = _build("object", cio_action, anonymous_id=anonymous_id, object_id=group_id,
                  object_type_id=_object_type(traits),
                  created_at=convert_timestamp(created_at) if created_at else None,
                  attributes=attributes, cio_relationships=[rel] if rel else None, convert=False)
    return Mapping(action, [body])


def _delete_object(msg: dict) -> Mapping:
    props = _dict(msg.get("properties"))
    object_id = _str_id(props.get("objectId"))
    if object_id is None:
        return _rejected("deleteObject", "properties.objectId")
    body = _build("object", "delete", object_id=object_id, object_type_id=_object_type(props))
    return Mapping("deleteObject", [body])


def _delete_relationship(msg: dict) -> Mapping:
    action = "deleteRelationship"
    props = _dict(msg.get("properties"))
    object_id = _str_id(props.get("objectId"))
    if object_id is None:
        return _rejected(action, "properties.objectId")
    user_id = _str_id(msg.get("userId"))
    anonymous_id = msg.get("anonymousId")
    if user_id is not None:
        person = resolve_identifiers(person_id=user_id)
    elif anonymous_id:
        person = {"anonymous_id": anonymous_id}
    else:
        return _rejected(action, "userId or anonymousId")
    body = _build("object", "delete_relationships", object_id=object_id,
                  object_type_id=_object_type(props),
                  cio_relationships=[{"identifiers": person}], convert=False)
    return Mapping(action, [body])


def _merge_people(msg: dict) -> Mapping:
    primary = resolve_identifiers(person_id=msg.get("userId"))
    secondary = resolve_identifiers(person_id=msg.get("previousId"))
    if primary is None:
        return _rejected("mergePeople", "userId (the primary person)")
    if secondary is None:
        return _rejected("mergePeople", "previousId (the secondary person)")
    body = _build("person", "merge", primary=primary, secondary=secondary, convert=False)
    return Mapping("mergePeople", [body])


def _report_delivery(msg: dict) -> Mapping:
    action = "reportDeliveryEvent"
    props = _dict(msg.get("properties"))
    delivery_id = props.get("deliveryId")
    metric = props.get("metric")
    if not delivery_id:
        return _rejected(action, "properties.deliveryId")
    if metric not in DELIVERY_METRICS:
        return _rejected(action, f"properties.metric (one of {', '.join(DELIVERY_METRICS)})")
    body: dict[str, Any] = {"delivery_id": delivery_id, "metric": metric}
    ts = convert_timestamp(msg.get("timestamp")) if msg.get("timestamp") else None
    if ts is not None:
        body["timestamp"] = ts
    for src, dst in (("recipient", "recipient"), ("reason", "reason"), ("href", "href")):
        if props.get(src) is not None:
            body[dst] = props[src]
    metadata = {k: v for k, v in (("action_name", props.get("actionName")),
                                  ("action_value", props.get("actionValue"))) if v is not None}
    if metadata:
        body["metadata"] = metadata
    return Mapping(action, [body], endpoint=V1_METRICS)


def _report_content(msg: dict) -> Mapping:
    action = "reportContentEvent"
    props = _dict(msg.get("properties"))
    action_type = props.get("actionType")
    if action_type not in CONTENT_ACTIONS:
        return _rejected(action, "properties.actionType (viewed_content or clicked_content)")
    anonymous_id = msg.get("anonymousId")
    if not anonymous_id:
        return _rejected(action, "anonymousId")
    body = _build("person", action_type, anonymous_id=anonymous_id, name=action_type,
                  attributes=props, timestamp=msg.get("timestamp"))
    return Mapping(action, [body])


_SEMANTIC_BUILDERS = {
    "createUpdateDevice": _create_update_device,
    "deleteDevice": _delete_device,
    "deletePerson": lambda m: _person_only(m, "deletePerson", "delete"),
    "suppressPerson": lambda m: _person_only(m, "suppressPerson", "suppress"),
    "unsuppressPerson": lambda m: _person_only(m, "unsuppressPerson", "unsuppress"),
    "deleteObject": _delete_object,
    "deleteRelationship": _delete_relationship,
    "reportDeliveryEvent": _report_delivery,
    "reportContentEvent": _report_content,
}


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
            return Mapping(result.action, [], limits.rejection_reason(found[0]), result.endpoint,
                           violations=found)
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
    return Mapping(None, [], f"{DROP_NO_MAPPING}: no subscription matches type {mtype!r} "
                             "(the defaults cover identify, track, page, screen, group and alias)")


def subscription_for(msg: Any) -> str | None:
    """The action whose default trigger matches the message (None: no match)."""
    return map_message(msg).action

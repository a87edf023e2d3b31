"""Each action of the destination: the message -> its Track API operation(s),
or the reason it is rejected; `map_message` runs the default subscriptions
(the message's type, or the semantic event it names)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from cdpio_cli import limits
from cdpio_cli.mapping.catalog import (
    CONTENT_ACTIONS,
    DEFAULT_FIELDS,
    DELIVERY_METRICS,
    DROP_NO_MAPPING,
    DROP_REJECTED,
    SEMANTIC_EVENTS,
    V1_METRICS,
    V2,
    Fields,
    Mapping,
    rejected,
)
from cdpio_cli.mapping.payload import (
    DIGITS_RE,
    as_dict,
    build_payload,
    convert_attribute_timestamps,
    convert_timestamp,
    first_not_null,
    iso_to_unix,
    resolve_identifiers,
    str_id,
)

# --- actions -------------------------------------------------------------

_PERSON_TRAITS_MOVED = ("createdAt", "created_at", "object_type_id", "objectTypeId", "relationshipAttributes")


def _person_attributes(traits: dict, f: Fields) -> dict:
    """createUpdatePerson's attributes: the traits without the fields the
    destination moves elsewhere, plus created_at and email."""
    if not f.unmapped and traits.keys().isdisjoint(_PERSON_TRAITS_MOVED):
        # The usual traits: nothing to remove, no created_at to add, and email
        # (if any) is already in place; the copy is the answer.
        return convert_attribute_timestamps(traits) if f.convert_timestamp else dict(traits)
    attributes = {k: v for k, v in as_dict(f.get("custom_attributes", traits)).items() if k not in _PERSON_TRAITS_MOVED}
    created_at = first_not_null(traits.get("created_at"), traits.get("createdAt"))
    if created_at:
        attributes["created_at"] = created_at
    email = traits.get("email")
    if email:
        attributes["email"] = email
    return convert_attribute_timestamps(attributes) if f.convert_timestamp else attributes


def _create_update_person(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    """Built directly: the body `build_payload` makes from these fields (the
    attributes converted, the timestamp always), key order included."""
    get = msg.get
    traits = get("traits")
    if type(traits) is not dict:
        traits = as_dict(traits)
    user_id = get("userId")
    email = traits.get("email")
    person_id = user_id if user_id is not None else email
    anonymous_id = f.get("anonymous_id", get("anonymousId"))
    if str_id(person_id) is None and not email and not anonymous_id:
        return rejected("createUpdatePerson", "a person: userId, traits.email or anonymousId")
    attributes = _person_attributes(traits, f)
    body: dict[str, Any] = {"type": "person", "action": "identify", "attributes": attributes}
    group_id = f.get("group_id", traits.get("objectId"))
    if group_id:
        rel: dict[str, Any] = {
            "identifiers": {
                "object_type_id": first_not_null(traits.get("object_type_id"), traits.get("objectTypeId"), "1"),
                "object_id": group_id,
            }
        }
        rel_attrs = f.get("relationship_attributes", traits.get("relationshipAttributes"))
        if rel_attrs:
            rel["relationship_attributes"] = rel_attrs
        body["cio_relationships"] = [rel]
    timestamp = f.get("timestamp", get("timestamp"))
    if timestamp:
        body["timestamp"] = convert_timestamp(timestamp)
    if anonymous_id:
        body["attributes"] = {**attributes, "anonymous_id": anonymous_id}
    identifiers = resolve_identifiers(person_id, None, anonymous_id)
    if identifiers is not None:
        body["identifiers"] = identifiers
        if "anonymous_id" in identifiers:
            body["attributes"].pop("anonymous_id", None)
    return Mapping("createUpdatePerson", [body])


def _person_event(msg: dict, action_name: str, cio_action: str, name: Any, f: Fields = DEFAULT_FIELDS) -> Mapping:
    """trackEvent / trackPageView / trackScreenView: most traffic, so built directly.

    Same body, key order included, as `build_payload` would make
    (tests/test_mapping.py checks that).
    """
    get = msg.get
    user_id, anonymous_id, message_id, props, timestamp = (
        get("userId"),
        get("anonymousId"),
        get("messageId"),
        get("properties"),
        get("timestamp"),
    )
    if f.unmapped:  # rare: only then is each field looked up in the mapping
        user_id, anonymous_id = f.get("id", user_id), f.get("anonymous_id", anonymous_id)
        message_id, props, timestamp = (
            f.get("event_id", message_id),
            f.get("data", props),
            f.get("timestamp", timestamp),
        )
    person_id = user_id if type(user_id) is str and user_id else str_id(user_id)
    if person_id is None and not anonymous_id:
        return rejected(action_name, "a person: userId or anonymousId")
    convert = f.convert_timestamp
    # iso_to_unix's own first test, inlined: names and ids are rarely dates.
    if convert and type(name) is str and len(name) >= 10 and name[4] == "-":
        name = iso_to_unix(name)
    body: dict[str, Any] = {"type": "person", "action": cio_action, "name": name}
    # trackEvent sends any mapped event id; page and screen only a non-empty one.
    if message_id is not None and (message_id or action_name == "trackEvent"):
        if convert and type(message_id) is str and len(message_id) >= 10 and message_id[4] == "-":
            message_id = iso_to_unix(message_id)
        body["id"] = message_id
    attributes = None
    if type(props) is dict:
        attributes = convert_attribute_timestamps(props) if convert else props
        body["attributes"] = attributes
    if timestamp:
        body["timestamp"] = convert_timestamp(timestamp)
    if person_id is not None:
        if anonymous_id:
            body["attributes"] = {**(attributes or {}), "anonymous_id": anonymous_id}
        # resolve_identifiers' answer for an id that is neither `cio_...` nor an email.
        if "@" in person_id or person_id.startswith("cio_"):
            body["identifiers"] = resolve_identifiers(person_id)
        else:
            body["identifiers"] = {"id": person_id}
    else:
        # Identified by the anonymous id: the copy in attributes is removed again.
        body["attributes"] = dict(attributes) if attributes is not None else {}
        body["identifiers"] = {"anonymous_id": anonymous_id}
    return Mapping(action_name, [body])


def _track_event(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    name = f.get("name", msg.get("event"))
    if not isinstance(name, str) or name == "":
        return rejected("trackEvent", "event (the Customer.io event name)")
    return _person_event(msg, "trackEvent", "event", name, f)


def _track_page(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    url = f.get("url", as_dict(msg.get("properties")).get("url"))
    if not url:
        return rejected("trackPageView", "properties.url (the page URL becomes the Customer.io page name)")
    return _person_event(msg, "trackPageView", "page", url, f)


def _track_screen(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    name = f.get("name", msg.get("name"))
    if not name:
        return rejected("trackScreenView", "name (the screen name becomes the Customer.io screen name)")
    return _person_event(msg, "trackScreenView", "screen", name, f)


def _device(msg: dict) -> dict:
    return as_dict(as_dict(msg.get("context")).get("device"))


def _create_update_device(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "createUpdateDevice"
    if str_id(f.get("person_id", msg.get("userId"))) is None:
        return rejected(action, "userId (devices belong to an identified person)")
    device = _device(msg)
    token = f.get("device_id", device.get("token"))
    if not token:
        return rejected(action, "context.device.token (the push token)")
    platform = f.get("platform", device.get("type"))
    if not platform:
        return rejected(action, "context.device.type (the device platform: ios or android)")
    # The destination always sends `device.attributes`, `{}` when there are none.
    attributes = dict(as_dict(f.get("attributes", msg.get("properties"))))
    app_version = f.get("app_version", as_dict(as_dict(msg.get("context")).get("app")).get("version"))
    if app_version:
        attributes["app_version"] = app_version
    dev: dict[str, Any] = {"token": token, "platform": platform, "attributes": attributes}
    last_used = f.get("last_used", msg.get("timestamp"))
    if last_used is not None:
        dev["last_used"] = last_used
    # last_used is not the root `timestamp`: it converts only as an ISO-8601
    # attribute would (an unparseable or non-ISO value is sent as it is).
    body = build_payload("person", "add_device", person_id=msg.get("userId"), device=dev, convert=f.convert_timestamp)
    return Mapping(action, [body])


def _delete_device(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "deleteDevice"
    if str_id(f.get("person_id", msg.get("userId"))) is None:
        return rejected(action, "userId (devices belong to an identified person)")
    token = f.get("device_id", _device(msg).get("token"))
    if not token:
        return rejected(action, "context.device.token (the push token)")
    body = build_payload("person", "delete_device", person_id=msg.get("userId"), device={"token": token}, convert=False)
    return Mapping(action, [body])


def _person_only(msg: dict, action: str, cio_action: str, f: Fields = DEFAULT_FIELDS) -> Mapping:
    person_id = f.get("person_id", msg.get("userId"))
    if str_id(person_id) is None:
        return rejected(action, "userId")
    return Mapping(action, [build_payload("person", cio_action, person_id=person_id, convert=False)])


def _object_type(container: dict) -> Any:
    return first_not_null(container.get("object_type_id"), container.get("objectTypeId"), "1")


_OBJECT_ATTRIBUTES_DROPPED = ("object_type_id", "objectTypeId", "relationshipAttributes")


def _create_update_object(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "createUpdateObject"
    group_id = str_id(f.get("id", msg.get("groupId")))
    if group_id is None:
        return rejected(action, "groupId (the object id)")
    traits = as_dict(msg.get("traits"))
    user_id = str_id(f.get("user_id", msg.get("userId")))
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
    created_at = first_not_null(traits.get("created_at"), traits.get("createdAt")) or None
    if convert and type(created_at) is str:
        created_at = iso_to_unix(created_at)
    # Converted above like the destination's mapPayload; buildPayload does not convert again.
    body = build_payload(
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
    props = as_dict(msg.get("properties"))
    object_id = str_id(f.get("object_id", props.get("objectId")))
    if object_id is None:
        # The destination would send a body without identifiers, which
        # Customer.io cannot apply; cdpio reports it as not sendable.
        return rejected("deleteObject", "properties.objectId")
    body = build_payload("object", "delete", object_id=object_id, object_type_id=_object_type(props), convert=False)
    return Mapping("deleteObject", [body])


def _delete_relationship(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "deleteRelationship"
    props = as_dict(msg.get("properties"))
    object_id = str_id(f.get("object_id", props.get("objectId")))
    if object_id is None:
        return rejected(action, "properties.objectId")
    # person_id is a required field of the action: an anonymous-only message is rejected.
    user_id = str_id(f.get("person_id", msg.get("userId")))
    if user_id is None:
        return rejected(action, "userId (the person whose relationship is deleted)")
    body = build_payload(
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
        return rejected("mergePeople", "userId (the primary person)")
    if secondary is None:
        return rejected("mergePeople", "previousId (the secondary person)")
    body = build_payload("person", "merge", primary=primary, secondary=secondary, convert=False)
    return Mapping("mergePeople", [body])


def _report_delivery(msg: dict, f: Fields = DEFAULT_FIELDS) -> Mapping:
    action = "reportDeliveryEvent"
    props = as_dict(msg.get("properties"))
    delivery_id = f.get("delivery_id", props.get("deliveryId"))
    metric = f.get("metric", props.get("metric"))
    if not delivery_id:
        return rejected(action, "properties.deliveryId")
    if metric not in DELIVERY_METRICS:
        return rejected(action, f"properties.metric (one of {', '.join(DELIVERY_METRICS)})")
    # The destination always sends a timestamp: the message's, else the time of sending.
    ts = convert_timestamp(f.get("timestamp", msg.get("timestamp")))
    if isinstance(ts, str) and DIGITS_RE.match(ts):
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
    props = as_dict(msg.get("properties"))
    action_type = f.get("actionType", props.get("actionType"))
    if action_type not in CONTENT_ACTIONS:
        return rejected(action, "properties.actionType (viewed_content or clicked_content)")
    anonymous_id = f.get("anonymous_id", msg.get("anonymousId"))
    if not anonymous_id:
        # The destination would send it without identifiers; Customer.io cannot apply it.
        return rejected(action, "anonymousId")
    data = f.get("data", msg.get("properties"))
    # actionType becomes the operation; the destination removes it from the attributes.
    attributes = {k: v for k, v in data.items() if k != "actionType"} if isinstance(data, dict) else None
    body = build_payload(
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


# The default subscriptions by message type (track, by event, in `_map`).
_BY_TYPE: dict[Any, Callable[[dict], Mapping]] = {
    "identify": _create_update_person,
    "page": _track_page,
    "screen": _track_screen,
    "group": _create_update_object,
    "alias": _merge_people,
}


def _map(msg: Any) -> Mapping:
    if not isinstance(msg, dict):
        return Mapping(None, [], f"{DROP_NO_MAPPING}: the message is not a JSON object")
    mtype = msg.get("type")
    if mtype == "track":  # most traffic: no further call on the way to its builder
        event = msg.get("event")
        if isinstance(event, str):
            semantic = SEMANTIC_EVENTS.get(event)
            if semantic is not None:
                return _SEMANTIC_BUILDERS[semantic](msg)
            if event:
                return _person_event(msg, "trackEvent", "event", event)
        return _track_event(msg)  # rejected: no usable event name
    builder = _BY_TYPE.get(mtype) if isinstance(mtype, str) else None
    if builder is not None:
        return builder(msg)
    return Mapping(
        None,
        [],
        f"{DROP_NO_MAPPING}: no subscription matches type {mtype!r} "
        "(the defaults cover identify, track, page, screen, group and alias)",
    )

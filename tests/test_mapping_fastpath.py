"""The mapping's direct builders write the same bytes as the generic one.

`_person_event` and `_create_update_person` build their Track v2 bodies
directly instead of through `payload.build_payload` (they carry most traffic).
JSON object order reaches the wire, so these compare encoded bytes, key order
included, not dict equality.  The Customer.io route's `prepare` encodes
without `messages.encode`'s option for non-string keys; the bytes must be
`messages.encode`'s all the same.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cdpio_cli import mapping, messages
from cdpio_cli.mapping import actions, payload
from cdpio_cli.mapping.catalog import Fields
from cdpio_cli.routes.customerio import CustomerioRoute

_DATES = st.sampled_from(
    [
        "2024-03-01T10:00:00.000Z",
        "2024-03-01T10:00:00+02:00",
        "2024-03-01",
        "1969-12-31T23:59:59.500Z",
        "2024-13-01T00:00:00Z",
        "1714564800",
        "user-1@example.com",
        "cio_abc",
        "",
    ]
)
_LEAF = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | _DATES
_KEYS = st.sampled_from(
    ["email", "createdAt", "created_at", "objectId", "object_type_id", "objectTypeId", "relationshipAttributes"]
) | st.text(max_size=5)
_JSONISH = st.recursive(
    _LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4), max_leaves=10
)
_ID = st.sampled_from(["u1", "cio_x", "a@b.co", "", "2024-03-01T10:00:00Z"]) | _JSONISH
_MESSAGES = st.fixed_dictionaries(
    {},
    optional={
        "userId": _ID,
        "anonymousId": st.sampled_from(["anon", ""]) | _JSONISH,
        "properties": _JSONISH,
        "traits": _JSONISH,
        "timestamp": _DATES | _JSONISH,
        "messageId": _DATES | _LEAF,
        "name": _JSONISH,
    },
)
_FIELDS = st.builds(
    Fields,
    st.booleans(),
    st.frozensets(st.sampled_from(["anonymous_id", "custom_attributes", "group_id", "timestamp", "data", "id"])),
)


def _encoded(mapped: mapping.Mapping) -> list[bytes]:
    return [messages.encode(op) for op in mapped.operations]


@settings(max_examples=400, deadline=None)
@given(
    _MESSAGES,
    st.sampled_from([("trackEvent", "event"), ("trackPageView", "page"), ("trackScreenView", "screen")]),
    # What the callers pass: a non-empty name (a screen's may be a number).
    # Names and ids are scalars here: the direct builder converts a string
    # only, where the generic one would also walk an object (as before).
    _DATES.filter(bool) | st.text(min_size=1, max_size=8) | st.integers(min_value=1),
    st.booleans(),
)
def test_person_event_writes_the_generic_builders_bytes(msg, action, name, convert):
    action_name, cio_action = action
    fast = actions._person_event(msg, action_name, cio_action, name, Fields(convert))
    user_id, anonymous_id = msg.get("userId"), msg.get("anonymousId")
    if payload.str_id(user_id) is None and not anonymous_id:
        assert not fast.ok
        return
    props = msg.get("properties")
    event_id = msg.get("messageId")
    if action_name != "trackEvent" and not event_id:
        event_id = None  # page and screen send only a non-empty event id
    reference = payload.build_payload(
        "person",
        cio_action,
        person_id=user_id,
        anonymous_id=anonymous_id,
        name=name,
        id=event_id,
        attributes=props if isinstance(props, dict) else None,
        timestamp=msg.get("timestamp"),
        convert=convert,
    )
    assert _encoded(fast) == [messages.encode(reference)]


def _generic_create_update_person(msg: dict, f: Fields) -> dict | None:
    """createUpdatePerson through build_payload, as it was written before the direct builder."""
    traits = payload.as_dict(msg.get("traits"))
    user_id = msg.get("userId")
    person_id = user_id if user_id is not None else traits.get("email")
    email = traits.get("email")
    anonymous_id = f.get("anonymous_id", msg.get("anonymousId"))
    if payload.str_id(person_id) is None and not email and not anonymous_id:
        return None
    moved = ("createdAt", "created_at", "object_type_id", "objectTypeId", "relationshipAttributes")
    custom = payload.as_dict(f.get("custom_attributes", traits))
    attributes = {k: v for k, v in custom.items() if k not in moved}
    created_at = payload.first_not_null(traits.get("created_at"), traits.get("createdAt"))
    if created_at:
        attributes["created_at"] = created_at
    if email:
        attributes["email"] = email
    relationships = None
    group_id = f.get("group_id", traits.get("objectId"))
    if group_id:
        object_type = payload.first_not_null(traits.get("object_type_id"), traits.get("objectTypeId"), "1")
        rel: dict[str, Any] = {"identifiers": {"object_type_id": object_type, "object_id": group_id}}
        rel_attrs = f.get("relationship_attributes", traits.get("relationshipAttributes"))
        if rel_attrs:
            rel["relationship_attributes"] = rel_attrs
        relationships = [rel]
    return payload.build_payload(
        "person",
        "identify",
        person_id=person_id,
        anonymous_id=anonymous_id,
        attributes=attributes,
        cio_relationships=relationships,
        timestamp=f.get("timestamp", msg.get("timestamp")),
        convert=f.convert_timestamp,
    )


@settings(max_examples=400, deadline=None)
@given(_MESSAGES, _FIELDS)
def test_create_update_person_writes_the_generic_builders_bytes(msg, fields):
    fast = actions._create_update_person(msg, fields)
    reference = _generic_create_update_person(msg, fields)
    if reference is None:
        assert not fast.ok
    else:
        assert _encoded(fast) == [messages.encode(reference)]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _JSONISH, max_size=6))
def test_attribute_conversion_is_always_a_new_dict(obj):
    out = payload.convert_attribute_timestamps(obj)
    assert out is not obj
    out["__added__"] = 1
    assert "__added__" not in obj


def test_route_encodes_operations_as_messages_encode_does():
    route = CustomerioRoute("http://127.0.0.1:1", "site", "key")
    msgs = [
        {"type": "track", "userId": "u1", "event": "E", "properties": {"a": 1, "when": "2024-03-01T10:00:00Z"}},
        # Keys orjson writes only with OPT_NON_STR_KEYS, and an integer beyond 64 bits.
        {"type": "track", "userId": "u1", "event": "E", "properties": {1: "one", "big": 2**70}},
        {"type": "identify", "userId": "u1", "traits": {"nested": {2: True}}},
        {"type": "track", "event": "Report Delivery Event", "properties": {"deliveryId": "d", "metric": "opened"}},
    ]
    for msg in msgs:
        prepared = route.prepare(msg)
        assert prepared.problem is None and prepared.dropped is None
        assert prepared.items == _encoded(mapping.map_message(msg, check_limits=False))

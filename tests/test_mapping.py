"""mapping.py reproduces the Customer.io (Actions) defaults (reference/segment-api.md §5)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpio_cli.mapping import ACTIONS, SEMANTIC_EVENTS, V1_METRICS, map_message, resolve_identifiers

TS = "2024-05-01T12:00:00.000Z"
TS_UNIX = 1714564800


def only_op(msg):
    m = map_message(msg)
    assert m.ok, m.drop_reason
    assert len(m.operations) == 1
    return m, m.operations[0]


def test_identify_is_create_update_person_with_destination_body():
    m, op = only_op(
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "anon-1",
            "timestamp": TS,
            "traits": {
                "email": "u1@example.com",
                "createdAt": "2024-01-02T03:04:05Z",
                "plan": "pro",
                "objectTypeId": "2",
                "nested": {"at": "2024-01-01"},
            },
        }
    )
    assert m.action == "createUpdatePerson"
    assert m.trigger == 'type = "identify"'
    assert op == {
        "type": "person",
        "action": "identify",
        "identifiers": {"id": "u1"},
        "attributes": {
            "email": "u1@example.com",
            "plan": "pro",
            "nested": {"at": 1704067200},
            "created_at": 1704164645,
            "anonymous_id": "anon-1",
        },
        "timestamp": TS_UNIX,
    }


def test_identify_without_user_id_uses_traits_email():
    _, op = only_op({"type": "identify", "anonymousId": "a", "traits": {"email": "x@example.com"}})
    assert op["identifiers"] == {"email": "x@example.com"}
    assert op["attributes"]["anonymous_id"] == "a"


def test_identify_with_object_id_adds_relationship():
    _, op = only_op(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"objectId": "acme", "object_type_id": "3", "relationshipAttributes": {"role": "admin"}},
        }
    )
    assert op["cio_relationships"] == [
        {"identifiers": {"object_type_id": "3", "object_id": "acme"}, "relationship_attributes": {"role": "admin"}}
    ]
    assert "relationshipAttributes" not in op["attributes"]


@pytest.mark.parametrize(
    "person_id, expected",
    [
        ("u-123", {"id": "u-123"}),
        ("cio_a3000001", {"cio_id": "a3000001"}),
        ("Someone@Example.com", {"email": "Someone@Example.com"}),
        (42, {"id": "42"}),
    ],
)
def test_identifier_resolution(person_id, expected):
    assert resolve_identifiers(person_id=person_id) == expected


def test_track_is_track_event_with_message_id_and_anonymous_id_attribute():
    m, op = only_op(
        {
            "type": "track",
            "userId": "u1",
            "anonymousId": "a1",
            "event": "Signed Up",
            "messageId": "m-1",
            "timestamp": TS,
            "properties": {"plan": "pro", "trial_ends": "2024-06-01T00:00:00Z"},
        }
    )
    assert m.action == "trackEvent"
    assert op == {
        "type": "person",
        "action": "event",
        "name": "Signed Up",
        "id": "m-1",
        "attributes": {"plan": "pro", "trial_ends": 1717200000, "anonymous_id": "a1"},
        "timestamp": TS_UNIX,
        "identifiers": {"id": "u1"},
    }


def test_anonymous_track_is_identified_by_anonymous_id_only():
    _, op = only_op({"type": "track", "anonymousId": "a1", "event": "Viewed Pricing"})
    assert op["identifiers"] == {"anonymous_id": "a1"}
    assert "anonymous_id" not in op.get("attributes", {})


def test_page_name_is_the_url():
    m, op = only_op(
        {
            "type": "page",
            "userId": "u1",
            "name": "Pricing",
            "properties": {"url": "https://example.com/pricing", "title": "Pricing"},
        }
    )
    assert m.action == "trackPageView"
    assert op["action"] == "page" and op["name"] == "https://example.com/pricing"


def test_page_without_url_is_rejected_with_reason():
    m = map_message({"type": "page", "userId": "u1", "name": "Pricing", "properties": {}})
    assert not m.ok and m.operations == []
    assert m.action == "trackPageView"
    assert m.drop_reason.startswith("MESSAGE_REJECTED: trackPageView requires properties.url")


def test_screen_uses_name_and_requires_it():
    _, op = only_op({"type": "screen", "userId": "u1", "name": "Home"})
    assert (op["action"], op["name"]) == ("screen", "Home")
    assert map_message({"type": "screen", "userId": "u1"}).drop_reason.startswith("MESSAGE_REJECTED")


DEVICE = {
    "type": "track",
    "userId": "u1",
    "event": "Application Installed",
    "timestamp": TS,
    "properties": {"build": "42"},
    "context": {"device": {"token": "tok-1", "type": "ios"}, "app": {"version": "1.2.3"}},
}


def test_application_installed_creates_device():
    m, op = only_op(DEVICE)
    assert m.action == "createUpdateDevice"
    assert op == {
        "type": "person",
        "action": "add_device",
        "identifiers": {"id": "u1"},
        "device": {
            "token": "tok-1",
            "platform": "ios",
            "last_used": TS_UNIX,
            "attributes": {"build": "42", "app_version": "1.2.3"},
        },
    }


@pytest.mark.parametrize(
    "change, needs",
    [
        ({"context": {"device": {"type": "ios"}}}, "context.device.token"),
        ({"userId": None, "anonymousId": "a1"}, "userId"),
        ({"context": {"device": {"token": "t"}}}, "context.device.type"),
    ],
)
def test_device_event_missing_required_field_is_rejected(change, needs):
    m = map_message({**DEVICE, **change})
    assert m.action == "createUpdateDevice"
    assert m.drop_reason.startswith(f"MESSAGE_REJECTED: createUpdateDevice requires {needs}")


@pytest.mark.parametrize(
    "event, action, cio_action",
    [
        ("Application Opened", "createUpdateDevice", "add_device"),
        ("Device Created or Updated", "createUpdateDevice", "add_device"),
        ("Application Uninstalled", "deleteDevice", "delete_device"),
        ("Device Deleted", "deleteDevice", "delete_device"),
        ("User Deleted", "deletePerson", "delete"),
        ("User Suppressed", "suppressPerson", "suppress"),
        ("User Unsuppressed", "unsuppressPerson", "unsuppress"),
    ],
)
def test_semantic_person_events(event, action, cio_action):
    m, op = only_op({**DEVICE, "event": event})
    assert m.action == action
    assert op["action"] == cio_action and op["identifiers"] == {"id": "u1"}


def test_every_semantic_event_has_an_action_and_no_event_falls_to_track_event():
    for event, action in SEMANTIC_EVENTS.items():
        assert action in ACTIONS
        assert map_message({"type": "track", "userId": "u", "event": event}).action == action


def test_group_creates_object_related_to_person():
    m, op = only_op(
        {
            "type": "group",
            "userId": "u1",
            "groupId": "acme",
            "traits": {
                "objectTypeId": "2",
                "objectAttributes": {"name": "Acme"},
                "relationshipAttributes": {"role": "owner"},
            },
        }
    )
    assert m.action == "createUpdateObject"
    assert op == {
        "type": "object",
        "action": "identify",
        "identifiers": {"object_id": "acme", "object_type_id": "2"},
        "attributes": {"name": "Acme"},
        "cio_relationships": [{"identifiers": {"id": "u1"}, "relationship_attributes": {"role": "owner"}}],
    }


def test_anonymous_group_is_identify_anonymous():
    _, op = only_op({"type": "group", "anonymousId": "a1", "groupId": "acme"})
    assert op["action"] == "identify_anonymous"
    assert op["cio_relationships"] == [{"identifiers": {"anonymous_id": "a1"}}]
    assert op["identifiers"] == {"object_id": "acme", "object_type_id": "1"}


def test_object_and_relationship_deletes():
    _, op = only_op({"type": "track", "userId": "u1", "event": "Object Deleted", "properties": {"objectId": "acme"}})
    assert op == {"type": "object", "action": "delete", "identifiers": {"object_id": "acme", "object_type_id": "1"}}
    _, op = only_op(
        {
            "type": "track",
            "userId": "u1",
            "event": "Relationship Deleted",
            "properties": {"objectId": "acme", "objectTypeId": "4"},
        }
    )
    assert op["action"] == "delete_relationships"
    assert op["cio_relationships"] == [{"identifiers": {"id": "u1"}}]
    assert op["identifiers"] == {"object_id": "acme", "object_type_id": "4"}


def test_alias_is_merge_people_without_root_identifiers():
    m, op = only_op({"type": "alias", "userId": "u1", "previousId": "old@example.com"})
    assert m.action == "mergePeople"
    assert op == {
        "type": "person",
        "action": "merge",
        "primary": {"id": "u1"},
        "secondary": {"email": "old@example.com"},
    }


def test_report_delivery_event_goes_to_v1_metrics():
    m = map_message(
        {
            "type": "track",
            "userId": "u",
            "event": "Report Delivery Event",
            "timestamp": TS,
            "properties": {"deliveryId": "d1", "metric": "opened", "actionName": "cta"},
        }
    )
    assert m.ok and m.endpoint == V1_METRICS
    assert m.operations == [
        {"delivery_id": "d1", "metric": "opened", "timestamp": TS_UNIX, "metadata": {"action_name": "cta"}}
    ]
    bad = map_message(
        {
            "type": "track",
            "userId": "u",
            "event": "Report Delivery Event",
            "properties": {"deliveryId": "d1", "metric": "read"},
        }
    )
    assert bad.drop_reason.startswith("MESSAGE_REJECTED: reportDeliveryEvent requires properties.metric")


def test_report_content_event_uses_action_type_and_anonymous_id():
    m, op = only_op(
        {
            "type": "track",
            "anonymousId": "a1",
            "event": "Report Content Event",
            "properties": {"actionType": "viewed_content", "contentId": 7},
        }
    )
    assert (op["action"], op["name"], op["identifiers"]) == ("viewed_content", "viewed_content", {"anonymous_id": "a1"})


def test_unknown_type_has_no_matching_mapping():
    m = map_message({"type": "flush", "userId": "u"})
    assert m.action is None
    assert m.drop_reason.startswith("NO_MATCHING_MAPPING: no subscription matches type 'flush'")


def test_digit_and_millisecond_timestamps_pass_through_like_the_destination():
    _, op = only_op({"type": "track", "userId": "u", "event": "E", "timestamp": "1714564800"})
    assert op["timestamp"] == "1714564800"


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
MESSAGES = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["identify", "track", "page", "screen", "group", "alias", "x"]),
        "userId": JSONISH,
        "anonymousId": JSONISH,
        "event": st.sampled_from(list(SEMANTIC_EVENTS) + ["E", ""]),
        "properties": JSONISH,
        "traits": JSONISH,
        "context": JSONISH,
        "timestamp": JSONISH,
        "groupId": JSONISH,
        "previousId": JSONISH,
        "name": JSONISH,
        "messageId": JSONISH,
    },
)


@settings(max_examples=300, deadline=None)
@given(MESSAGES)
def test_map_message_never_raises_and_ok_means_operations(msg):
    m = map_message(msg)
    assert m.ok == (m.drop_reason is None)
    assert bool(m.operations) == m.ok
    if m.drop_reason:
        # CUSTOMERIO_400: an operation Customer.io rejects (cdpio_cli/limits.py).
        assert m.drop_reason.split(":")[0] in ("MESSAGE_REJECTED", "NO_MATCHING_MAPPING", "CUSTOMERIO_400")


def test_an_empty_parenthesis_in_a_trigger_is_a_parse_error_not_a_crash():
    from cdpio_cli.mapping import parse_trigger, trigger_matches

    trigger = 'type = "track" and ()'
    assert parse_trigger(trigger) == {"error": "a parenthesis holds no condition"}
    assert trigger_matches(trigger, {"type": "track", "event": "A", "userId": "u1"}) is False

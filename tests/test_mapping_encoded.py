"""mapping/encoded.py writes the bytes the one mapping would.

`encoded_operation` builds the common message's Track v2 operation straight
from its fields; whenever it answers, its bytes must be `messages.encode` of
the one operation `map_message(msg, check_limits=False)` gives (key order
included: JSON object order reaches the wire), and the mapping must give
exactly that one v2 operation.  The strategy mixes the common shapes with
every departure the quick path must leave to the mapping.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cdpio_cli import mapping, messages
from cdpio_cli.mapping.encoded import encoded_operation
from cdpio_cli.routes.customerio import CustomerioRoute

_DATES = st.sampled_from(
    [
        "2024-03-01T10:00:00.000Z",
        "2024-03-01T10:00:00Z",
        "2024-03-01T10:00:00.123456Z",
        "2024-03-01T10:00:00+02:00",
        "2024-03-01T10:00:00",  # no zone
        "2024-03-01",
        "1969-12-31T23:59:59.500Z",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00.000Z",
        "2024-03-01 10:00:00Z",
        "1714564800",
        "",
    ]
)
_TEXT = st.sampled_from(["user-1100@example.com", "2024-x3-01 not a date", "abcd-efgh-ij", "a@b.co", "cio_1", "x"])
_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6) | _DATES | _TEXT
_KEYS = st.sampled_from(
    [
        "email",
        "url",
        "createdAt",
        "created_at",
        "objectId",
        "object_type_id",
        "objectTypeId",
        "relationshipAttributes",
        "anonymous_id",
        "plan",
        "value",
    ]
) | st.text(max_size=4)
_VALUES = st.recursive(
    _LEAF, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_KEYS, inner, max_size=3), max_leaves=6
)
_OBJECT = st.dictionaries(_KEYS, _LEAF | st.integers(min_value=2**64, max_value=2**66), max_size=5) | st.dictionaries(
    _KEYS, _VALUES, max_size=4
)
_PLAIN_LEAF = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=6) | _TEXT
_PLAIN = st.dictionaries(
    st.sampled_from(["email", "plan", "value", "anonymous_id", "objectId", "createdAt"]) | st.text(max_size=4),
    _PLAIN_LEAF,
)
_FIELDS = ["type", "userId", "anonymousId", "event", "properties", "traits", "timestamp", "messageId", "name"]
# A common message (the quick path's shapes), then up to two fields changed
# to anything (every departure the quick path must leave to the mapping) or
# removed, so both outcomes are frequent.
_COMMON_MESSAGES = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["track", "page", "identify"]),
        "userId": st.sampled_from(["user-1", "u", "a@b.co", "cio_9"]) | st.text(min_size=1, max_size=5),
        "event": st.sampled_from(["Order Completed", "E", "Report Delivery Event", "User Deleted", "2024-03-01"]),
        "properties": st.builds(
            lambda url, rest: {**rest, "url": url},
            st.sampled_from(["https://example.com/a", "/b", "2024-03-01T10:00:00Z", ""]),
            _PLAIN,
        ),
        "traits": _PLAIN,
        "timestamp": _DATES,
        "messageId": st.sampled_from(["m-1", "bench-1-00000001", "2024-03-01T10:00:00Z", ""]),
    },
    optional={"anonymousId": st.sampled_from(["anon-1", ""]) | _LEAF, "name": _LEAF},
)
_MESSAGES = st.builds(
    lambda msg, changed, removed: {k: v for k, v in {**msg, **changed}.items() if k not in removed},
    _COMMON_MESSAGES,
    st.dictionaries(st.sampled_from(_FIELDS), _VALUES | _OBJECT | _DATES, max_size=2),
    st.sets(st.sampled_from(_FIELDS), max_size=1),
)


def _check(msg: dict[str, Any]) -> bool:
    fast = encoded_operation(msg)
    if fast is None:
        return False
    mapped = mapping.map_message(msg, check_limits=False)
    assert mapped.drop_reason is None and mapped.endpoint == mapping.V2
    assert len(mapped.operations) == 1
    assert fast == messages.encode(mapped.operations[0])
    return True


@settings(max_examples=3000, deadline=None)
@given(_MESSAGES)
def test_the_quick_operation_is_the_mappings_bytes(msg):
    _check(msg)


_COMMON = [
    {
        "type": "track",
        "userId": "user-3193",
        "event": "Order Completed",
        "properties": {"value": 76.23, "currency": "USD", "coupon": None, "order_id": "o-6"},
        "timestamp": "2024-03-01T00:00:06.000Z",
        "context": {"ip": "10.0.6.6"},
        "messageId": "m-6",
    },
    {"type": "track", "userId": "u1", "event": "Signed Up", "timestamp": "2024-03-01T00:00:06Z", "messageId": "m"},
    {
        "type": "track",
        "userId": "u1",
        "anonymousId": "a1",
        "event": "Signed Up",
        "properties": {},
        "timestamp": "2024-03-01T00:00:06+02:00",
        "messageId": "m",
    },
    {
        "type": "page",
        "userId": "user-768",
        "name": "Pricing",
        "properties": {"url": "https://example.com/pricing", "path": "/pricing"},
        "timestamp": "2024-03-01T00:00:03.000Z",
        "messageId": "m-3",
    },
    {
        "type": "identify",
        "userId": "user-1100",
        "traits": {"email": "user-1100@example.com", "seats": 49, "is_trial": False},
        "timestamp": "2024-03-01T00:00:00.000Z",
        "messageId": "m-0",
    },
    {
        "type": "identify",
        "userId": "user-1",
        "anonymousId": "a1",
        "traits": {"anonymous_id": "old", "plan": "pro"},
        "timestamp": "1969-12-31T23:59:59.500Z",
    },
]


# Departures the quick path must leave to the mapping, each next to a common message.
_LEFT = [
    # The mapping adds attributes after the timestamp when there are no properties.
    {"type": "track", "userId": "u", "event": "E", "anonymousId": "a", "timestamp": "2024-03-01T10:00:00Z"},
    {"type": "track", "userId": "u", "event": "2024-03-01T10:00:00Z", "timestamp": "2024-03-01T10:00:00Z"},
    {"type": "identify", "userId": "u", "traits": {"objectId": "g1"}, "timestamp": "2024-03-01T10:00:00Z"},
    {"type": "identify", "userId": "u", "traits": {"createdAt": "x"}, "timestamp": "2024-03-01T10:00:00Z"},
    {"type": "track", "userId": "u", "event": "E", "properties": {"at": "2024-03-01"}, "timestamp": "2024-03-01"},
]


def test_departures_are_left_to_the_mapping():
    for msg in _LEFT:
        for variant in (msg, {**msg, "messageId": "m"}):
            assert encoded_operation(variant) is None or _check(variant)


def test_a_timestamp_without_a_zone_is_left_to_the_mapping(monkeypatch):
    # The mapping reads it as UTC; datetime.timestamp() would read it in the local zone.
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        msg = {"type": "track", "userId": "u", "event": "E", "timestamp": "2024-03-01T10:00:00", "messageId": "m"}
        assert encoded_operation(msg) is None
        _check({**msg, "timestamp": "2024-03-01T10:00:00Z"})
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_common_messages_take_the_quick_path():
    for msg in _COMMON:
        assert _check(msg), msg


def test_prepare_gives_the_mappings_items_either_way():
    route = CustomerioRoute("http://127.0.0.1:1", "site", "key")
    for msg in [*_COMMON, {"type": "track", "userId": "a@b.co", "event": "E", "timestamp": "2024-03-01"}]:
        expected = [messages.encode(op) for op in mapping.map_message(msg, check_limits=False).operations]
        prepared = route.prepare(msg)
        assert prepared.items == expected and prepared.lane == "batch" and prepared.problem is None


def test_an_operation_over_the_limit_is_left_to_the_mapping():
    route = CustomerioRoute("http://127.0.0.1:1", "site", "key")
    msg = dict(_COMMON[0], properties={"blob": "x" * 40_000})
    assert encoded_operation(msg) is not None
    prepared = route.prepare(msg)
    assert prepared.items == [] and prepared.problem is not None and "32,768" in prepared.problem

"""The one spec validator: rule ids, ingest drop codes, timestamps."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpio_cli import messages
from cdpio_cli.messages import MAX_MESSAGE_BYTES, ingest_drop_reason, parse_timestamp, spec_problems, to_unix_seconds


def rules(msg):
    return [p.rule for p in spec_problems(msg)]


def test_spec_rules_lists_every_rule_the_validator_can_return():
    source = Path(messages.__file__).read_text()
    listing = source[source.index("SPEC_RULES = (") :]
    listing = listing[: listing.index(")\n")]
    used = set(re.findall(r'"(spec/[a-z-]+)"', source.replace(listing, "")))
    assert len(used) > 10
    assert used == set(messages.SPEC_RULES)


@pytest.mark.parametrize(
    "msg, rule, code",
    [
        ({"type": "track", "event": "Signed Up"}, "spec/no-identity", "no_user_anon_id"),
        ({"type": "track", "userId": "u1"}, "spec/track-without-event", "event_not_defined"),
        ({"type": "track", "userId": "u1", "event": 5}, "spec/event-not-string", "event_not_string"),
        ({"type": "identify", "userId": "u1", "traits": "x"}, "spec/traits-not-object", "traits_not_object"),
        (
            {"type": "track", "userId": "u1", "event": "A B", "properties": []},
            "spec/properties-not-object",
            "properties_not_object",
        ),
        ({"type": "group", "userId": "u1"}, "spec/group-without-group-id", "id_required"),
        ({"userId": "u1"}, "spec/missing-type", "bad_request"),
    ],
)
def test_problems_and_segment_ingest_codes(msg, rule, code):
    assert rule in rules(msg)
    assert ingest_drop_reason(msg) == code


def test_a_valid_message_has_no_problems():
    msg = {
        "type": "track",
        "userId": "u1",
        "event": "Signed Up",
        "properties": {"plan": "Pro"},
        "timestamp": "2026-11-29T10:00:00.123Z",
        "messageId": "m-1",
    }
    assert spec_problems(msg) == [] and ingest_drop_reason(msg) is None


def test_limits():
    big = {"type": "track", "userId": "u1", "event": "Big", "properties": {"x": "a" * MAX_MESSAGE_BYTES}}
    assert "spec/message-too-large" in rules(big)
    assert ingest_drop_reason(big) is None  # Segment answers 400, it does not silently drop
    assert "spec/message-id-too-long" in rules({"type": "identify", "userId": "u", "messageId": "m" * 101})


def test_timestamps():
    assert parse_timestamp("2026-11-29T10:00:00Z").year == 2026
    assert parse_timestamp("2026-11-29T10:00:00.123456789+01:00").hour == 10
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp(1732870000) is None
    assert "spec/bad-timestamp" in rules({"type": "identify", "userId": "u", "timestamp": "soon"})
    assert to_unix_seconds("2026-11-29T00:00:00Z") == 1795910400
    assert to_unix_seconds(1795910400000) == 1795910400  # milliseconds folded to seconds


def _exact_encode(msg: Any) -> bytes:
    """encode as it was before its cheap first call: the option, else json."""
    try:
        return orjson.dumps(msg, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(msg, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: orjson refuses them either way
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_KEYS = st.one_of(st.text(max_size=6), st.integers(-3, 3), st.booleans(), st.none(), st.floats(-2, 2))


@settings(max_examples=600, deadline=None)
@given(
    st.dictionaries(
        _KEYS,
        st.recursive(
            _SCALARS,
            lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)),
            max_leaves=12,
        ),
        max_size=5,
    )
)
def test_encode_writes_the_exact_bytes(msg: dict) -> None:
    """encode's cheap call (orjson without OPT_NON_STR_KEYS) writes exactly what
    the option writes, non-str keys included (it refuses those, and the option runs)."""
    assert messages.encode(msg) == _exact_encode(msg)


def test_encode_non_str_keys_and_big_ints() -> None:
    for msg in ({1: "a", "1": "b"}, {"n": 2**70}, {"d": {None: 1, True: [2**64]}}, {"é": "€" * 3}):
        assert messages.encode(msg) == _exact_encode(msg)
        assert messages.message_size(msg) == len(_exact_encode(msg))

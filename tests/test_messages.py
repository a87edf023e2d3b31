"""The one spec validator: rule ids, ingest drop codes, timestamps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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

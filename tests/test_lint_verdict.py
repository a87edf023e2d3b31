"""lint.verdict.is_clean: the shortcut may only say "clean" when the exact verdict
(messages.spec_problems + mapping.map_message with its limit checks) is clean."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdpio_cli import messages
from cdpio_cli.lint.verdict import exact_verdict, is_clean, timestamp_ok


def exact_clean(msg: dict) -> bool:
    dropped, spec, destination = exact_verdict(msg, messages.message_size(msg))
    return not (dropped or spec or destination)


# Strings around every boundary the shortcut reasons about: blank, ISO-like,
# multi-byte, and lengths either side of 25/37/100/150/250/1000 characters.
_LENGTHS = (0, 1, 9, 10, 24, 25, 26, 37, 38, 99, 100, 101, 149, 150, 151, 250, 251, 999, 1000, 1001)
_CHARS = ("a", "é", "€", "😀", " ", "-", "1")


@st.composite
def text(draw: Any) -> str:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.sampled_from(["", " ", "  x ", "2024-05-01", "2024-05-01T12:00:00Z", "1999-13-45", "cio_abc"]))
    if choice == 1:
        return draw(
            st.sampled_from(["a@example.com", "Signed Up", "Application Opened", "User Deleted", "https://x.io"])
        )
    if choice == 2:
        return draw(st.text(max_size=12))
    n = draw(st.sampled_from(_LENGTHS))
    char = draw(st.sampled_from(_CHARS))
    prefix = draw(st.sampled_from(["", " ", "2024-"]))
    return (prefix + char * n)[: max(n, len(prefix))]


def scalar() -> st.SearchStrategy[Any]:
    return st.one_of(
        text(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.booleans(),
        st.none(),
        st.integers(1_000_000_000_000, 4_102_444_800_000),
    )


def values() -> st.SearchStrategy[Any]:
    return st.recursive(
        scalar(),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text(), inner, max_size=4)),
        max_leaves=8,
    )


@st.composite
def big_dict(draw: Any) -> dict:
    base = draw(st.dictionaries(text(), values(), max_size=6))
    extra = draw(st.sampled_from([0, 0, 0, 296, 297, 298, 300]))
    base.update({f"k{i}": i for i in range(extra)})
    if draw(st.booleans()):
        base[draw(st.sampled_from(["url", "createdAt", "created_at", "email", "objectId"]))] = draw(values())
    return base


@st.composite
def message(draw: Any) -> dict:
    """A clean message of a common type, with some fields replaced by edge cases."""
    mtype = draw(st.sampled_from(["track", "page", "identify", "identify", "screen", "group", None]))
    msg: dict[str, Any] = {
        "type": mtype,
        "userId": "user-1",
        "event": "Signed Up",
        "properties": {"url": "https://example.com/", "plan": "pro"},
        "traits": {"email": "a@example.com", "seats": 3},
        "timestamp": "2026-11-01T10:00:00.000Z",
        "messageId": "m1",
    }
    for key, strategy in (
        ("userId", st.one_of(text(), st.integers(), st.none())),
        ("anonymousId", st.one_of(text(), st.integers(), values())),
        ("event", st.one_of(text(), st.integers(), st.none())),
        ("name", st.one_of(text(), st.integers())),
        ("properties", st.one_of(big_dict(), values())),
        ("traits", st.one_of(big_dict(), values())),
        ("context", st.one_of(st.dictionaries(text(), values(), max_size=3), values())),
        ("timestamp", st.one_of(text(), st.integers(), st.none())),
        ("sentAt", st.one_of(text(), st.just("2026-11-01T10:00:00Z"))),
        ("messageId", st.one_of(text(), st.integers(), st.none())),
    ):
        if draw(st.integers(0, 3)) == 0:
            msg[key] = draw(strategy)
    if draw(st.integers(0, 9)) == 0:
        msg["padding"] = "x" * draw(st.sampled_from([700, 990, 32_000, 33_000]))
    return msg


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message())
def test_fast_clean_implies_exact_clean(msg: dict) -> None:
    if is_clean(msg, messages.message_size(msg)):
        assert exact_clean(msg), msg


@settings(max_examples=500, deadline=None)
@given(
    user=st.text(min_size=1, max_size=30).filter(str.strip),
    event=st.sampled_from(["Signed Up", "Order Completed", "Viewed Pricing"]),
    # objectId in traits relates the person to an object: the shortcut leaves it to the exact path.
    props=st.dictionaries(
        st.text(max_size=20).filter(lambda key: key != "objectId"),
        st.one_of(st.text(max_size=30), st.integers(), st.booleans()),
    ),
)
def test_common_messages_take_the_shortcut(user: str, event: str, props: dict) -> None:
    """The shortcut is not vacuous: ordinary track, page and identify messages are proven clean."""
    ts = "2026-11-01T10:00:00.000Z"
    for msg in (
        {"type": "track", "userId": user, "event": event, "properties": props, "timestamp": ts, "messageId": "m1"},
        {"type": "page", "userId": user, "properties": {**props, "url": "https://example.com/"}, "timestamp": ts},
        {"type": "identify", "userId": user, "anonymousId": "a1", "traits": props, "timestamp": ts},
    ):
        assert is_clean(msg, messages.message_size(msg)) == exact_clean(msg), msg


# timestamp_ok: the canonical forms, each position drawn from characters that
# parse_timestamp's regex or fromisoformat might read differently.
_TS_TEMPLATES = ("2026-11-01T10:00:00.000Z", "2026-11-01T10:00:00Z", "2024-02-29T23:59:59.999Z")
_TS_CHARS = "0123456789-:T.Z,+ tW\u0663\uff12\U0001d7d9\u00b2a\x00"


def _timestamp_equal(value: Any) -> None:
    assert timestamp_ok(value) == (messages.parse_timestamp(value) is not None), value


def test_timestamp_ok_each_position_each_character() -> None:
    for template in _TS_TEMPLATES:
        for i in range(len(template)):
            for char in _TS_CHARS:
                _timestamp_equal(template[:i] + char + template[i + 1 :])
    for value in (
        "2023-02-29T10:00:00.000Z",
        "2026-11-01T24:00:00.000Z",
        "2026-11-01T23:59:60Z",
        "0000-01-01T00:00:00Z",
    ):
        _timestamp_equal(value)
    for value in (None, 3, 1.5, "", "2026-11-01", "2026-11-01T10:00:00.000+00:00", ["2026-11-01T10:00:00Z"]):
        _timestamp_equal(value)


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(_TS_TEMPLATES),
    st.lists(st.tuples(st.integers(0, 23), st.sampled_from(_TS_CHARS)), max_size=4),
    st.text(max_size=3),
)
def test_timestamp_ok_is_parse_timestamp(template: str, changes: list[tuple[int, str]], tail: str) -> None:
    value = list(template)
    for i, char in changes:
        value[i % len(value)] = char
    _timestamp_equal("".join(value))
    _timestamp_equal("".join(value) + tail)
    _timestamp_equal(tail + "".join(value)[len(tail) :])

"""PlanChecker's shortcut: a message valid under its rule's closed schema
(ObjectRule.closed_schema) skips the exact path.  It may only do so when the
exact path (the open schema, the planned keys, the walk for errors) finds
nothing, so `check` must report exactly what the exact path reports."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cdpio_cli.errors import ConfigError
from cdpio_cli.plan import Plan, PlanChecker, parse_plan

NAMES = ("plan_type", "is_trial", "seats", "email", "tags", "address", "created_at")
EXTRA = ("utm_source", "Plan_Type", "")


def outcome(fn: Any, *args: Any) -> Any:
    """The findings `fn` emits (with their details), or the exception it raises."""
    found: list[tuple[Any, ...]] = []
    try:
        fn(*args, lambda *a, **k: found.append((a, sorted(k.items(), key=lambda kv: kv[0]))))
    except Exception as exc:  # both paths must fail alike (e.g. a non-string key)
        return ("raised", type(exc).__name__, str(exc))
    return repr(found)


def exact(checker: PlanChecker, msg: Any) -> Any:
    return outcome(lambda m, f, ln, emit: checker._check(m, f, ln, emit), msg, "f.ndjson", 3)


def checked(checker: PlanChecker, msg: Any) -> Any:
    return outcome(checker.check, msg, "f.ndjson", 3)


# -- property schemas: the keywords a plan uses, at their boundaries ----------
_FORMATS = ("email", "date-time", "date", "uri", "uuid")
_TYPES = ("string", "number", "integer", "boolean", "null", "object", "array")


@st.composite
def property_schema(draw: Any, depth: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    kind = draw(st.integers(0, 3))
    if kind == 0:
        schema["type"] = draw(st.sampled_from(_TYPES))
    elif kind == 1:
        schema["type"] = sorted(set(draw(st.lists(st.sampled_from(_TYPES), min_size=1, max_size=3))))
    if draw(st.booleans()):
        schema["enum"] = draw(
            st.lists(
                st.one_of(st.sampled_from(["pro", "Pro", "free", "1", ""]), st.integers(0, 2), st.booleans()),
                max_size=3,
            )
        )
    if draw(st.integers(0, 5)) == 0:
        schema["const"] = draw(st.sampled_from(["pro", 1, True, None, 1.0]))
    if draw(st.integers(0, 3)) == 0:
        schema["format"] = draw(st.sampled_from(_FORMATS))
    extra = draw(st.integers(0, 8))
    if extra == 0:
        schema["minimum"] = draw(st.sampled_from([0, 1.5, -3]))
    elif extra == 1:
        schema["maxLength"] = draw(st.integers(0, 5))
    elif extra == 2:
        schema["pattern"] = "^[a-z]+$"
    elif extra == 3 and depth == 0:
        schema["items"] = draw(property_schema(depth + 1))
    elif extra == 4 and depth == 0:
        schema["properties"] = {"city": draw(property_schema(depth + 1))}
        schema["required"] = draw(st.sampled_from([[], ["city"]]))
    elif extra == 5 and depth == 0:
        # References into the rule's own schema: "#" is the closed schema there.
        schema["$ref"] = draw(st.sampled_from(["#", "#/properties/plan_type"]))
    if draw(st.integers(0, 4)) == 0:
        schema["description"] = "a note"
    return schema


@st.composite
def plan_data(draw: Any) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    props = {n: draw(property_schema()) for n in names}
    required = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))
    return {
        "events": {"Signed Up": {"properties": props, "required": required}},
        "identify": {"traits": dict(props), "required": list(required)},
        "unplanned_properties": draw(st.sampled_from(["error", "warning", "allow"])),
    }


def parsed(data: dict[str, Any]) -> Plan:
    try:
        return parse_plan(data, "plan.yaml")
    except ConfigError:  # e.g. a $ref to a property the plan does not have
        assume(False)
        raise


def scalar() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(
            [
                "pro",
                "Pro",
                "free",
                "",
                "1",
                "abc",
                "ABC",
                "ada@example.com",
                "not an email",
                "https://x.io/a",
                "2026-11-01T00:00:00Z",
                "2026-11-01",
                "0f8fad5b-d9cb-469f-a165-70867728950e",
                "ab\ud800",
            ]
        ),
        st.text(max_size=6),
        st.integers(-3, 3),
        st.sampled_from([2**63, 2**64, -(2**70), 10**30]),
        st.floats(),  # NaN and infinity included: jsonschema-rs sees them as null
        st.sampled_from([0.0, 1.0, -0.0, 1.5, 3.0]),
        st.booleans(),
        st.none(),
    )


def values() -> st.SearchStrategy[Any]:
    return st.recursive(
        scalar(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(["city", "zip", "x"]), inner, max_size=3),
        ),
        max_leaves=5,
    )


def an_object() -> st.SearchStrategy[Any]:
    keys = st.sampled_from(NAMES + EXTRA)
    return st.one_of(
        st.dictionaries(keys, values(), max_size=6),
        st.just(None),
        st.dictionaries(st.one_of(keys, st.integers(0, 2)), values(), max_size=3),  # non-string keys
        st.sampled_from(["text", 3, [1]]),
    )


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_shortcut_reports_exactly_what_the_exact_path_reports(data: Any) -> None:
    plan = parsed(data.draw(plan_data()))
    checker = PlanChecker(plan)
    field, kind = data.draw(st.sampled_from([("properties", "track"), ("traits", "identify")]))
    msg: dict[str, Any] = {"type": kind, "userId": "u1"}
    if kind == "track":
        msg["event"] = data.draw(st.sampled_from(["Signed Up", "Signed up", 5]))
    obj = data.draw(an_object())
    if not (obj is None and data.draw(st.booleans())):
        msg[field] = obj
    assert checked(checker, msg) == exact(checker, msg)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_data(), st.dictionaries(st.sampled_from(NAMES + EXTRA), values(), max_size=6))
def test_closed_schema_accepts_only_what_has_nothing_to_report(data: dict[str, Any], obj: dict[str, Any]) -> None:
    plan = parsed(data)
    for rule in [*(plan.events or {}).values(), *plan.sections.values()]:
        try:
            conforms = rule.compile_closed().is_valid(obj)
        except ValueError:
            continue
        if conforms:
            assert rule.compiled().is_valid(obj)
            assert rule.known.issuperset(obj)


def test_ordinary_messages_take_the_shortcut() -> None:
    """Not vacuous: a conforming message never reaches the exact path."""
    plan = parse_plan(
        {
            "events": {
                "Order Completed": {
                    "properties": {
                        "revenue": {"type": "number", "minimum": 0},
                        "currency": {"type": "string", "enum": ["USD", "EUR"]},
                        "products": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["revenue"],
                }
            },
            "identify": {"traits": {"email": {"type": "string", "format": "email"}}, "required": ["email"]},
        },
        "plan.yaml",
    )
    checker = PlanChecker(plan)
    reached: list[Any] = []
    checker.check_exact = lambda *a: reached.append(a)  # type: ignore[method-assign]
    for msg in (
        {"type": "track", "event": "Order Completed", "properties": {"revenue": 9.5, "currency": "EUR"}},
        {"type": "track", "event": "Order Completed", "properties": {"revenue": 0, "products": [{"sku": "a"}]}},
        {"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com"}},
        {"type": "page", "properties": {"url": "/"}},  # not planned: nothing to check
    ):
        checker.check(msg, "f", 1, lambda *a, **k: None)
    assert reached == []
    for msg in (
        {"type": "track", "event": "Order Completed", "properties": {"revenue": -1}},
        {"type": "track", "event": "Order Completed", "properties": {"revenue": 1, "coupon": "X"}},
        {"type": "track", "event": "Order Completed", "properties": {"revenue": float("nan")}},
        {"type": "identify", "userId": "u1", "traits": {"email": "ada"}},
        {"type": "identify", "userId": "u1"},
    ):
        checker.check(msg, "f", 1, lambda *a, **k: None)
    assert len(reached) == 5


@pytest.mark.parametrize("unplanned", ["error", "allow"])
def test_a_non_string_key_is_judged_as_the_exact_path_judges_it(unplanned: str) -> None:
    plan = parse_plan(
        {"events": {"A B": {"properties": {"x": {"type": "object"}}}}, "unplanned_properties": unplanned}, "plan.yaml"
    )
    checker = PlanChecker(plan)
    for props in ({1: 2}, {"x": {1: 2}}, {"x": {1: 2}, 3: 4}):
        msg = {"type": "track", "event": "A B", "properties": props}
        assert checked(checker, msg) == exact(checker, msg)
    # Judged as sent (the key is "1" on the wire), not an exception.
    found = checked(checker, {"type": "track", "event": "A B", "properties": {1: 2}})
    assert found[0] != "raised"
    assert ("'key', '1'" in found) == (unplanned == "error"), found

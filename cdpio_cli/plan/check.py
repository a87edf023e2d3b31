"""Checking messages against a plan (`cdpio lint --plan`, explain, send-test).

Speed: per event, one call of a compiled validator (jsonschema-rs, picked by
benchmarks/plan_validators.py) proves the common case, a message with nothing
to report: the rule's schema closed to unplanned keys (ObjectRule.closed_schema;
one call costs less than the open schema's, and the planned-keys test is then
not needed).  Only a message it rejects takes the exact path: the open schema,
the planned keys, and for an invalid message a walk for its individual errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from cdpio_cli.messages import encode, show_value
from cdpio_cli.plan.model import SECTIONS, ObjectRule, Plan

if TYPE_CHECKING:
    from cdpio_cli.lint.rules import Severities
    from cdpio_cli.results import Check

# (id, default severity, summary, hint): lint.py registers these in its RULES
# table, so `lint.disable` and `lint.severity` treat them like every other rule.
PLAN_RULES = (
    (
        "plan/unplanned-event",
        "error",
        "a track event the tracking plan does not list",
        "add the event to the plan, or fix its name (the plan's unplanned_events sets the default)",
    ),
    (
        "plan/unplanned-property",
        "warning",
        "a property or trait the tracking plan does not list",
        "add it to the plan or stop sending it (the plan's unplanned_properties sets the default)",
    ),
    (
        "plan/missing-required",
        "error",
        "a property or trait the tracking plan requires is missing",
        "send it on every message of that kind",
    ),
    (
        "plan/wrong-type",
        "error",
        "a property or trait of another type than the tracking plan's",
        'send the planned type (true, not "true"; 30, not "30")',
    ),
    (
        "plan/not-in-enum",
        "error",
        "a value the tracking plan's enum does not allow",
        "send one of the planned values (they are case-sensitive)",
    ),
    (
        "plan/format",
        "error",
        "a string not in the tracking plan's format (email, date-time, uri...)",
        "send the value in the planned format",
    ),
    (
        "plan/constraint",
        "error",
        "a value outside another JSON Schema rule of the plan (minimum, pattern, maxLength...)",
        "send a value inside the planned limits",
    ),
)
UNPLANNED_EVENT, UNPLANNED_PROPERTY = "plan/unplanned-event", "plan/unplanned-property"

# JSON Schema keyword -> rule id (anything else is plan/constraint).
_KEYWORD_RULE = {
    "required": "plan/missing-required",
    "type": "plan/wrong-type",
    "enum": "plan/not-in-enum",
    "const": "plan/not-in-enum",
    "format": "plan/format",
}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def schema_at(schema: dict, schema_path: list) -> Any:
    node: Any = schema
    for part in schema_path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def expected_text(keyword: str, spec: Any) -> str:
    if keyword == "type":
        return " or ".join(spec) if isinstance(spec, list) else str(spec)
    if keyword == "enum":
        return "one of " + ", ".join(show_value(v) for v in (spec or []))
    if keyword == "const":
        return show_value(spec)
    if keyword == "format":
        return f"in {spec} format"
    return f"{keyword} {show_value(spec)}"


Emit = Callable[..., None]
# [message field, a test of that field that is True only when the exact path
# finds nothing, the rule]: a list, so that the test compiles on first use
_Entry = list[Any]


def _never(obj: dict) -> bool:
    return False


class PlanChecker:
    """Checks messages against a Plan; findings go to `emit(rule, message,
    file, line, default=severity, **details)` (lint.Linter.emit)."""

    def __init__(self, plan: Plan, enabled: Callable[[str, str], bool] = lambda rule, default: True):
        self.plan = plan
        self.unplanned_event = plan.unplanned_events if plan.unplanned_events != "allow" else None
        self.unplanned_property = plan.unplanned_properties if plan.unplanned_properties != "allow" else None
        # `enabled(rule, default)`: off by lint.disable / lint.severity?
        if self.unplanned_event and not enabled(UNPLANNED_EVENT, self.unplanned_event):
            self.unplanned_event = None
        if self.unplanned_property and not enabled(UNPLANNED_PROPERTY, self.unplanned_property):
            self.unplanned_property = None
        self._hints: dict[str, str | None] = {}
        # The hot path: one dict lookup per message to its entry.
        self._events: dict[str, _Entry] | None = None
        if plan.events is not None:
            self._events = {name: self._entry(rule) for name, rule in plan.events.items()}
        self._track: dict[str, _Entry] = self._events or {}
        self._sections: dict[str, _Entry] = {
            SECTIONS[section][0]: self._entry(rule) for section, rule in plan.sections.items()
        }

    def _entry(self, rule: ObjectRule) -> _Entry:
        entry: _Entry = [rule.field, None, rule]

        def first_use(obj: dict) -> bool:
            # Compiled when the first message of its kind arrives: a plan of many
            # events costs nothing at start-up for the ones a file does not send.
            entry[1] = conforms = self._conformance(rule)
            return conforms(obj)

        entry[1] = first_use
        return entry

    def _conformance(self, rule: ObjectRule) -> Callable[[dict], bool]:
        # With unplanned properties reported, valid under the closed schema = nothing
        # to report; without, valid under the rule's own schema is.
        try:
            validator = rule.compile_closed() if self.unplanned_property else rule.compiled()
        except Exception:  # a schema that compiles only open ($ref to its root...): the exact path decides
            return _never
        is_valid: Callable[[dict], bool] = validator.is_valid
        return is_valid

    def check(self, msg: Any, file: str | None, line: int | None, emit: Emit) -> None:
        # The common case in as few steps as possible: a planned message that
        # conforms.  Anything else (and any KeyError or TypeError on the way: no
        # type, an unhashable event...) goes to `_check`, which decides exactly.
        if type(msg) is dict:
            try:
                mtype = msg["type"]
                if mtype == "track":
                    entry = self._track.get(msg["event"])
                else:
                    entry = self._sections.get(mtype)
                    if entry is None:
                        return  # not a kind of message the plan describes
                if entry is not None:
                    obj = msg.get(entry[0])
                    if type(obj) is dict and entry[1](obj):
                        return  # nothing to report (tests/test_plan_fast.py holds it to the exact path)
            except (KeyError, TypeError, ValueError):  # ValueError: a key that is not a string
                pass
        self._check(msg, file, line, emit)

    def _check(self, msg: Any, file: str | None, line: int | None, emit: Emit) -> None:
        if type(msg) is not dict:
            return
        mtype = msg.get("type")
        if mtype == "track":
            if self._events is None:
                return  # the plan does not list events
            event = msg.get("event")
            entry = self._events.get(event) if isinstance(event, str) else None
            if entry is None:
                if self.unplanned_event and isinstance(event, str) and event:
                    self._unplanned_event(event, file, line, emit)
                return
        else:
            entry = self._sections.get(mtype) if isinstance(mtype, str) else None
            if entry is None:
                return
        self.check_exact(entry[2], msg.get(entry[0]), file, line, emit)

    def check_exact(self, rule: ObjectRule, obj: Any, file: str | None, line: int | None, emit: Emit) -> None:
        """The exact path for one message's properties or traits (`obj`) under `rule`."""
        if obj is None:
            obj = {}
        elif type(obj) is not dict:
            return  # spec/* rules report a non-object properties/traits
        if _has_key_not_str(obj):
            # YAML allows keys that are not strings; the validator refuses them.  The
            # object is judged as it goes on the wire, where every key is a string.
            obj = json.loads(encode(obj))
        if not rule.compiled().is_valid(obj):
            self._errors(rule, obj, file, line, emit)
        if self.unplanned_property and not rule.known.issuperset(obj):
            self._unplanned_properties(rule, obj, file, line, emit)

    def _unplanned_event(self, event: str, file: str | None, line: int | None, emit: Emit) -> None:
        emit(
            UNPLANNED_EVENT,
            f'event "{event}" is not in the tracking plan (it lists {len(self.plan.events or {})} event(s))',
            file,
            line,
            default=self.unplanned_event,
            hint=self._closest(event),
            event=event,
            expected="an event listed under events:",
            actual=event,
        )

    def _unplanned_properties(
        self, rule: ObjectRule, obj: dict, file: str | None, line: int | None, emit: Emit
    ) -> None:
        noun = "property" if rule.field == "properties" else "trait"
        for key in obj:
            if key not in rule.known:
                emit(
                    UNPLANNED_PROPERTY,
                    f"{rule.where}: {noun} {key!r} is not in the tracking plan "
                    f"(the message had {show_value(obj[key])})",
                    file,
                    line,
                    default=self.unplanned_property,
                    scope=rule.where,
                    key=key,
                    expected=f"one of the planned {rule.field}",
                    actual=obj[key],
                )

    def _closest(self, event: str) -> str | None:
        """`did you mean "Order Completed"?` for a misspelt event (cached per name)."""
        cache = self._hints
        if event not in cache:
            import difflib

            names = list(self.plan.events or {})
            folded = {n.casefold(): n for n in names}
            match = folded.get(event.casefold()) or next(
                iter(difflib.get_close_matches(event, names, n=1, cutoff=0.75)), None
            )
            cache[event] = (
                (f'did you mean "{match}"? Otherwise add the event to the plan' if match else None)
                if len(cache) < 10_000
                else None
            )
        return cache[event]

    def _errors(self, rule: ObjectRule, obj: dict[str, Any], file: str | None, line: int | None, emit: Emit) -> None:
        schema = rule.schema()
        noun = "property" if rule.field == "properties" else "trait"
        errors = list(rule.errors(obj))
        # A value of the wrong type also misses its enum or format: report the type only.
        wrong_type = {tuple(e.instance_path) for e in errors if e.schema_path and e.schema_path[-1] == "type"}
        for err in errors:
            if wrong_type and tuple(err.instance_path) in wrong_type and err.schema_path[-1] != "type":
                continue
            schema_path = list(err.schema_path)
            keyword = str(schema_path[-1]) if schema_path else ""
            rule_id = _KEYWORD_RULE.get(keyword, "plan/constraint")
            if keyword == "required":
                missing = err.message.split('"')[1] if '"' in err.message else err.message
                emit(
                    rule_id,
                    f"{rule.where}: required {noun} {missing!r} is missing (the plan requires "
                    f"{', '.join(rule.required)})",
                    file,
                    line,
                    scope=rule.where,
                    key=missing,
                    expected="present",
                    actual=None,
                )
                continue
            key = ".".join(str(p) for p in err.instance_path)
            spec = schema_at(schema, schema_path)
            actual = err.instance
            expected = expected_text(keyword, spec)
            emit(
                rule_id,
                f"{rule.where}: {noun} {key!r} should be {expected}; the message had "
                f"{json_type(actual)} {show_value(actual)}",
                file,
                line,
                scope=rule.where,
                key=key,
                expected=expected,
                actual=actual,
            )

    def findings(self, msg: Any) -> list[tuple[str, str, str]]:
        """(rule, severity, message) for one message: explain and send-test."""
        out: list[tuple[str, str, str]] = []
        severities = {r[0]: r[1] for r in PLAN_RULES}

        def collect(
            rule: str,
            message: str,
            file: str | None,
            line: int | None,
            *,
            default: str | None = None,
            hint: str | None = None,
            **_details: object,
        ) -> None:
            out.append((rule, default or severities.get(rule, "error"), message))

        self.check(msg, None, None, collect)
        return out


def send_test_checks(
    tracking_plan: Plan,
    items: Iterable[tuple[str, dict[str, Any]]],
    *,
    ignore_keys: Iterable[str] = (),
    severities: Severities | None = None,
) -> list[Check]:
    """results.Checks at the `format` tier for send-test's messages ((label,
    message) pairs): an error-level violation fails before anything is sent.
    `ignore_keys` are keys cdpio itself adds (the run-id tag); `severities` (a
    lint.Severities from lint.disable / lint.severity) re-grades as lint does."""
    from cdpio_cli import results

    checker = PlanChecker(tracking_plan)
    out = []
    for label, msg in items:
        msg = dict(msg)
        for fld in ("traits", "properties"):
            if isinstance(msg.get(fld), dict):
                msg[fld] = {k: v for k, v in msg[fld].items() if k not in ignore_keys}
        for rule, severity, message in checker.findings(msg):
            if severities is not None:
                severity = severities.of(rule, severity)
            if severity not in ("error", "warning"):
                continue  # off, or info: nothing to stop or warn about
            out.append(
                results.Check(
                    id=f"plan.{label.replace(chr(34), '')}",
                    route="send-test",
                    tier=results.Tier.FORMAT,
                    status=results.Status.FAILED if severity == "error" else results.Status.WARNING,
                    message=f"{label} does not follow the tracking plan: {message}",
                    file=tracking_plan.path,
                    hint="change send_test.traits / send_test.events, or the plan; nothing was sent",
                    details={"rule": rule, "severity": severity},
                )
            )
    return out


def _has_key_not_str(value: Any) -> bool:
    if type(value) is dict:
        return any(type(k) is not str or _has_key_not_str(v) for k, v in value.items())
    if type(value) is list:
        return any(_has_key_not_str(v) for v in value)
    return False

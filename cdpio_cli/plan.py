"""Tracking plans: a contract for event data, checked offline (docs/tracking-plans.md).

A plan says which track events exist and, per event (and for identify, page,
screen and group), which properties or traits they carry.  Each property rule
is a JSON Schema, so schemas from Segment Protocols or a JSON Schema file carry
over.  This module

- loads a plan file, with every error naming the file and line (exit 2);
- checks messages against it for `cdpio lint --plan` (rules `plan/*`, graded by
  the same `lint.disable` / `lint.severity` settings as every other rule);
- infers a plan from observed messages (`cdpio plan infer`);
- diffs two plans (`cdpio plan diff`);
- converts a Segment Protocols tracking plan fetched through the Segment Public
  API (`cdpio plan pull`).

Speed: one compiled validator per event (jsonschema-rs, picked by
benchmarks/plan_validators.py) answers "valid?" for the common case; only an
invalid message is walked again for its individual errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdpio_cli.errors import ConfigError, UsageError
from cdpio_cli.messages import show_value

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

UNPLANNED_LEVELS = ("error", "warning", "allow")
# Plan section -> (message type, the message field it describes).
SECTIONS = {
    "identify": ("identify", "traits"),
    "page": ("page", "properties"),
    "screen": ("screen", "properties"),
    "group": ("group", "traits"),
}
TOP_KEYS = ("name", "description", "events", *SECTIONS, "unplanned_events", "unplanned_properties")
RULE_KEYS = {"properties", "traits", "required", "description"}
MAX_PLAN_BYTES = 8 * 1024 * 1024


# ---------------------------------------------------------------------------
# Reading a plan file (every value keeps its line)
# ---------------------------------------------------------------------------


def _compose(path: Path) -> tuple[Any, dict[tuple, int]]:
    """(plain data, key path -> line) from a YAML (or JSON) file."""
    import yaml

    display = str(path)
    try:
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise ConfigError(
                f"the plan is {path.stat().st_size:,} bytes; the limit is {MAX_PLAN_BYTES:,}", file=display
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"tracking plan {display} does not exist",
            hint="write one, or start from `cdpio plan infer FILE... -o tracking-plan.yaml`",
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"tracking plan {display} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read tracking plan {display}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "the plan is not valid UTF-8", file=display, hint="save it as UTF-8", line=raw[: exc.start].count(b"\n") + 1
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.context_mark or exc.problem_mark
        problem = (exc.problem or "invalid YAML").strip()
        if exc.context:
            problem = f"{exc.context.strip()}: {problem}"
        raise ConfigError(
            f"invalid YAML: {problem}",
            file=display,
            line=mark.line + 1 if mark else None,
            hint="check the indentation and quoting on that line",
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=display) from None
    if node is None:
        raise ConfigError(
            "the tracking plan is empty",
            file=display,
            hint="list events: (and identify:, page:...) as in docs/tracking-plans.md",
        )
    lines: dict[tuple, int] = {}
    constructor = yaml.SafeLoader("")

    def build(n, path: tuple):
        lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            out = {}
            for k, v in n.value:
                key = constructor.construct_object(k, deep=True)
                if not isinstance(key, (str, int, float, bool)):
                    raise ConfigError("a mapping key must be a plain word", file=display, line=k.start_mark.line + 1)
                key = str(key)
                if key in out:
                    raise ConfigError(
                        f"key {key!r} appears twice", file=display, line=k.start_mark.line + 1, hint="keep one of them"
                    )
                out[key] = build(v, path + (key,))
                lines[path + (key,)] = k.start_mark.line + 1
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, path + (i,)) for i, item in enumerate(n.value)]
        try:
            return constructor.construct_object(n, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise ConfigError(f"invalid value: {exc.problem}", file=display, line=n.start_mark.line + 1) from None

    return build(node, ()), lines


@dataclass
class ObjectRule:
    """What one kind of message carries: property schemas and required keys."""

    where: str  # `event "Signed Up"`, `identify`
    field: str  # properties | traits
    properties: dict[str, Any]
    required: list[str]
    line: int | None = None
    known: frozenset = frozenset()
    _validator: Any = None

    def schema(self) -> dict:
        return {"type": "object", "properties": self.properties, "required": self.required}

    def compile(self) -> None:
        import jsonschema_rs

        self.known = frozenset(self.properties) | frozenset(self.required)
        self._validator = jsonschema_rs.validator_for(self.schema(), validate_formats=True)

    def is_valid(self, obj: dict) -> bool:
        return self._validator.is_valid(obj)

    def errors(self, obj: dict):
        return self._validator.iter_errors(obj)


@dataclass
class Plan:
    path: str | None
    events: dict[str, ObjectRule] | None  # None: the plan does not list events
    sections: dict[str, ObjectRule]  # identify/page/screen/group
    unplanned_events: str = "error"
    unplanned_properties: str = "warning"
    name: str | None = None
    data: dict = field(default_factory=dict)  # the plan as written (for diff and dump)
    lines: dict = field(default_factory=dict)  # key path -> line in the file, e.g. ("identify", "traits", "is_trial")

    def line_of(self, *at) -> int | None:
        return self.lines.get(tuple(at))

    def rule_for(self, msg: dict) -> tuple[ObjectRule | None, bool]:
        """(rule, planned): the rule for a message; planned False for an unplanned track event."""
        mtype = msg.get("type")
        if mtype == "track":
            if self.events is None:
                return None, True
            event = msg.get("event")
            rule = self.events.get(event) if isinstance(event, str) else None
            return rule, rule is not None or not isinstance(event, str) or not event
        return self.sections.get(mtype), True


def _fail(message: str, path: str, lines: dict, at: tuple, hint: str | None = None):
    line = None
    for i in range(len(at), -1, -1):
        line = lines.get(at[:i])
        if line is not None:
            break
    raise ConfigError(message, file=path, line=line, hint=hint)


def _check_schema(schema: Any, path: str, lines: dict, at: tuple) -> None:
    import jsonschema_rs

    where = " > ".join(str(p) for p in at)
    if not isinstance(schema, dict):
        _fail(
            f"{where}: a property rule is a JSON Schema mapping like {{type: string}}, not {type(schema).__name__}",
            path,
            lines,
            at,
        )
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as exc:
        # Point at the offending keyword's line when the error names one.
        sub = tuple(str(p) for p in exc.instance_path)
        first = exc.message.splitlines()[0] if exc.message else "not a valid JSON Schema"
        _fail(
            f"{where}: not a valid JSON Schema: {first}",
            path,
            lines,
            at + sub,
            hint="property rules are JSON Schema (draft 2020-12), e.g. {type: string, enum: [a, b]}",
        )
    except Exception as exc:  # jsonschema-rs raises ValueError on unknown $schema and similar
        _fail(f"{where}: not a valid JSON Schema: {exc}", path, lines, at)


def _object_rule(raw: Any, where: str, fld: str, path: str, lines: dict, at: tuple) -> ObjectRule:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        _fail(f"{where}: expected a mapping with {fld}: and required:", path, lines, at)
    for key in raw:
        if key not in RULE_KEYS or (key in ("properties", "traits") and key != fld):
            _fail(
                f"{where}: unknown key {key!r}",
                path,
                lines,
                at + (key,),
                hint=f"use {fld}:, required: and description:",
            )
    props = raw.get(fld) or {}
    if not isinstance(props, dict):
        _fail(f"{where}: {fld} must be a mapping of name -> JSON Schema", path, lines, at + (fld,))
    for name, schema in props.items():
        _check_schema(schema, path, lines, at + (fld, name))
    required = raw.get("required") or []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        _fail(f"{where}: required must be a list of {fld} names", path, lines, at + ("required",))
    rule = ObjectRule(where, fld, props, list(required), lines.get(at))
    try:
        rule.compile()
    except Exception as exc:  # e.g. a $ref that cannot be resolved
        _fail(f"{where}: the schema does not compile: {exc}", path, lines, at)
    return rule


def parse_plan(data: Any, path: str, lines: dict | None = None) -> Plan:
    """A Plan from plain data; errors are ConfigErrors naming `path` and the line."""
    lines = lines or {}
    if not isinstance(data, dict):
        _fail("a tracking plan is a mapping with events:, identify:, page:...", path, lines, ())
    for key in data:
        if key not in TOP_KEYS:
            import difflib

            close = difflib.get_close_matches(key, TOP_KEYS, n=1)
            _fail(
                f"unknown key {key!r} in the tracking plan",
                path,
                lines,
                (key,),
                hint=f"did you mean {close[0]}?" if close else "the keys are " + ", ".join(TOP_KEYS),
            )
    levels = {}
    for key in ("unplanned_events", "unplanned_properties"):
        value = data.get(key, "error" if key == "unplanned_events" else "warning")
        if value is False:  # YAML reads a bare `off`/`no` as false
            value = "allow"
        if value not in UNPLANNED_LEVELS:
            _fail(f"{key} is {value!r}", path, lines, (key,), hint="use error, warning or allow")
        levels[key] = value
    events = None
    if "events" in data:
        raw_events = data["events"] or {}
        if not isinstance(raw_events, dict):
            _fail("events must be a mapping of event name -> {properties, required}", path, lines, ("events",))
        events = {
            name: _object_rule(rule, f'event "{name}"', "properties", path, lines, ("events", name))
            for name, rule in raw_events.items()
        }
    sections = {}
    for section, (_, fld) in SECTIONS.items():
        if section in data:
            sections[section] = _object_rule(data[section], section, fld, path, lines, (section,))
    name = data.get("name")
    return Plan(
        path,
        events,
        sections,
        levels["unplanned_events"],
        levels["unplanned_properties"],
        str(name) if name is not None else None,
        data,
        lines,
    )


def load_plan(path: str | Path) -> Plan:
    data, lines = _compose(Path(path))
    return parse_plan(data, str(path), lines)


def plan_path_from_config(explicit_config: str | None) -> str | None:
    """The config's `lint.plan`, resolved against the config file's folder."""
    from cdpio_cli import config as config_mod

    cfg_path = config_mod.find_config_path(explicit_config)
    if cfg_path is None:
        return None
    # Only `lint:` is read: the secrets the file asks for need not be set.
    value = config_mod.load_config(cfg_path, uses=("lint",)).config.lint.plan
    return resolve_plan_path(value, cfg_path)


def resolve_plan_path(value: str | None, config_path: Path | None) -> str | None:
    if not value:
        return None
    p = Path(value).expanduser()
    if not p.is_absolute() and config_path is not None:
        p = Path(config_path).resolve().parent / p
    return str(p)


# ---------------------------------------------------------------------------
# Checking messages
# ---------------------------------------------------------------------------


def _json_type(value: Any) -> str:
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


def _lookup(schema: dict, schema_path: list) -> Any:
    node: Any = schema
    for part in schema_path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _expected(keyword: str, spec: Any) -> str:
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

    def check(self, msg: Any, file: str | None, line: int | None, emit: Emit) -> None:
        if type(msg) is not dict:
            return
        rule, planned = self.plan.rule_for(msg)
        if not planned:
            if self.unplanned_event:
                event = msg["event"]
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
            return
        if rule is None:
            return
        obj = msg.get(rule.field)
        if obj is None:
            obj = {}
        elif type(obj) is not dict:
            return  # spec/* rules report a non-object properties/traits
        if not rule.is_valid(obj):
            self._errors(rule, obj, file, line, emit)
        if self.unplanned_property and not rule.known.issuperset(obj):
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

    def _errors(self, rule: ObjectRule, obj: dict, file, line, emit: Emit) -> None:
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
            spec = _lookup(schema, schema_path)
            actual = err.instance
            expected = _expected(keyword, spec)
            emit(
                rule_id,
                f"{rule.where}: {noun} {key!r} should be {expected}; the message had "
                f"{_json_type(actual)} {show_value(actual)}",
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

        def collect(rule, message, file, line, *, default=None, hint=None, **details):
            out.append((rule, default or severities.get(rule, "error"), message))

        self.check(msg, None, None, collect)
        return out


# ---------------------------------------------------------------------------
# Inferring a plan from messages
# ---------------------------------------------------------------------------

ENUM_MAX_VALUES = 10  # at most this many distinct strings make an enum...
ENUM_MIN_REPEAT = 2  # ...and only when each is seen this many times on average
ENUM_MIN_COUNT = 3  # ...in at least this many messages
FORMATS = ("email", "date-time", "date", "uuid", "uri")
_TYPE_ORDER = ("string", "number", "integer", "boolean", "object", "array", "null")


class _KeyStats:
    __slots__ = ("count", "types", "values", "formats")

    def __init__(self):
        self.count = 0
        self.types: set[str] = set()
        self.values: dict[str, int] | None = {}  # None: too many distinct strings
        self.formats: set[str] | None = None  # None: not yet seen a string

    def add(self, value: Any, format_of: Callable[[str], set]) -> None:
        self.count += 1
        t = _json_type(value)
        if t == "integer":
            t = "number"  # 30 then 30.5 is still one kind of value
        self.types.add(t)
        if t == "string":
            if self.values is not None:
                self.values[value] = self.values.get(value, 0) + 1
                if len(self.values) > ENUM_MAX_VALUES:
                    self.values = None
            fmts = format_of(value)
            self.formats = set(fmts) if self.formats is None else self.formats & fmts

    def schema(self, key: str) -> dict:
        types = sorted(self.types, key=_TYPE_ORDER.index)
        out: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
        if types == ["string"]:
            fmt = next((f for f in FORMATS if self.formats and f in self.formats), None)
            if fmt:
                out["format"] = fmt
            elif (
                self.values is not None
                and self.count >= max(ENUM_MIN_COUNT, ENUM_MIN_REPEAT * len(self.values))
                and not _is_id_key(key)
            ):
                out["enum"] = sorted(self.values)
        return out


def _is_id_key(key: str) -> bool:
    """Ids repeat (one cart, many events) but are not a closed set of values."""
    return key.lower() == "id" or key.endswith(("_id", "Id", "ID"))


class _ObjectStats:
    def __init__(self, file: str, line: int):
        self.messages = 0
        self.keys: dict[str, _KeyStats] = {}
        self.first = (file, line)


class Inferrer:
    """Feed fixture records with `add`; `plan_data()` / `to_yaml()` for the plan."""

    def __init__(self):
        import jsonschema_rs

        self.events: dict[str, _ObjectStats] = {}
        self.sections: dict[str, _ObjectStats] = {}
        self.messages = 0
        self.unreadable = 0
        self.files: list[str] = []
        # The same format checker lint uses, so an inferred format always passes.
        self._checkers = {f: jsonschema_rs.validator_for({"format": f}, validate_formats=True) for f in FORMATS}
        self._format_cache: dict[str, set] = {}

    def _formats(self, value: str) -> set:
        cached = self._format_cache.get(value)
        if cached is None:
            cached = {f for f, v in self._checkers.items() if v.is_valid(value)}
            # date-time strings are not uris; a bare scheme:rest is not a useful uri
            if "uri" in cached and not value.startswith(("http://", "https://")):
                cached.discard("uri")
            if len(self._format_cache) < 100_000:
                self._format_cache[value] = cached
        return cached

    def add(self, record) -> None:
        self.messages += 1
        if record.file not in self.files:
            self.files.append(record.file)
        if record.error is not None:
            self.unreadable += 1
            return
        msg = record.message
        if type(msg) is not dict:
            return
        mtype = msg.get("type")
        if mtype == "track":
            event = msg.get("event")
            if not isinstance(event, str) or not event:
                return
            stats = self.events.get(event)
            if stats is None:
                stats = self.events[event] = _ObjectStats(record.file, record.line)
            fld = "properties"
        elif mtype in SECTIONS:
            stats = self.sections.get(mtype)
            if stats is None:
                stats = self.sections[mtype] = _ObjectStats(record.file, record.line)
            fld = SECTIONS[mtype][1]
        else:
            return
        obj = msg.get(fld)
        stats.messages += 1
        if type(obj) is not dict:
            return
        for key, value in obj.items():
            ks = stats.keys.get(key)
            if ks is None:
                ks = stats.keys[key] = _KeyStats()
            ks.add(value, self._formats)

    @staticmethod
    def _rule(stats: _ObjectStats, fld: str) -> dict:
        props = {k: stats.keys[k].schema(k) for k in sorted(stats.keys)}
        required = sorted(k for k, s in stats.keys.items() if s.count == stats.messages and "null" not in s.types)
        out: dict[str, Any] = {fld: props}
        if required:
            out["required"] = required
        return out

    def plan_data(self) -> dict:
        data: dict[str, Any] = {
            "events": {name: self._rule(self.events[name], "properties") for name in sorted(self.events)}
        }
        for section in SECTIONS:
            if section in self.sections:
                data[section] = self._rule(self.sections[section], SECTIONS[section][1])
        data["unplanned_events"] = "error"
        data["unplanned_properties"] = "warning"
        return data

    def to_yaml(self) -> str:
        comments = {
            ("events", name): f"{s.messages:,} message(s); first at {s.first[0]}:{s.first[1]}"
            for name, s in self.events.items()
        }
        comments.update(
            {
                (sec,): f"{s.messages:,} message(s); first at {s.first[0]}:{s.first[1]}"
                for sec, s in self.sections.items()
            }
        )
        header = (
            [
                f"Tracking plan inferred by `cdpio plan infer` from {self.messages:,} message(s) in "
                f"{len(self.files)} file(s):"
            ]
            + [f"  {f}" for f in self.files]
            + [
                "Types are what was observed; required = present in every message of that kind;",
                f"enum = a string with at most {ENUM_MAX_VALUES} values, each seen about {ENUM_MIN_REPEAT}+ times.",
                "Review it before you commit it: the data may have been wrong.",
            ]
        )
        return dump_plan(self.plan_data(), header=header, comments=comments)


# ---------------------------------------------------------------------------
# Writing plans (stable, sorted, commented YAML)
# ---------------------------------------------------------------------------


def _flow(value: Any) -> str:
    import yaml

    return (
        yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True, sort_keys=False)
        .strip()
        .removesuffix("\n...")
        .strip()
    )


def _key(name: str) -> str:
    return _flow(name)


def _rule_lines(rule: dict, indent: str) -> list[str]:
    out = []
    for fld in ("properties", "traits"):
        if fld in rule:
            props = rule[fld] or {}
            if not props:
                out.append(f"{indent}{fld}: {{}}")
                continue
            out.append(f"{indent}{fld}:")
            for name in sorted(props):
                out.append(f"{indent}  {_key(name)}: {_flow(props[name])}")
    if rule.get("required"):
        out.append(f"{indent}required: {_flow(sorted(rule['required']))}")
    if rule.get("description"):
        out.append(f"{indent}description: {_flow(rule['description'])}")
    return out


def dump_plan(data: dict, *, header: Iterable[str] = (), comments: dict | None = None) -> str:
    """The plan as YAML: sections in a fixed order, names sorted, one property per line."""
    comments = comments or {}
    out = [f"# {h}" if h else "#" for h in header]
    if data.get("name") is not None:
        out.append(f"name: {_flow(data['name'])}")
    if data.get("description") is not None:
        out.append(f"description: {_flow(data['description'])}")
    if "events" in data:
        events = data["events"] or {}
        out.append("events:" if events else "events: {}")
        for name in sorted(events):
            note = comments.get(("events", name))
            if note:
                out.append(f"  # {note}")
            out.append(f"  {_key(name)}:")
            out.extend(_rule_lines(events[name] or {}, "    ") or ["    properties: {}"])
    for section in SECTIONS:
        if section in data:
            note = comments.get((section,))
            if note:
                out.append(f"# {note}")
            out.append(f"{section}:")
            out.extend(_rule_lines(data[section] or {}, "  ") or [f"  {SECTIONS[section][1]}: {{}}"])
    out.append("# error | warning | allow: how lint grades what the plan does not list")
    out.append(f"unplanned_events: {data.get('unplanned_events', 'error')}")
    out.append(f"unplanned_properties: {data.get('unplanned_properties', 'warning')}")
    return "\n".join(out) + "\n"


def write_new_file(path: str, text: str, *, force: bool, flag: str = "-o") -> None:
    """Write `text` to `path`; refuse to replace an existing file without --force."""
    p = Path(path)
    if p.exists() and not force:
        raise UsageError(f"{flag} {path}: the file exists", hint="pass --force to overwrite it")
    if p.is_dir():
        raise UsageError(f"{flag} {path} is a directory", hint="name a file, e.g. tracking-plan.yaml")
    try:
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write: {exc.strerror}") from None


# ---------------------------------------------------------------------------
# Diff
# ---------------------------------------------------------------------------


@dataclass
class Change:
    kind: str  # added | removed | changed
    where: str  # `event "Signed Up"`, `event "Signed Up" property plan_type`, `unplanned_events`
    before: Any = None
    after: Any = None

    def text(self) -> str:
        if self.kind == "added":
            return f"+ {self.where}" + (f": {show_value(self.after, 100)}" if self.after not in (None, {}) else "")
        if self.kind == "removed":
            return f"- {self.where}"
        return f"~ {self.where}: {show_value(self.before, 100)} -> {show_value(self.after, 100)}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "where": self.where, "before": self.before, "after": self.after}


def _diff_rule(where: str, fld: str, a: dict, b: dict, out: list[Change]) -> None:
    noun = "property" if fld == "properties" else "trait"
    pa, pb = a.get(fld) or {}, b.get(fld) or {}
    for key in sorted(set(pa) | set(pb)):
        if key not in pa:
            out.append(Change("added", f"{where} {noun} {key}", None, pb[key]))
        elif key not in pb:
            out.append(Change("removed", f"{where} {noun} {key}", pa[key], None))
        elif pa[key] != pb[key]:
            out.append(Change("changed", f"{where} {noun} {key}", pa[key], pb[key]))
    ra, rb = sorted(a.get("required") or []), sorted(b.get("required") or [])
    if ra != rb:
        out.append(Change("changed", f"{where} required", ra, rb))


def diff_plans(a: Plan, b: Plan) -> list[Change]:
    out: list[Change] = []
    da, db = a.data, b.data
    ea, eb = da.get("events"), db.get("events")
    if (ea is None) != (eb is None):
        out.append(Change("added" if ea is None else "removed", "events section"))
    ea, eb = ea or {}, eb or {}
    for name in sorted(set(ea) | set(eb)):
        where = f'event "{name}"'
        if name not in ea:
            out.append(Change("added", where, None, eb[name]))
        elif name not in eb:
            out.append(Change("removed", where, ea[name], None))
        else:
            _diff_rule(where, "properties", ea[name] or {}, eb[name] or {}, out)
    for section, (_, fld) in SECTIONS.items():
        if section not in da and section not in db:
            continue
        if section not in da:
            out.append(Change("added", section, None, db[section]))
        elif section not in db:
            out.append(Change("removed", section, da[section], None))
        else:
            _diff_rule(section, fld, da[section] or {}, db[section] or {}, out)
    for key in ("unplanned_events", "unplanned_properties"):
        if getattr(a, key) != getattr(b, key):
            out.append(Change("changed", key, getattr(a, key), getattr(b, key)))
    return out


# ---------------------------------------------------------------------------
# Segment Protocols -> plan
# ---------------------------------------------------------------------------

# Segment Public API rule types (https://docs.segmentapis.com/tag/Tracking-Plans):
# each rule's jsonSchema describes the whole message; the part we keep is
# properties.properties (track, page, screen) or properties.traits (identify, group).
_SEGMENT_TYPES = {
    "TRACK": ("events", "properties"),
    "IDENTIFY": ("identify", "traits"),
    "GROUP": ("group", "traits"),
    "PAGE": ("page", "properties"),
    "SCREEN": ("screen", "properties"),
}


def _segment_part(schema: dict, fld: str) -> dict:
    part = ((schema or {}).get("properties") or {}).get(fld) or {}
    out: dict[str, Any] = {fld: dict(part.get("properties") or {})}
    if part.get("required"):
        out["required"] = sorted(part["required"])
    return out


def plan_from_segment_rules(rules: Iterable[dict]) -> tuple[dict, list[str]]:
    """Segment tracking-plan rules -> (plan data, notes about what was left out)."""
    data: dict[str, Any] = {"events": {}}
    notes: list[str] = []
    for rule in rules:
        rtype = str(rule.get("type") or "").upper()
        if rule.get("deprecatedAt"):
            notes.append(f"left out the deprecated {rtype} rule {rule.get('key') or ''}".rstrip())
            continue
        target = _SEGMENT_TYPES.get(rtype)
        if target is None:
            notes.append(f"left out a {rtype or 'typeless'} rule (cdpio plans have no equivalent)")
            continue
        section, fld = target
        part = _segment_part(rule.get("jsonSchema") or {}, fld)
        if section == "events":
            key = rule.get("key")
            if not key:
                notes.append("left out a TRACK rule without a key (event name)")
                continue
            data["events"][str(key)] = part
        else:
            data[section] = part
    data["unplanned_events"] = "error"
    data["unplanned_properties"] = "warning"
    return data, notes


def fetch_segment_plan(settings, http, plan_id: str | None, *, page_size: int = 200) -> tuple[dict, str, list]:
    """(tracking plan metadata, plan id, rules) through the Segment Public API:
    GET /tracking-plans (to pick one when no id is given), GET
    /tracking-plans/{id} and every page of GET /tracking-plans/{id}/rules."""
    from cdpio_cli.errors import CredentialError, UnreachableError

    base = settings.endpoint("segment_api")
    headers = {
        "Authorization": f"Bearer {settings.segment.public_api_token}",
        "Accept": "application/vnd.segment.v1+json",
    }

    def get(path: str, params: dict | None = None) -> dict:
        answer = http.call("GET", f"{base}{path}", headers=headers, params=params)
        if answer.status in (401, 403):
            raise CredentialError(
                f"the Segment Public API rejected segment.public_api_token ({answer.status})",
                hint="the token needs the Protocols read permission (Workspace Member or Tracking Plan Read-only)",
            )
        if answer.status == 404:
            raise UsageError(
                f"the Segment Public API has no {path}",
                hint="list the plans with `cdpio plan pull` (no id) and pass one of their ids",
            )
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise UnreachableError(f"the Segment Public API GET {path} answered {answer.status or answer.error}")
        return answer.body.get("data") or {}

    def pages(path: str, key: str) -> list:
        items: list = []
        cursor = None
        for _ in range(10_000):
            params = {"pagination.count": page_size}
            if cursor:
                params["pagination.cursor"] = cursor
            data = get(path, params)
            items.extend(data.get(key) or [])
            cursor = (data.get("pagination") or {}).get("next")
            if not cursor:
                break
        return items

    if not plan_id:
        plans = pages("/tracking-plans", "trackingPlans")
        live = [p for p in plans if p.get("type") in (None, "LIVE")]
        if len(live) != 1:
            names = ", ".join(f"{p.get('id')} ({p.get('name')})" for p in live[:10]) or "none"
            raise UsageError(
                f"the workspace has {len(live)} live tracking plans: {names}", hint="pass the one to pull with --id"
            )
        plan_id = str(live[0].get("id"))
    meta = get(f"/tracking-plans/{plan_id}").get("trackingPlan") or {}
    rules = pages(f"/tracking-plans/{plan_id}/rules", "rules")
    return meta, plan_id, rules


# ---------------------------------------------------------------------------
# send-test: the test messages follow the plan
# ---------------------------------------------------------------------------


def send_test_checks(
    tracking_plan: Plan, items: Iterable[tuple[str, dict]], *, ignore_keys=(), severities=None
) -> list:
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
                    tier="format",
                    status=results.FAILED if severity == "error" else results.WARNING,
                    message=f"{label} does not follow the tracking plan: {message}",
                    file=tracking_plan.path,
                    hint="change send_test.traits / send_test.events, or the plan; nothing was sent",
                    details={"rule": rule, "severity": severity},
                )
            )
    return out


# ---------------------------------------------------------------------------
# Customer.io cross-checks (`cdpio audit --plan`)
# ---------------------------------------------------------------------------

# Customer.io keeps every attribute as a string; how a trait of each JSON type
# looks once stored (the sandbox does the same: sandbox/workspace.py stringify).
_STORED_AS = {
    "boolean": '"true" or "false"',
    "integer": 'digits, like "30"',
    "number": 'a number, like "30" or "1.5"',
    "string": "the text itself",
    "null": '"null"',
    "array": 'JSON text, like ["a"]',
    "object": 'JSON text, like {"a": 1}',
}


@dataclass
class AttributeFit:
    """Can a trait the plan describes ever be stored as this attribute string?"""

    ok: bool
    problem: str | None = None  # "type": no value of the planned type; "value": enum, format, minimum...
    expected: str = ""  # what the plan allows, in words


def _stored_candidates(text: str) -> list:
    """The trait values Customer.io could have stored as `text`: the string
    itself and, when it reads as JSON (true, 30, 1.5, null), that value."""
    import json

    out: list = [text]
    try:
        value = json.loads(text)
    except ValueError:
        return out
    if not isinstance(value, str):
        out.append(value)
    return out


def attribute_fit(properties: dict[str, Any], name: str, text: str) -> AttributeFit:
    """Whether a segment condition's `eq`/`ne` string can equal the stored value
    of trait `name`, as the plan's `properties` (identify traits) allow it: a
    boolean trait fits "true", not "yes".  The trait is validated inside its
    section's schema, so a `$ref` to a sibling resolves as it does in lint."""
    import jsonschema_rs

    schema = properties.get(name)
    if not isinstance(schema, dict) or not schema:
        return AttributeFit(True)
    root = {"type": "object", "properties": properties}
    candidates = _stored_candidates(text)
    full = jsonschema_rs.validator_for(root, validate_formats=True)
    if any(full.is_valid({name: c}) for c in candidates):
        return AttributeFit(True)
    planned_type = schema.get("type")
    if planned_type is not None:
        by_type = jsonschema_rs.validator_for({"type": planned_type})
        typed = [c for c in candidates if by_type.is_valid(c)]
        if not typed:
            return _type_misfit(planned_type)
        candidates = typed
    for err in full.iter_errors({name: candidates[-1]}):
        keyword = str(err.schema_path[-1]) if err.schema_path else ""
        spec = _lookup(root, list(err.schema_path))
        if keyword == "type" and spec is not None:  # a type behind a $ref or in an allOf
            return _type_misfit(spec)
        return AttributeFit(False, "value", _expected(keyword, spec))
    return AttributeFit(False, "value", f"a value the plan's rule {show_value(schema)} allows")


def _type_misfit(planned_type: Any) -> AttributeFit:
    types = planned_type if isinstance(planned_type, list) else [planned_type]
    stored = " or ".join(_STORED_AS.get(t, "JSON text") for t in types)
    return AttributeFit(False, "type", f"{_expected('type', planned_type)}, which Customer.io stores as {stored}")

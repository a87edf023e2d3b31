"""Reading a plan file: YAML (or JSON) whose every value keeps its line, checked
into a Plan; every error is a ConfigError naming the file and line (exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from cdpio_cli.errors import ConfigError
from cdpio_cli.plan.model import RULE_KEYS, SECTIONS, TOP_KEYS, UNPLANNED_LEVELS, ObjectRule, Plan
from cdpio_cli.yaml_nodes import Node, line_of, mapping_pairs, safe_constructor, sequence_items

Lines = dict[tuple[str | int, ...], int]  # key path -> line

MAX_PLAN_BYTES = 8 * 1024 * 1024


def _compose(path: Path) -> tuple[object, Lines]:
    """(plain data, key path -> line) from a YAML (or JSON) file."""
    display = str(path)
    node = _yaml_node(_read_text(path), display)
    return _LineBuilder(display).build(node)


def _read_text(path: Path) -> str:
    """The file's text; a ConfigError for a missing, huge, unreadable or non-UTF-8 file."""
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
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "the plan is not valid UTF-8", file=display, hint="save it as UTF-8", line=raw[: exc.start].count(b"\n") + 1
        ) from None


def _yaml_node(text: str, display: str) -> Node:
    """The YAML node tree (lines kept); a ConfigError for invalid or empty YAML."""
    import yaml

    try:
        node: Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
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
    return node


class _LineBuilder:
    """Plain data from a YAML node tree, noting each key path's line."""

    def __init__(self, display: str):
        self.display = display
        self.lines: Lines = {}
        self.constructor = safe_constructor()

    def build(self, node: Node) -> tuple[object, Lines]:
        return self._value(node, ()), self.lines

    def _value(self, n: Node, path: tuple[str | int, ...]) -> object:
        import yaml

        self.lines[path] = line_of(n)
        pairs = mapping_pairs(n)
        if pairs is not None:
            return self._mapping(pairs, path)
        items = sequence_items(n)
        if items is not None:
            return [self._value(item, path + (i,)) for i, item in enumerate(items)]
        try:
            return self.constructor.construct_object(n, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise ConfigError(f"invalid value: {exc.problem}", file=self.display, line=line_of(n)) from None

    def _mapping(self, pairs: list[tuple[Node, Node]], path: tuple[str | int, ...]) -> dict[str, object]:
        out: dict[str, object] = {}
        for k, v in pairs:
            raw_key = self.constructor.construct_object(k, deep=True)
            if not isinstance(raw_key, (str, int, float, bool)):
                raise ConfigError("a mapping key must be a plain word", file=self.display, line=line_of(k))
            key = str(raw_key)
            if key in out:
                raise ConfigError(
                    f"key {key!r} appears twice", file=self.display, line=line_of(k), hint="keep one of them"
                )
            out[key] = self._value(v, path + (key,))
            self.lines[path + (key,)] = line_of(k)
        return out


def _fail(message: str, path: str, lines: dict, at: tuple, hint: str | None = None) -> NoReturn:
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

"""The cdpio.yaml schema checker: dataclass sections whose annotations are the schema.

A section is a dataclass; each field's annotation says what it accepts:
`str`, `int`, `float`, `bool`, `Any`, `Literal[...]`, `X | None`, `int | str`,
`list[X]`, `dict[str, X]`, another section, and `Annotated[X, Before(f)]`,
`Annotated[X, After(f)]` or `Annotated[X, Range(ge=..., le=...)]` for a
conversion before the type check, a check after it, or bounds.  `check`
returns the section built from plain YAML data plus every problem found (all
of them, not the first), each with the key path it sits at.

Scalars are read as leniently as the config always was (pydantic's lax mode,
which this replaced to keep it out of every command's start-up): `'5'` is a
whole number, `yes` is true, `2.0` is 2; a list is never a string.  The
problem wording is config_yaml.schema_problems'; the kinds below are what it
words.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union

KeyPath = tuple[str | int, ...]
"""Where a value sits in the file: mapping keys (as text) and list indexes."""

# What a type problem says the value must be (config_yaml words it: "must be a whole number (got ...)").
TEXT, WHOLE, NUMBER, BOOLEAN = "text", "a whole number", "a number", "true or false"
MAPPING, LIST = "a mapping (key: value lines)", "a list"


@dataclass(frozen=True)
class Before:
    """A conversion applied before the type check; a ValueError is the problem's text."""

    convert: Callable[[Any], Any]


@dataclass(frozen=True)
class After:
    """A check (and clean-up) applied once the type check passed; a ValueError is the problem's text."""

    convert: Callable[[Any], Any]


@dataclass(frozen=True)
class Range:
    """Bounds a number must lie within (inclusive)."""

    ge: float | None = None
    le: float | None = None


# eq=False, repr=False: nothing compares or prints these records, and dataclasses
# compiles each generated method with exec at import (start-up, issue 17).
@dataclass(frozen=True, eq=False, repr=False)
class Error:
    """One problem: `kind` is "unknown" (a key the section does not have),
    "type" (`expected` names what it must be; `value` is what it got) or
    "message" (`text` says it all)."""

    loc: KeyPath
    kind: Literal["unknown", "type", "message"]
    text: str = ""
    expected: str = ""
    value: Any = None


class _Invalid(Exception):
    def __init__(self, errors: list[Error]):
        self.errors = errors


def is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


@functools.cache
def field_types(section: type) -> dict[str, Any]:
    """A section's field name -> annotation, in declaration order (Annotated kept)."""
    hints = typing.get_type_hints(section, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(section)}


def section_at(root: type, loc: KeyPath) -> type | None:
    """The section a key path leads to (through plain section fields only), or None."""
    section = root
    for part in loc:
        fields = field_types(section)
        if not isinstance(part, str) or part not in fields:
            return None
        tp = fields[part]
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        if not is_section(tp):
            return None
        section = tp
    return section


def check(section: type, data: object) -> tuple[Any, list[Error]]:
    """(the section built from `data`, None when anything is wrong; every problem)."""
    try:
        return _value(section, data, ()), []
    except _Invalid as exc:
        return None, exc.errors


def _value(tp: Any, value: Any, loc: KeyPath) -> Any:
    """`value` checked against `tp`; raises _Invalid with every problem inside it."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _annotated(tp, value, loc)
    if origin in (Union, types.UnionType):
        return _union(typing.get_args(tp), value, loc)
    if origin is Literal:
        return _literal(typing.get_args(tp), value, loc)
    if origin is list:
        if not isinstance(value, list):
            raise _Invalid([Error(loc, "type", expected=LIST, value=value)])
        (item,) = typing.get_args(tp)
        errors: list[Error] = []
        items = [_attempt(errors, item, v, (*loc, i)) for i, v in enumerate(value)]
        if errors:
            raise _Invalid(errors)
        return items
    if origin is dict:
        return _mapping(typing.get_args(tp)[1], value, loc)
    if is_section(tp):
        return _section(tp, value, loc)
    return _scalar(tp, value, loc)


def _annotated(tp: Any, value: Any, loc: KeyPath) -> Any:
    inner, *marks = typing.get_args(tp)
    for mark in marks:
        if isinstance(mark, Before):
            value = _converted(mark.convert, value, loc)
    value = _value(inner, value, loc)
    for mark in marks:
        if isinstance(mark, Range):
            if mark.ge is not None and not value >= mark.ge:  # `not >=`: NaN fails too
                raise _Invalid([Error(loc, "message", f"must be greater than or equal to {mark.ge}")])
            if mark.le is not None and not value <= mark.le:
                raise _Invalid([Error(loc, "message", f"must be less than or equal to {mark.le}")])
    for mark in marks:
        if isinstance(mark, After):
            value = _converted(mark.convert, value, loc)
    return value


def _converted(convert: Callable[[Any], Any], value: Any, loc: KeyPath) -> Any:
    try:
        return convert(value)
    except ValueError as exc:
        raise _Invalid([Error(loc, "message", str(exc))]) from None


def _union(members: tuple[Any, ...], value: Any, loc: KeyPath) -> Any:
    """`X | None`: None, or X.  `int | str`: an exact match first, then each
    member leniently in turn; when none fits, every member's problem, at the
    path plus the member's name (`segments.2.int`, `segments.2.str`)."""
    others = tuple(m for m in members if m is not type(None))
    if len(others) < len(members):
        if value is None:
            return None
        if len(others) == 1:
            return _value(others[0], value, loc)
    if any(type(value) is m for m in others):
        return value
    errors: list[Error] = []
    for member in others:
        try:
            return _value(member, value, loc)
        except _Invalid as exc:
            name = getattr(member, "__name__", str(member))
            errors.extend(dataclasses.replace(e, loc=(*loc, name)) for e in exc.errors)
    raise _Invalid(errors)


def _literal(allowed: tuple[Any, ...], value: Any, loc: KeyPath) -> Any:
    by_value = {a: a for a in allowed}  # a dict lookup, as before: true matches 1 (True == 1)
    try:
        return by_value[value]
    except (KeyError, TypeError):
        pass
    texts = [repr(a) for a in allowed]
    listed = texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"
    raise _Invalid([Error(loc, "message", f"must be {listed}")])


def _mapping(item: Any, value: Any, loc: KeyPath) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid([Error(loc, "type", expected=MAPPING, value=value)])
    errors: list[Error] = []
    out = {}
    for key, v in value.items():
        if not isinstance(key, str):  # the key is what is wrong: `traits.1.[key]`
            _attempt(errors, str, key, (*loc, str(key), "[key]"))
        out[key] = _attempt(errors, item, v, (*loc, key))
    if errors:
        raise _Invalid(errors)
    return out


def _section(section: type, value: Any, loc: KeyPath) -> Any:
    if not isinstance(value, dict):
        raise _Invalid([Error(loc, "type", expected=MAPPING, value=value)])
    fields = field_types(section)
    errors: list[Error] = []
    given = {name: _attempt(errors, tp, value[name], (*loc, name)) for name, tp in fields.items() if name in value}
    # Unknown keys after the fields' own problems (the order they were always reported in).
    errors.extend(Error((*loc, str(key)), "unknown") for key in value if key not in fields)
    if errors:
        raise _Invalid(errors)
    return section(**given)


def _attempt(errors: list[Error], tp: Any, value: Any, loc: KeyPath) -> Any:
    """`value` checked against `tp`, its problems added to `errors` (then None) instead of raised."""
    try:
        return _value(tp, value, loc)
    except _Invalid as exc:
        errors.extend(exc.errors)
        return None


# --- scalars, read leniently --------------------------------------------------------------

_WHOLE = re.compile(r"[+-]?[0-9](?:_?[0-9])*(?:\.0*)?")
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_MAX_INT_FROM_FLOAT = 2**63


def _scalar(tp: Any, value: Any, loc: KeyPath) -> Any:
    if isinstance(value, bytes):  # YAML's !!binary
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid(
                [Error(loc, "message", "must be a valid string, unable to parse raw data as a unicode string")]
            ) from None
    reader = _READERS.get(tp)
    if reader is None:
        raise TypeError(f"config_schema cannot check {tp!r}")  # a schema mistake, not a user's
    return reader(value, loc)


def _text(value: Any, loc: KeyPath) -> str:
    if isinstance(value, str):
        return value
    raise _Invalid([Error(loc, "type", expected=TEXT, value=value)])


def _whole(value: Any, loc: KeyPath) -> int:
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid([Error(loc, "message", "must be a finite number")])
        if not value.is_integer():
            raise _Invalid([Error(loc, "message", "must be a valid integer, got a number with a fractional part")])
        if abs(value) >= _MAX_INT_FROM_FLOAT:
            raise _Invalid([Error(loc, "message", "Unable to parse input string as an integer, exceeded maximum size")])
        return int(value)
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value.strip().split(".")[0])
    raise _Invalid([Error(loc, "type", expected=WHOLE, value=value)])


def _number(value: Any, loc: KeyPath) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip().isascii():
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _Invalid([Error(loc, "type", expected=NUMBER, value=value)])


def _boolean(value: Any, loc: KeyPath) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise _Invalid([Error(loc, "type", expected=BOOLEAN, value=value)])


_READERS: dict[Any, Callable[[Any, KeyPath], Any]] = {str: _text, int: _whole, float: _number, bool: _boolean}

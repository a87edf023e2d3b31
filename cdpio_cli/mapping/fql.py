"""Subscription triggers: Segment's FQL, parsed and evaluated as
segmentio/action-destinations packages/destination-subscriptions does
(parse-fql.ts, validate.ts); its own tests are transcribed in
tests/data/destination/fql-*.json."""

from __future__ import annotations

import re
from typing import Any

Token = tuple[str, str]  # (kind, text) from the lexer

_FQL_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)|'
    r"(?P<operator>!=|<=|>=|=|<|>|!)|(?P<parenleft>\()|(?P<parenright>\))|"
    r"(?P<dot>\.)|(?P<comma>,)|(?P<ident>[A-Za-z_$][\w$]*))"
)

# Condition types by the path's first segment (parse-fql.ts tokenToConditionType).
_CONDITION_TYPES = {
    "type": "event-type",
    "event": "event",
    "name": "name",
    "userId": "userId",
    "context": "event-context",
    "properties": "event-property",
    "traits": "event-trait",
}
_NESTED = {"event-context": "context", "event-property": "properties", "event-trait": "traits"}


class TriggerError(ValueError):
    """A trigger Segment cannot parse: it matches no message."""


def _fql_lex(text: str) -> list[Token]:
    """Tokens as Segment's FQL lexer gives them (a string keeps its quotes),
    with `a.b.c` joined into one identifier, then an end token."""
    tokens: list[Token] = []
    pos, text = 0, text.rstrip()
    while pos < len(text):
        m = _FQL_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise TriggerError(f"cannot read the trigger at {text[pos : pos + 20].strip()!r}")
        pos = m.end()
        kind, value = m.lastgroup or "", m.group(m.lastgroup or 0)
        if kind == "ident" and value in ("and", "or"):
            kind = "conditional"
        if kind == "ident" and len(tokens) >= 2 and tokens[-1][0] == "dot" and tokens[-2][0] == "ident":
            tokens.pop()
            value = tokens.pop()[1] + "." + value
        tokens.append((kind, value))
    tokens.append(("eos", "eos"))
    return tokens


def _token_value(token: Token) -> Any:
    kind, value = token
    if kind == "string":
        return value[1:-1] if len(value) >= 2 else value
    if kind == "number":
        return float(value) if "." in value else int(value)
    if kind == "ident" and value in ("true", "false"):
        return value == "true"
    return value


def _js_string(value: Any) -> str:
    """String(value) in JavaScript, for the values a trigger holds."""
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fql_function(name: str, nodes: list[dict], tokens: list[Token], negate: bool) -> None:
    tokens.pop(0)  # "("
    if not tokens:
        raise TriggerError(f"{name}() is missing a 1st argument")
    path = tokens.pop(0)[1]
    if tokens:
        tokens.pop(0)  # ","
    if not tokens:
        raise TriggerError(f"{name}() is missing a 2nd argument")
    value_token = tokens.pop(0)
    if tokens:
        tokens.pop(0)  # ")"
    if name == "contains":
        operator, value = ("not_contains" if negate else "contains"), _js_string(_token_value(value_token))
    elif value_token[1].endswith('*"'):
        operator, value = ("not_starts_with" if negate else "starts_with"), _js_string(_token_value(value_token))[:-1]
    else:
        operator, value = ("not_ends_with" if negate else "ends_with"), _js_string(_token_value(value_token))[1:]
    if path in ("event", "name", "userId"):
        nodes.append({"type": path, "operator": operator, "value": value})
    for ctype, head in _NESTED.items():
        if path.startswith(head):
            nodes.append(
                {"type": ctype, "name": re.sub(rf"^{head}\.", "", path, count=1), "operator": operator, "value": value}
            )


# `=`/`!=` against true, false and null: the special operators (parse-fql.ts).
_SPECIAL_OPERATORS = {
    ("=", "true"): "is_true",
    ("=", "false"): "is_false",
    ("!=", "null"): "exists",
    ("=", "null"): "not_exists",
}


def _fql_condition(ctype: str, path: str, tokens: list[Token]) -> dict[str, Any]:
    """`path <operator> <value>`: the condition node, taking two tokens."""
    if not tokens:
        raise TriggerError("Operator token is missing")
    op_token = tokens.pop(0)
    if not tokens:
        raise TriggerError("Value token is missing")
    value_token = tokens.pop(0)
    op = op_token[1]
    special = _SPECIAL_OPERATORS.get((op, value_token[1]))
    if ctype in ("event", "event-type"):
        return {"type": ctype, "operator": op, "value": _js_string(_token_value(value_token))}
    if ctype in ("name", "userId"):
        if special in ("exists", "not_exists") or (ctype == "userId" and special):
            return {"type": ctype, "operator": special}
        return {"type": ctype, "operator": op, "value": _js_string(_token_value(value_token))}
    node: dict[str, Any] = {"type": ctype, "name": re.sub(rf"^{_NESTED[ctype]}\.", "", path, count=1)}
    if special:
        node["operator"] = special
    elif value_token[0] == "number" and op in ("=", "!="):
        node["operator"] = "number_equals" if op == "=" else "number_not_equals"
        node["value"] = _token_value(value_token)
    else:
        node["operator"] = op
        node["value"] = _token_value(value_token)
    return node


def _fql_group(tokens: list[Token]) -> dict:
    """The tokens up to the closing parenthesis, parsed as one group."""
    group: list[Token] = []
    inner = tokens.pop(0) if tokens else ("eos", "eos")
    while inner[0] != "parenright":
        if inner[0] == "eos":
            raise TriggerError("a parenthesis is not closed")
        group.append(inner)
        inner = tokens.pop(0) if tokens else ("eos", "eos")
    group.append(("eos", "eos"))
    node = _fql_parse(group)
    if node is None:
        # Nothing to evaluate in `()`: it would match no message, like a trigger Segment cannot parse.
        raise TriggerError("a parenthesis holds no condition")
    return node


def _is_negated_function(kind: str, value: str, tokens: list[Token]) -> bool:
    """`!contains(...)` / `!match(...)`."""
    return (
        kind == "operator"
        and value == "!"
        and bool(tokens)
        and tokens[0][0] == "ident"
        and tokens[0][1] in ("contains", "match")
    )


def _fql_parse(tokens: list[Token]) -> dict | None:
    nodes: list[dict] = []
    operator = "and"
    token = tokens.pop(0) if tokens else None
    while token is not None and token[0] != "eos":
        kind, value = token
        if kind == "ident":
            ctype = _CONDITION_TYPES.get(value.split(".")[0])
            if ctype:
                nodes.append(_fql_condition(ctype, value, tokens))
            if value in ("contains", "match") and tokens:
                _fql_function(value, nodes, tokens, negate=False)
        elif _is_negated_function(kind, value, tokens):
            _fql_function(tokens.pop(0)[1], nodes, tokens, negate=True)
        elif kind == "parenleft":
            nodes.append(_fql_group(tokens))
        elif kind == "conditional":
            # One operator per group: the last `and`/`or` in it (as Segment parses).
            operator = value
        token = tokens.pop(0) if tokens else None
    if len(nodes) > 1:
        return {"type": "group", "operator": operator, "children": nodes}
    return nodes[0] if nodes else None


def parse_trigger(trigger: str) -> dict:
    """A subscription trigger -> the condition tree Segment evaluates (the shape
    of @segment/destination-subscriptions parseFql), or `{"error": ...}`."""
    try:
        ast = _fql_parse(_fql_lex(trigger))
        if ast is None or not isinstance(ast, dict) or "type" not in ast:
            raise TriggerError(f"no condition cdpio or Segment can evaluate in {trigger!r}")
    except TriggerError as exc:
        return {"error": str(exc)}
    if ast["type"] != "group":
        return {"type": "group", "operator": "and", "children": [ast]}
    return ast


def _get(obj: Any, path: str) -> Any:
    for key in re.findall(r"[^[.\]]+", path or ""):
        if obj is None or obj is False or obj == "" or (_is_number(obj) and not obj):
            return obj  # JavaScript's `previous && previous[key]` on a falsy value
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, (list, str)) and key.isdigit() and int(key) < len(obj):
            obj = obj[int(key)]
        else:
            return None
    return obj


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _js_number(value: Any) -> float:
    if value is None:
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _check_value(actual: Any, operator: str, expected: Any = None) -> bool:
    if operator == "=":
        return isinstance(actual, str) and actual == _js_string(expected)
    if operator == "!=":
        return not (isinstance(actual, str) and actual == _js_string(expected))
    if operator in ("number_equals", "number_not_equals", "<", "<=", ">", ">="):
        if not _is_number(actual):
            return False
        a, e = float(actual), _js_number(expected)
        return {
            "number_equals": a == e,
            "number_not_equals": a != e,
            "<": a < e,
            "<=": a <= e,
            ">": a > e,
            ">=": a >= e,
        }[operator]
    text = _js_string(expected)
    if operator in ("contains", "starts_with", "ends_with", "not_contains", "not_starts_with", "not_ends_with"):
        if not isinstance(actual, str):
            return False
        hit = {"contains": text in actual, "starts_with": actual.startswith(text), "ends_with": actual.endswith(text)}[
            operator.replace("not_", "")
        ]
        return not hit if operator.startswith("not_") else hit
    if operator == "exists":
        return actual is not None
    if operator == "not_exists":
        return actual is None
    if operator == "is_true":
        return actual is True
    if operator == "is_false":
        return actual is False
    return False


def _field(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def _check_condition(cond: dict, data: Any) -> bool:
    ctype = cond.get("type")
    if ctype == "group":
        return _check_group(cond, data)
    if ctype in ("event-type", "event", "name", "userId"):
        key = "type" if ctype == "event-type" else ctype
        return _check_value(_field(data, key), cond.get("operator", ""), cond.get("value"))
    if ctype in _NESTED:
        return _check_value(
            _get(_field(data, _NESTED[ctype]), cond.get("name", "")), cond.get("operator", ""), cond.get("value")
        )
    return False


def _check_group(cond: dict, data: Any) -> bool:
    children = cond.get("children") or []
    if cond.get("operator") == "and":
        return all(_check_condition(c, data) for c in children)
    if cond.get("operator") == "or":
        return any(_check_condition(c, data) for c in children)
    return False


def condition_matches(ast: dict, data: Any) -> bool:
    """Evaluate a parsed trigger against a message (destination-subscriptions validate)."""
    if not isinstance(ast, dict) or ast.get("error") or data is None:
        return False
    return _check_group(ast, data)


def trigger_matches(trigger: str, msg: Any) -> bool:
    """Whether a subscription's trigger matches the message; a trigger Segment
    cannot parse matches nothing."""
    return condition_matches(_parsed_trigger(trigger), msg)


_TRIGGER_CACHE: dict[str, dict] = {}


def _parsed_trigger(trigger: str) -> dict:
    ast = _TRIGGER_CACHE.get(trigger)
    if ast is None:
        ast = _TRIGGER_CACHE[trigger] = parse_trigger(trigger)
    return ast


def check_trigger(trigger: str) -> None:
    """Raise TriggerError for a trigger Segment cannot parse (it would match nothing)."""
    ast = _parsed_trigger(trigger)
    if "error" in ast:
        raise TriggerError(f"Segment cannot parse the trigger {trigger!r}: {ast['error']}")

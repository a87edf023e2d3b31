"""Customer.io cross-checks (`cdpio audit --plan`): can a planned trait ever equal a segment condition's string?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdpio_cli.messages import show_value
from cdpio_cli.plan.check import expected_text, schema_at

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
        spec = schema_at(root, list(err.schema_path))
        if keyword == "type" and spec is not None:  # a type behind a $ref or in an allOf
            return _type_misfit(spec)
        return AttributeFit(False, "value", expected_text(keyword, spec))
    return AttributeFit(False, "value", f"a value the plan's rule {show_value(schema)} allows")


def _type_misfit(planned_type: Any) -> AttributeFit:
    types = planned_type if isinstance(planned_type, list) else [planned_type]
    stored = " or ".join(_STORED_AS.get(t, "JSON text") for t in types)
    return AttributeFit(False, "type", f"{expected_text('type', planned_type)}, which Customer.io stores as {stored}")

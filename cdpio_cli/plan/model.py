"""The tracking plan as cdpio holds it: a rule per event and per message kind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema_rs

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


@dataclass
class ObjectRule:
    """What one kind of message carries: property schemas and required keys."""

    where: str  # `event "Signed Up"`, `identify`
    field: str  # properties | traits
    properties: dict[str, Any]
    required: list[str]
    line: int | None = None
    known: frozenset[str] = frozenset()
    validator: jsonschema_rs.Validator | None = None  # set by compile()

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": self.properties, "required": self.required}

    def compile(self) -> jsonschema_rs.Validator:
        """Compile the schema (plan loading does, so a bad schema is an error there)."""
        import jsonschema_rs

        self.known = frozenset(self.properties) | frozenset(self.required)
        self.validator = jsonschema_rs.validator_for(self.schema(), validate_formats=True)
        return self.validator

    def compiled(self) -> jsonschema_rs.Validator:
        return self.validator if self.validator is not None else self.compile()

    def closed_schema(self) -> dict[str, Any]:
        """schema() with every key the rule does not plan made invalid: an object
        valid under it is valid under schema() and has only planned keys.  (It
        only adds constraints: a required-only key gets the empty schema, which
        asserts nothing, and `additionalProperties: false` rejects the rest.)"""
        properties: dict[str, Any] = {key: {} for key in self.required if key not in self.properties}
        properties.update(self.properties)
        return {**self.schema(), "properties": properties, "additionalProperties": False}

    def compile_closed(self) -> jsonschema_rs.Validator:
        import jsonschema_rs

        return jsonschema_rs.validator_for(self.closed_schema(), validate_formats=True)

    def errors(self, obj: dict[str, Any]) -> Iterator[jsonschema_rs.ValidationError]:
        return self.compiled().iter_errors(obj)


@dataclass
class Plan:
    path: str | None
    events: dict[str, ObjectRule] | None  # None: the plan does not list events
    sections: dict[str, ObjectRule]  # identify/page/screen/group
    unplanned_events: str = "error"
    unplanned_properties: str = "warning"
    name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # the plan as written (for diff and dump)
    # key path -> line in the file, e.g. ("identify", "traits", "is_trial")
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def line_of(self, *at: str | int) -> int | None:
        return self.lines.get(tuple(at))

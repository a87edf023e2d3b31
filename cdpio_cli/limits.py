"""Customer.io's limits, and the operations it rejects for them: one table.

`cdpio lint` (the customerio/* limit rules), `cdpio explain` (through
`mapping.map_message`) and the sandbox's Track API (`sandbox/operations.py`)
all read this module, so the three give the same verdict on the same message.
docs/lint.md shows the table.

Public sources:
- [invalid] "Invalid API requests", the 400 messages verbatim:
  https://docs.customer.io/journeys/invalid-api-requests
- [track] Track API OpenAPI, https://docs.customer.io/files/journeys-track.json
  (the limits in the identify and track operations' descriptions)
- [reserved] Reserved attributes (`id`: "String, max 150 characters"):
  https://docs.customer.io/messaging/people/reserved-attributes/
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

INVALID_URL = "https://docs.customer.io/journeys/invalid-api-requests"
RESERVED_URL = "https://docs.customer.io/messaging/people/reserved-attributes/"


@dataclass(frozen=True)
class Limit:
    """One documented limit: over `maximum`, Customer.io answers 400 with `error`."""

    rule: str  # the lint rule id that reports it
    what: str
    noun: str  # how a finding names the measured thing
    maximum: int
    unit: str  # "bytes" (UTF-8) or "attributes"
    error: str  # Customer.io's 400 message
    source: str


EVENT_NAME = Limit(
    "customerio/event-name-too-long",
    "event name (track and screen)",
    "event name",
    100,
    "bytes",
    "event name cannot be longer than 100 bytes",
    INVALID_URL,
)
EVENT_DATA = Limit(
    "customerio/event-data-too-large",
    "event data (properties, as compact JSON)",
    "event data",
    100_000,
    "bytes",
    "event data cannot be longer than 100000 bytes",
    INVALID_URL,
)
ATTRIBUTE_COUNT = Limit(
    "customerio/too-many-attributes",
    "attributes in one identify call",
    "identify",
    300,
    "attributes",
    "cannot identify more than 300 attributes in one request",
    INVALID_URL,
)
ATTRIBUTE_NAME = Limit(
    "customerio/attribute-name-too-long",
    "attribute (trait) name",
    "attribute name",
    150,
    "bytes",
    "attribute name cannot be longer than 150 bytes",
    INVALID_URL,
)
ATTRIBUTE_VALUE = Limit(
    "customerio/attribute-value-too-long",
    "attribute (trait) value; text, or a list or object as JSON",
    "attribute",
    1000,
    "bytes",
    "value for attribute '{name}' cannot be longer than 1000 bytes",
    INVALID_URL,
)
# The reserved-attributes page says 150 characters; the Track spec says bytes.
# Not on the "invalid API requests" page, so the error text is ours.
PERSON_ID = Limit(
    "customerio/id-too-long",
    "person id (userId)",
    "id",
    150,
    "bytes",
    "id attribute cannot be longer than 150 bytes",
    RESERVED_URL,
)

TABLE: tuple[Limit, ...] = (EVENT_NAME, EVENT_DATA, ATTRIBUTE_COUNT, ATTRIBUTE_NAME, ATTRIBUTE_VALUE, PERSON_ID)

# Identifier rules: Customer.io's 400 messages for an id that is not a
# non-empty string [invalid], and a blank event name [invalid].
ID_NOT_STRING = "id attribute must be a string value"
ID_EMPTY = "id attribute cannot be an empty string"
ID_MISSING = "id attribute must be present"
EVENT_NAME_BLANK = "event name must not be blank"
EVENT_DATA_NOT_HASH = 'event data must be a hash (e.g., send "data":{} instead of "data":"")'

# Not rejections: events older than this do not trigger campaigns [track].
CAMPAIGN_WINDOW = timedelta(hours=72)

# The App API's rate limit, requests per second (the App API OpenAPI document,
# journeys-app.json info: "10 requests per second"; docs/contracts.md): cdpio's
# own reads keep under it and the sandbox enforces it.
APP_API_RATE = 10


@dataclass(frozen=True)
class Violation:
    """Why Customer.io rejects one operation."""

    limit: Limit | None  # None for the identifier rules (not a size)
    reason: str  # Track v2 `errors[].reason`: too_long, too_many, invalid, required
    field: str
    message: str  # Customer.io's 400 message
    size: int | None = None  # what was measured, in the limit's unit

    @property
    def rule(self) -> str:
        return self.limit.rule if self.limit else "customerio/dropped"

    def describe(self) -> str:
        """`event name is 120 bytes; Customer.io's limit is 100` (for people)."""
        if self.limit is None or self.size is None:
            return self.message
        noun = self.limit.noun
        if self.limit in (ATTRIBUTE_NAME, ATTRIBUTE_VALUE):
            noun += f" {self.field.split('.', 1)[-1][:40]!r}"
        verb = "has" if self.limit.unit == "attributes" else "is"
        return f"{noun} {verb} {self.size:,} {self.limit.unit}; Customer.io's limit is {self.limit.maximum:,}"


def utf8_len(text: str, limit: int) -> int:
    """UTF-8 length, without encoding strings that cannot be over `limit`
    (at most four bytes a character): the sandbox checks every event."""
    return len(text) if len(text) * 4 <= limit else len(text.encode("utf-8"))


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (what Customer.io measures event data by)."""
    try:
        return len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except TypeError:  # an integer over 64 bits, a float key...: the slower encoder copes
        import json

        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def value_size(value: Any) -> int:
    """An attribute value's size: text in UTF-8, lists and objects as JSON;
    numbers and booleans are never too long."""
    if type(value) is str:
        return utf8_len(value, ATTRIBUTE_VALUE.maximum)
    if isinstance(value, (dict, list)):
        return json_size(value)
    return 0


def check_id(value: Any, field: str = "identifiers.id") -> Violation | None:
    if type(value) is not str:
        return Violation(None, "invalid", field, ID_NOT_STRING)
    if value == "":
        return Violation(None, "invalid", field, ID_EMPTY)
    size = utf8_len(value, PERSON_ID.maximum)
    if size > PERSON_ID.maximum:
        return Violation(PERSON_ID, "too_long", field, PERSON_ID.error, size)
    return None


def attribute_violations(attrs: dict, field: str = "attributes") -> Iterator[Violation]:
    """Every limit an identify's attributes break, in Customer.io's order
    (the count first, then each attribute's name and value)."""
    if len(attrs) > ATTRIBUTE_COUNT.maximum:
        yield Violation(ATTRIBUTE_COUNT, "too_many", field, ATTRIBUTE_COUNT.error, len(attrs))
    for name, value in attrs.items():
        name = str(name)
        size = utf8_len(name, ATTRIBUTE_NAME.maximum)
        if size > ATTRIBUTE_NAME.maximum:
            yield Violation(ATTRIBUTE_NAME, "too_long", f"{field}.{name[:40]}", ATTRIBUTE_NAME.error, size)
        size = value_size(value)
        if size > ATTRIBUTE_VALUE.maximum:
            yield Violation(
                ATTRIBUTE_VALUE, "too_long", f"{field}.{name}", ATTRIBUTE_VALUE.error.format(name=name), size
            )


def check_event_name(name: Any, action: str = "event") -> Violation | None:
    """A blank name, or one over 100 bytes.  Customer.io trims the name first
    [track].  A page's name is its URL: whether the 100-byte limit applies to
    page views is not documented, so a long URL is not treated as rejected."""
    if type(name) is not str or name.strip() == "":
        return Violation(None, "required", "name", EVENT_NAME_BLANK)
    if action != "page" and len(name) * 4 > EVENT_NAME.maximum:
        size = len(name.strip().encode("utf-8"))
        if size > EVENT_NAME.maximum:
            return Violation(EVENT_NAME, "too_long", "name", EVENT_NAME.error, size)
    return None


def check_event_data_size(size: int) -> Violation | None:
    if size > EVENT_DATA.maximum:
        return Violation(EVENT_DATA, "too_long", "attributes", EVENT_DATA.error, size)
    return None


def operation_violations(op: Any) -> list[Violation]:
    """The limit violations of one Track v2 operation, as the destination
    builds it (`mapping.map_message`).  Structure is the mapping's concern;
    this checks ids, attributes, event names and event data."""
    if not isinstance(op, dict):
        return []
    out: list[Violation] = []
    otype, action = op.get("type"), op.get("action")
    attrs = op.get("attributes")
    if otype == "person":
        ids = op.get("identifiers")
        if isinstance(ids, dict) and "id" in ids:
            err = check_id(ids["id"])
            if err:
                out.append(err)
        if action == "identify" and isinstance(attrs, dict):
            out.extend(attribute_violations(attrs))
        elif action in ("event", "page", "screen"):
            err = check_event_name(op.get("name"), action)
            if err:
                out.append(err)
            if isinstance(attrs, dict) and attrs:
                err = check_event_data_size(json_size(attrs))
                if err:
                    out.append(err)
    elif otype == "object" and action in ("identify", "identify_anonymous") and isinstance(attrs, dict):
        out.extend(attribute_violations(attrs))
    return out


def rejection_reason(violation: Violation) -> str:
    """The drop reason the sandbox records (what Segment's Delivery Overview
    shows as a failed delivery with Customer.io's 400 message)."""
    return f"CUSTOMERIO_400: {violation.message}"

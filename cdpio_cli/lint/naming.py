"""Name and key helpers for the naming/* rules (the linter caches their
verdicts per distinct string)."""

from __future__ import annotations

import re
from typing import Any

_CONNECTORS = {
    "a",
    "an",
    "and",
    "as",
    "at",
    "by",
    "for",
    "from",
    "in",
    "into",
    "of",
    "on",
    "onto",
    "or",
    "over",
    "per",
    "the",
    "to",
    "via",
    "vs",
    "with",
}
_LOWER_BRANDS = {
    "iOS",
    "iPadOS",
    "iPhone",
    "iPad",
    "iPod",
    "iCloud",
    "macOS",
    "tvOS",
    "watchOS",
    "visionOS",
    "eBay",
    "eCommerce",
    "npm",
    "gRPC",
}
_PAST_IRREGULAR = {
    "Sent",
    "Built",
    "Made",
    "Paid",
    "Won",
    "Lost",
    "Began",
    "Done",
    "Bought",
    "Sold",
    "Read",
    "Set",
    "Left",
    "Met",
    "Put",
    "Got",
    "Gave",
    "Given",
    "Taken",
    "Seen",
    "Shown",
    "Known",
    "Written",
    "Chosen",
    "Hidden",
    "Held",
    "Kept",
    "Found",
    "Brought",
    "Cut",
    "Upgraded",
    "Downgraded",
    "Reset",
    "Shared",
}

_DYNAMIC_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # UUID
    r"|[^\s@]+@[^\s@]+\.[A-Za-z]{2,}"  # email
    r"|\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}"  # dates
    r"|(?<![A-Za-z])(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}"  # hex ids
    r"|\d{3,}"
)  # numbers
_SNAKE_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
_CAMEL_RE = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$")
_SPLIT_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NORMALISE_RE = re.compile(r"[\W_]+")
# Keys Segment's spec or the Customer.io destination define in a fixed style:
# using them is not "mixing styles".
_RESERVED_KEYS = {
    "firstName",
    "lastName",
    "createdAt",
    "first_name",
    "last_name",
    "created_at",
    "userId",
    "anonymousId",
    "objectId",
    "objectTypeId",
    "object_type_id",
    "objectAttributes",
    "relationshipAttributes",
    "deliveryId",
    "actionName",
    "actionValue",
    "actionType",
    "postalCode",
    "employee_count",
}


def title_case_problem(name: str) -> str | None:
    """Why `name` is not Title Case (None when it is)."""
    if name != name.strip():
        return "has leading or trailing spaces"
    if "  " in name:
        return "has double spaces"
    if "_" in name:
        return "uses underscores instead of spaces"
    words = name.split(" ")
    if len(words) == 1 and _CAMEL_RE.match(name):
        return "is camelCase"
    for i, word in enumerate(words):
        for part in word.split("-")[:1]:
            first = next((ch for ch in part if ch.isalnum()), "")
            if not first or first.isupper() or first.isdigit():
                continue
            if i > 0 and part.lower() in _CONNECTORS:
                continue
            if part in _LOWER_BRANDS or (len(part) > 1 and part[1].isupper()):
                continue
            return f"{part!r} is lowercase"
    return None


def suggest_title_case(name: str) -> str:
    words = []
    for word in re.split(r"[\s_-]+", name.strip()):
        if word in _LOWER_BRANDS or word.isupper():
            words.append(word)
        elif word:
            words.extend(_SPLIT_CAMEL_RE.sub(" ", word).split(" "))
    out = []
    for i, w in enumerate(words):
        if w in _LOWER_BRANDS or w.isupper() or (i > 0 and w.lower() in _CONNECTORS):
            out.append(w if w in _LOWER_BRANDS or w.isupper() else w.lower())
        else:
            out.append(w[:1].upper() + w[1:])
    return " ".join(out)


def is_object_action(name: str) -> bool:
    words = name.split()
    if len(words) < 2:
        return False
    last = words[-1]
    return last.endswith("ed") or last in _PAST_IRREGULAR


def dynamic_value(text: str) -> str | None:
    m = _DYNAMIC_RE.search(text)
    return m.group(0) if m else None


def key_style(key: str) -> str | None:
    if key in _RESERVED_KEYS:
        return None
    if _SNAKE_RE.match(key):
        return "snake_case"
    if _CAMEL_RE.match(key):
        return "camelCase"
    return None


def normalise(text: str) -> str:
    return _NORMALISE_RE.sub("", text.casefold())


# JSON's types by Python type (the common case of value_type, one lookup).
TYPE_NAMES: dict[type, str] = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    dict: "object",
    list: "array",
}


def value_type(value: Any) -> str | None:
    if value is None:
        return None  # clearing a trait is not a type change
    name = TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__

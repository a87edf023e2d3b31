"""The sandbox workspace's data model: people and their activities.

Activities keep their data as compact JSON bytes: a replay of a million
events must fit in a few hundred MB.
"""

from __future__ import annotations

from typing import Any

import orjson

# An activity is a plain tuple (seq, type, name, timestamp, data as JSON bytes):
# cheap to build, and the garbage collector stops tracking tuples of atoms.
Activity = tuple
SEQ, TYPE, NAME, TIMESTAMP, DATA = range(5)


class Person:
    __slots__ = (
        "cio_id",
        "id",
        "email",
        "attributes",
        "timestamps",
        "devices",
        "unsubscribed",
        "activities",
        "anonymous_ids",
        "created",
    )

    def __init__(self, cio_id: str, created: int):
        self.cio_id = cio_id
        self.id: str | None = None
        self.email: str | None = None
        self.attributes: dict[str, Any] = {}
        self.timestamps: dict[str, int] = {}
        self.devices: dict[str, dict] = {}
        self.unsubscribed = False
        self.activities: list[Activity] = []
        self.anonymous_ids: set[str] = set()
        self.created = created

    def identifiers(self) -> dict:
        return {"id": self.id, "email": self.email, "cio_id": self.cio_id}


def compact_json(value: Any) -> bytes:
    """JSON bytes sized to fit: orjson's own result keeps a >= 4 KB buffer,
    which would make every stored activity cost 4 KB."""
    return memoryview(orjson.dumps(value)).tobytes()


def unix_time(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def stringify(value: Any) -> str:
    """The App API returns every attribute value as a string."""
    if type(value) is str:
        return value
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


MISSING = object()  # an attribute the person does not have


def attribute_change(name: str, before: Any, after: Any) -> dict:
    """Attribute-change activity data, as documented: {attr: {from, to}}, both
    strings, "from" empty when the person did not have the attribute
    (journeys-track.json #/components/schemas/attributeChangeAction)."""
    return {
        name: {"from": "" if before is None else stringify(before), "to": "" if after is None else stringify(after)}
    }

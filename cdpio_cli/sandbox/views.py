"""The App API's views of a sandbox person: attributes, and pages of activities."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import orjson

from cdpio_cli.sandbox.operations import EVENT_ACTIONS
from cdpio_cli.sandbox.people import DATA, NAME, SEQ, TIMESTAMP, TYPE, Activity, Person, stringify

# Activity types whose `name` query parameter matches ("search by event or
# attribute name"); screens by their name too.
ATTRIBUTE_ACTIVITIES = ("attribute_change", "failed_attribute_change")
NAMED_ACTIVITIES = ("event", "screen", *ATTRIBUTE_ACTIVITIES)
# An undocumented field on every App API object the sandbox returns.
UNKNOWN_FIELD = "sandbox_unannounced_field"
UNKNOWN_VALUE = {"note": "a field the published schema does not list; clients must ignore it"}


def encode_cursor(timestamp: int, seq: int) -> str:
    """An opaque `start`/`next` cursor: the position after which the next page begins."""
    return base64.urlsafe_b64encode(f"sbx1:{timestamp}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, ts, seq = text.split(":")
        if tag != "sbx1":
            raise ValueError(tag)
        return int(ts), int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"start {cursor!r} is not a cursor from a `next`") from exc


def attributes_view(person: Person) -> dict:
    attributes = {k: stringify(v) for k, v in person.attributes.items()}
    attributes["cio_id"] = person.cio_id
    attributes["_created_in_customerio_at"] = str(person.created)
    if person.id is not None:
        attributes["id"] = person.id
    if person.email is not None:
        attributes["email"] = person.email
    return {
        "customer": {
            "id": person.id,
            "identifiers": person.identifiers(),
            "attributes": attributes,
            "timestamps": dict(person.timestamps),
            "unsubscribed": person.unsubscribed,
            "devices": [
                {
                    "id": d["id"],
                    "platform": d["platform"],
                    "last_used": d["last_used"],
                    "attributes": d["attributes"],
                }
                for d in person.devices.values()
            ],
        }
    }


def activities_view(
    person: Person,
    *,
    type_: str | None = None,
    name: str | None = None,
    limit: int = 10,
    start: str | None = None,
    event_data: bool = False,
) -> tuple[list[dict], str | None]:
    """One page of `GET /v1/customers/{id}/activities`, newest first, and
    the opaque cursor of the next page (None on the last page).

    The objects carry only documented fields
    (journeys-track.json #/components/schemas/activityObject): `name` on
    event and screen, `url` on page, attribute-change `data` as
    {attr: {from, to}}.  Event/page/screen `data` (the event's properties)
    is undocumented and only present with `event_data`.
    ValueError: `start` is not a cursor this workspace issued."""
    selected: Iterable[Activity] = person.activities
    if type_:
        selected = [a for a in selected if a[TYPE] == type_]
    if name:
        # "search by event or attribute name": pages have no name to match.
        selected = [a for a in selected if a[NAME] == name and a[TYPE] in NAMED_ACTIVITIES]
    newest = sorted(selected, key=lambda a: (a[TIMESTAMP], a[SEQ]), reverse=True)
    if start:
        after = decode_cursor(start)
        newest = [a for a in newest if (a[TIMESTAMP], a[SEQ]) < after]
    page = newest[:limit]
    cursor = encode_cursor(page[-1][TIMESTAMP], page[-1][SEQ]) if len(newest) > limit else None
    ids = person.identifiers()
    return [_activity_object(a, person.id, ids, event_data) for a in page], cursor


def _activity_object(a: Activity, customer_id: str | None, ids: dict, event_data: bool) -> dict:
    out: dict[str, Any] = {
        "id": f"01SBX{a[SEQ]:021d}",
        "type": a[TYPE],
        "timestamp": a[TIMESTAMP],
        "customer_id": customer_id,
        "customer_identifiers": ids,
    }
    if a[TYPE] == "page":
        out["url"] = a[NAME]
    elif a[TYPE] in ("event", "screen"):
        out["name"] = a[NAME]
    if a[DATA] and (a[TYPE] in ATTRIBUTE_ACTIVITIES or (event_data and a[TYPE] in EVENT_ACTIONS)):
        out["data"] = orjson.loads(a[DATA])
    # Customer.io adds fields without notice (journeys-app.json info):
    # one the client has never heard of proves that it ignores them.
    out[UNKNOWN_FIELD] = UNKNOWN_VALUE
    return out

"""The encoded operation of the commonest messages, without the builders.

Replay's Customer.io route maps and encodes every message, and nearly all of
them are a track, page or identify of a plain user id: one Track v2 operation
whose fields are the message's own, untouched.  `encoded_operation` writes that
operation's bytes straight from the message and answers None for anything
else (no user id, an email or `cio_` id, a date to convert inside the
properties, a nested object, a semantic event, a missing field...), which then
takes the one mapping (`map_message`).  It never decides anything the mapping does not:
tests/test_mapping_encoded.py holds its bytes equal to
`messages.encode(op)` for the one operation `map_message(msg,
check_limits=False)` gives, key order included, on generated messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from cdpio_cli.mapping.catalog import SEMANTIC_EVENTS

_dumps = orjson.dumps
_fromisoformat = datetime.fromisoformat
# Traits createUpdatePerson moves elsewhere or turns into a relationship.
_TRAITS_MOVED = frozenset(
    ("createdAt", "created_at", "object_type_id", "objectTypeId", "relationshipAttributes", "objectId")
)


def _plain(obj: dict) -> bool:
    """No value the timestamp conversion would touch: no nested object, no
    string shaped like an ISO date (`YYYY-MM-DD...`: its `-` at 4 and 7)."""
    for value in obj.values():
        tv = type(value)
        if tv is dict or (tv is str and len(value) >= 10 and value[4] == "-" and value[7] == "-"):
            return False
    return True


def _dated(value: str) -> bool:
    """Would the conversion look at this string (iso_to_unix's first test)?"""
    return len(value) >= 10 and value[4] == "-"


def encoded_operation(msg: dict[str, Any]) -> bytes | None:
    """The one Track v2 operation `map_message(msg, check_limits=False)`
    gives, encoded as `messages.encode` writes it, for a track (not a semantic
    event), page or identify message of a plain user id with default fields;
    None for anything else (ask `map_message`)."""
    get = msg.get
    uid = get("userId")
    if type(uid) is not str or not uid or "@" in uid or uid[:4] == "cio_":
        return None  # no id, or one resolve_identifiers reads as an email or a cio id
    ts = get("timestamp")
    if type(ts) is not str or "-" not in ts:
        return None
    try:
        when = _fromisoformat(ts)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    if get("type") == "identify":
        traits = get("traits")
        if type(traits) is not dict or not traits.keys().isdisjoint(_TRAITS_MOVED) or not _plain(traits):
            return None
        anonymous_id = get("anonymousId")
        if anonymous_id:
            traits = {**traits, "anonymous_id": anonymous_id}
        body: dict[str, Any] = {"type": "person", "action": "identify", "attributes": traits}
    else:
        event = _person_event(msg)
        if event is None:
            return None
        body = event
    body["timestamp"] = int(when.timestamp())
    body["identifiers"] = {"id": uid}
    try:
        return _dumps(body)
    except TypeError:  # a key or a number orjson refuses: messages.encode's other paths
        return None


def _person_event(msg: dict[str, Any]) -> dict[str, Any] | None:
    """trackEvent's or trackPageView's body up to its timestamp."""
    get = msg.get
    mtype, props = get("type"), get("properties")
    if mtype == "track":
        name = get("event")
        if type(name) is not str or not name or name in SEMANTIC_EVENTS:
            return None
        action = "event"
    elif mtype == "page" and type(props) is dict:
        name = props.get("url")
        if type(name) is not str or not name:
            return None
        action = "page"
    else:
        return None
    mid = get("messageId")
    if _dated(name) or type(mid) is not str or not mid or _dated(mid):
        return None
    body: dict[str, Any] = {"type": "person", "action": action, "name": name, "id": mid}
    anonymous_id = get("anonymousId")
    if props is not None:
        if type(props) is not dict or not _plain(props):
            return None
        body["attributes"] = {**props, "anonymous_id": anonymous_id} if anonymous_id else props
    elif anonymous_id:
        return None  # the mapping adds attributes after the timestamp then
    return body

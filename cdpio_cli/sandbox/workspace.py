"""An in-memory Customer.io workspace.

People (id / email / cio_id), their attributes, activities, devices and
relationships; objects; suppression; merges; anonymous events that join a
person once an identify links their anonymous_id.

Every write goes through `Workspace.apply(op)`, which takes a Track API v2
operation (docs/contracts.md, "Customer.io Track API").  The Track v1 endpoints
translate their requests into the same operations, so both APIs enforce the
same documented limits and return the same messages (limits.py; docs/lint.md).

Activities keep their data as compact JSON bytes: a replay of a million
events must fit in a few hundred MB.
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from cdpio_cli import limits

PERSON_IDENTIFIERS = ("id", "email", "cio_id")
EVENT_ACTIONS = ("event", "page", "screen")
CONTENT_ACTIONS = ("viewed_content", "clicked_content")
PERSON_ACTIONS = (
    "identify",
    *EVENT_ACTIONS,
    "delete",
    "suppress",
    "unsuppress",
    "add_device",
    "delete_device",
    "add_relationships",
    "delete_relationships",
    "merge",
    *CONTENT_ACTIONS,
)
OBJECT_ACTIONS = ("identify", "identify_anonymous", "delete", "add_relationships", "delete_relationships")
# Actions that may address a person by anonymous_id alone.
ANONYMOUS_OK = ("identify", *EVENT_ACTIONS, *CONTENT_ACTIONS)
# Activity types whose `name` query parameter matches ("search by event or
# attribute name"); screens by their name too.
ATTRIBUTE_ACTIVITIES = ("attribute_change", "failed_attribute_change")
NAMED_ACTIVITIES = ("event", "screen", *ATTRIBUTE_ACTIVITIES)
# An undocumented field on every App API object the sandbox returns.
UNKNOWN_FIELD = "sandbox_unannounced_field"
UNKNOWN_VALUE = {"note": "a field the published schema does not list; clients must ignore it"}
RESERVED_ATTRIBUTES = ("_update", "_timestamp", "cio_relationships", "cio_subscription_preferences")


@dataclass(frozen=True)
class OpError:
    """Why Customer.io rejected one operation (v2 `errors[]` entry, v1 `meta.error`)."""

    reason: str
    field: str
    message: str

    def as_v2(self, index: int | None = None) -> dict:
        out: dict[str, Any] = {"reason": self.reason, "field": self.field, "message": self.message}
        if index is not None:
            out = {"batch_index": index, **out}
        return out


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


def _now() -> int:
    return int(time.time())


def compact_json(value: Any) -> bytes:
    """JSON bytes sized to fit: orjson's own result keeps a >= 4 KB buffer,
    which would make every stored activity cost 4 KB."""
    return memoryview(orjson.dumps(value)).tobytes()


def _json_size(value: Any) -> int:
    return len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))


def _unix(value: Any) -> int | None:
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


def _op_error(violation: limits.Violation | None) -> OpError | None:
    if violation is None:
        return None
    return OpError(violation.reason, violation.field, violation.message)


def check_id(value: Any, field: str = "identifiers.id") -> OpError | None:
    """Customer.io's id rules (cdpio_cli/limits.py, the one table)."""
    return _op_error(limits.check_id(value, field))


def check_attributes(attrs: Any, field: str = "attributes") -> OpError | None:
    if not isinstance(attrs, dict):
        return OpError("invalid", field, "attributes must be an object")
    return _op_error(next(limits.attribute_violations(attrs, field), None))


def check_event(name: Any, data: Any, action: str = "event") -> OpError | None:
    err = _check_event(name, data, action)
    return err if isinstance(err, OpError) else None


def _check_event(name: Any, data: Any, action: str = "event") -> OpError | bytes | None:
    """The error, or the event data as JSON (measured once, stored as is)."""
    err = limits.check_event_name(name, action)
    if err is not None:
        return _op_error(err)
    if data is None:
        return None
    if type(data) is not dict:
        return OpError("invalid", "attributes", limits.EVENT_DATA_NOT_HASH)
    if not data:
        return None
    blob = compact_json(data)
    return _op_error(limits.check_event_data_size(len(blob))) or blob


def identifier_from_path(value: str) -> tuple[str, str]:
    """Track v1 decides the identifier type from the value's shape (docs/contracts.md)."""
    if value.startswith("cio_"):
        return "cio_id", value[4:]
    if "@" in value and "." in value.rsplit("@", 1)[-1]:
        return "email", value
    return "id", value


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


class Workspace:
    """The people and objects of one Customer.io workspace."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.people: dict[str, Person] = {}
        self.by_id: dict[str, Person] = {}
        self.by_email: dict[str, Person] = {}
        self.anon_owner: dict[str, Person] = {}
        self.anon_events: dict[str, list[Activity]] = {}
        self.anon_attributes: dict[str, dict] = {}
        self.suppressed: set[tuple[str, str]] = set()
        self.objects: dict[tuple[str, str], dict] = {}
        self.seen_event_ids: set[str] = set()
        self.metrics: list[dict] = []
        self.failures: int = 0  # Attribute Update Failures (200, but not applied)
        self._seq = 0
        self._cio = 0

    # --- lookup ---------------------------------------------------------

    def find(self, kind: str, value: Any) -> Person | None:
        if not isinstance(value, str):
            value = str(value)
        if kind == "id":
            return self.by_id.get(value)
        if kind == "email":
            return self.by_email.get(value.lower())
        if kind == "cio_id":
            return self.people.get(value)
        return None

    def person_by(self, customer_id: str, id_type: str = "id") -> Person | None:
        """App API addressing: `customer_id` with `id_type` id | email | cio_id."""
        if id_type == "cio_id" and customer_id.startswith("cio_"):
            customer_id = customer_id[4:]
        return self.find(id_type, customer_id)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _create(self, kind: str, value: str, ts: int) -> Person:
        self._cio += 1
        person = Person(f"{0xA3000000 + self._cio:08x}", ts)
        self.people[person.cio_id] = person
        if kind == "id":
            person.id = value
            self.by_id[value] = person
        elif kind == "email":
            person.email = value
            self.by_email[value.lower()] = person
        return person

    def _is_suppressed(self, kind: str, value: str) -> bool:
        return bool(self.suppressed) and (kind, value.lower() if kind == "email" else value) in self.suppressed

    def _resolve(self, identifiers: dict, ts: int, create: bool) -> Person | None:
        kind, value = next(iter(identifiers.items()))
        value = str(value)
        if self._is_suppressed(kind, value):
            return None
        person = self.find(kind, value)
        if person is None and create and kind in ("id", "email"):
            person = self._create(kind, value, ts)
        return person

    # --- validation -----------------------------------------------------

    def validate(self, op: Any) -> OpError | None:
        if not isinstance(op, dict):
            return OpError("invalid", "", "each operation must be an object")
        otype = op.get("type")
        action = op.get("action")
        if otype == "person":
            if action not in PERSON_ACTIONS:
                return OpError("invalid", "action", f"unknown person action {action!r}")
            if action == "merge":
                for side in ("primary", "secondary"):
                    err = self._check_person_identifiers(op.get(side), side, allow_anonymous=False)
                    if err:
                        return err
                return None
            err = self._check_person_identifiers(
                op.get("identifiers"), "identifiers", allow_anonymous=action in ANONYMOUS_OK
            )
            if err:
                return err
            if action == "identify":
                return check_attributes(op.get("attributes") or {})
            if action in EVENT_ACTIONS:
                return check_event(op.get("name"), op.get("attributes"), action)
            if action in ("add_device", "delete_device"):
                device = op.get("device")
                if not isinstance(device, dict) or not device.get("token"):
                    return OpError("required", "device.token", "device token is required")
                if action == "add_device" and not device.get("platform"):
                    return OpError("required", "device.platform", "device platform is required")
            return None
        if otype == "object":
            if action not in OBJECT_ACTIONS:
                return OpError("invalid", "action", f"unknown object action {action!r}")
            ids = op.get("identifiers")
            if not isinstance(ids, dict) or not ids.get("object_id") or not ids.get("object_type_id"):
                return OpError("required", "identifiers", "object identifiers need object_type_id and object_id")
            if action in ("identify", "identify_anonymous") and op.get("attributes") is not None:
                return check_attributes(op.get("attributes"))
            return None
        if otype == "delivery":
            return None
        return OpError("invalid", "type", f"unknown type {otype!r}; expected person, object or delivery")

    @staticmethod
    def _check_person_identifiers(ids: Any, field: str, *, allow_anonymous: bool) -> OpError | None:
        if not isinstance(ids, dict) or not ids:
            return OpError("required", field, limits.ID_MISSING)
        if len(ids) != 1:
            return OpError("invalid", field, "cannot have multiple identifiers")
        kind, value = next(iter(ids.items()))
        if kind == "anonymous_id" and allow_anonymous:
            return (
                None
                if isinstance(value, str) and value
                else OpError("invalid", f"{field}.anonymous_id", "anonymous_id must be a non-empty string")
            )
        if kind not in PERSON_IDENTIFIERS:
            return OpError("invalid", field, f"unknown identifier {kind!r}; use id, email or cio_id")
        if kind == "id":
            return check_id(value, f"{field}.id")
        if not isinstance(value, str) or not value:
            return OpError("invalid", f"{field}.{kind}", f"{kind} must be a non-empty string")
        return None

    # --- apply ----------------------------------------------------------

    def apply(self, op: dict, *, validate: bool = True) -> OpError | None:
        """Validate and apply one v2 operation.  None means accepted."""
        if type(op) is dict and op.get("type") == "person" and op.get("action") in EVENT_ACTIONS:
            return self._apply_event(op)  # the hot path: most traffic is events
        if validate:
            err = self.validate(op)
            if err:
                return err
        ts = _unix(op.get("timestamp")) or _now()
        otype, action = op["type"], op["action"]
        if otype == "object":
            self._apply_object(op, action)
            return None
        if otype == "delivery":
            self.metrics.append(op)
            return None
        if action == "merge":
            self._merge(op["primary"], op["secondary"], ts)
            return None
        identifiers = op["identifiers"]
        if action == "identify":
            self._identify(identifiers, op.get("attributes") or {}, ts, op.get("cio_relationships"))
        elif action in CONTENT_ACTIONS:
            data = op.get("attributes")
            self._event(
                identifiers,
                action,
                op.get("name") or action,
                op.get("id"),
                data,
                compact_json(data) if data else None,
                ts,
            )
        elif action == "delete":
            person = self._resolve(identifiers, ts, create=False)
            if person:
                self._remove(person)
        elif action == "suppress":
            self._suppress(identifiers)
        elif action == "unsuppress":
            kind, value = next(iter(identifiers.items()))
            self.suppressed.discard((kind, value.lower() if kind == "email" else value))
        elif action == "add_device":
            person = self._resolve(identifiers, ts, create=True)
            if person:
                dev = op["device"]
                person.devices[str(dev["token"])] = {
                    "id": dev["token"],
                    "platform": dev.get("platform"),
                    "last_used": _unix(dev.get("last_used")) or ts,
                    "attributes": {k: stringify(v) for k, v in (dev.get("attributes") or {}).items()},
                }
                self._add_activity(person, "device_change", str(dev["token"]), ts, None)
        elif action == "delete_device":
            person = self._resolve(identifiers, ts, create=False)
            if person:
                person.devices.pop(str(op["device"]["token"]), None)
        elif action in ("add_relationships", "delete_relationships"):
            person = self._resolve(identifiers, ts, create=action == "add_relationships")
            if person:
                for rel in op.get("cio_relationships") or []:
                    key = self._object_key(rel.get("identifiers") if isinstance(rel, dict) else None)
                    if key:
                        self._relate(key, person.cio_id, add=action == "add_relationships")
        return None

    def _apply_event(self, op: dict) -> OpError | None:
        identifiers = op.get("identifiers")
        err = self._check_person_identifiers(identifiers, "identifiers", allow_anonymous=True)
        if err:
            return err
        data = op.get("attributes")
        checked = _check_event(op.get("name"), data, op.get("action"))
        if isinstance(checked, OpError):
            return checked
        ts = _unix(op.get("timestamp")) or _now()
        self._event(identifiers, op["action"], op["name"], op.get("id"), data, checked, ts)
        return None

    def apply_metric(self, body: dict) -> None:
        self.metrics.append(body)

    def _add_activity(self, person: Person, type_: str, name: str | None, ts: int, data: Any) -> None:
        person.activities.append((self._next_seq(), type_, name, ts, compact_json(data) if data else None))

    def _identify(self, identifiers: dict, attrs: dict, ts: int, relationships: Any) -> None:
        kind, value = next(iter(identifiers.items()))
        value = str(value)
        if kind == "anonymous_id":
            owner = self.anon_owner.get(value)
            if owner is not None and owner.cio_id in self.people:
                self._set_attributes(owner, attrs, ts, kind)
            else:
                self.anon_attributes.setdefault(value, {}).update(
                    {k: v for k, v in attrs.items() if k not in RESERVED_ATTRIBUTES}
                )
            return
        if self._is_suppressed(kind, value):
            return
        person = self.find(kind, value)
        if person is None:
            if attrs.get("_update") is True or kind == "cio_id":
                # cio_ids are assigned by Customer.io; `_update` only updates.
                return
            email = attrs.get("email")
            if kind == "id" and isinstance(email, str):
                # A new id with an existing email updates that person (docs/contracts.md).
                other = self.by_email.get(email.lower())
                if other is not None and other.id is None:
                    person = other
                    person.id = value
                    self.by_id[value] = person
            if person is None:
                person = self._create(kind, value, ts)
                person.timestamps["cio_id"] = ts
        self._set_attributes(person, attrs, ts, kind)
        if isinstance(relationships, list):
            for rel in relationships:
                key = self._object_key(rel.get("identifiers") if isinstance(rel, dict) else None)
                if key:
                    self._relate(key, person.cio_id, add=True)

    def _set_attributes(self, person: Person, attrs: dict, ts: int, addressed_by: str) -> None:
        current = person.attributes
        for name, value in attrs.items():
            if name in RESERVED_ATTRIBUTES:
                continue
            if name == "id":
                if value is not None and str(value) != person.id:
                    # Changing an id needs the person addressed by cio_id (docs/contracts.md).
                    if addressed_by != "cio_id" or str(value) in self.by_id:
                        self._failure(person, "id", ts)
                        continue
                    if person.id is not None:
                        self.by_id.pop(person.id, None)
                    person.id = str(value)
                    self.by_id[person.id] = person
                    person.timestamps["id"] = ts
                continue
            if name == "email":
                if not value:
                    if person.email:
                        self.by_email.pop(person.email.lower(), None)
                    person.email = None
                    continue
                value = str(value)
                if person.email is not None and person.email.lower() == value.lower():
                    continue
                other = self.by_email.get(value.lower())
                if other is not None and other is not person:
                    self._failure(person, "email", ts)
                    continue
                if person.email is not None:
                    self.by_email.pop(person.email.lower(), None)
                previous = person.email
                person.email = value
                self.by_email[value.lower()] = person
                person.timestamps["email"] = ts
                self._add_activity(person, "attribute_change", "email", ts, _change("email", previous, value))
                continue
            if name == "anonymous_id":
                if isinstance(value, str) and value:
                    self.link_anonymous(person, value)
                continue
            if name == "unsubscribed":
                person.unsubscribed = value is True or value == "true"
            if value is None or value == "":
                # Customer.io removes an attribute sent as null or "".
                if current.pop(name, None) is not None:
                    person.timestamps.pop(name, None)
                continue
            previous = current.get(name, _MISSING)
            if previous != value:
                current[name] = value
                person.timestamps[name] = ts
                self._add_activity(
                    person,
                    "attribute_change",
                    name,
                    ts,
                    _change(name, None if previous is _MISSING else previous, value),
                )

    def _failure(self, person: Person, attribute: str, ts: int) -> None:
        # Track answers 200 but logs an "Attribute Update Failure".
        self.failures += 1
        self._add_activity(person, "failed_attribute_change", attribute, ts, _change(attribute, None, None))

    def link_anonymous(self, person: Person, anonymous_id: str) -> None:
        """Anonymous events and traits join the person that an identify links them to."""
        owner = self.anon_owner.get(anonymous_id)
        if owner is person:
            return
        if owner is not None and owner.cio_id in self.people:
            return  # already merged into someone else; Customer.io keeps the first
        self.anon_owner[anonymous_id] = person
        person.anonymous_ids.add(anonymous_id)
        events = self.anon_events.pop(anonymous_id, None)
        if events:
            person.activities.extend(events)
            self._add_activity(
                person, "anon_merge", anonymous_id, _now(), {"anonymous_id": anonymous_id, "events": len(events)}
            )
        traits = self.anon_attributes.pop(anonymous_id, None)
        if traits:
            fresh = {k: v for k, v in traits.items() if k not in person.attributes}
            self._set_attributes(person, fresh, _now(), "anonymous_id")

    def _event(
        self, identifiers: dict, action: str, name: str, event_id: Any, data: Any, blob: bytes | None, ts: int
    ) -> None:
        if event_id:
            # Customer.io drops an event whose id it has already seen.
            if event_id in self.seen_event_ids:
                return
            self.seen_event_ids.add(event_id)
        self._seq += 1
        # Event names repeat: one shared string each instead of one per activity.
        activity = (self._seq, action, sys.intern(name.strip() if action in EVENT_ACTIONS else name), ts, blob)
        kind, value = next(iter(identifiers.items()))
        if kind == "anonymous_id":
            owner = self.anon_owner.get(value)
            if owner is not None and owner.cio_id in self.people:
                owner.activities.append(activity)
            else:
                self.anon_events.setdefault(value, []).append(activity)
            return
        person = self._resolve(identifiers, ts, create=True)
        if person is None:
            return
        if data:
            anon = data.get("anonymous_id")
            if anon and type(anon) is str and anon not in person.anonymous_ids:
                self.link_anonymous(person, anon)
        person.activities.append(activity)

    def _remove(self, person: Person) -> None:
        self.people.pop(person.cio_id, None)
        if person.id is not None and self.by_id.get(person.id) is person:
            del self.by_id[person.id]
        if person.email is not None and self.by_email.get(person.email.lower()) is person:
            del self.by_email[person.email.lower()]
        for _key, obj in self.objects.items():
            obj["relationships"].discard(person.cio_id)

    def _suppress(self, identifiers: dict) -> None:
        kind, value = next(iter(identifiers.items()))
        person = self.find(kind, value)
        # Suppression deletes the profile and blocks its identifiers.
        if person is not None:
            if person.id:
                self.suppressed.add(("id", person.id))
            if person.email:
                self.suppressed.add(("email", person.email.lower()))
            self._remove(person)
        if kind in ("id", "email"):
            self.suppressed.add((kind, str(value).lower() if kind == "email" else str(value)))

    def _merge(self, primary_ids: dict, secondary_ids: dict, ts: int) -> None:
        primary = self.find(*next(iter(primary_ids.items())))
        secondary = self.find(*next(iter(secondary_ids.items())))
        # The primary must already exist (docs/contracts.md); a missing secondary is a no-op.
        if primary is None or secondary is None or primary is secondary:
            return
        self._remove(secondary)
        for name, value in secondary.attributes.items():
            if name not in primary.attributes:
                primary.attributes[name] = value
                primary.timestamps[name] = secondary.timestamps.get(name, ts)
        if primary.email is None and secondary.email is not None:
            primary.email = secondary.email
            self.by_email[secondary.email.lower()] = primary
        for token, device in secondary.devices.items():
            primary.devices.setdefault(token, device)
        for anon in secondary.anonymous_ids:
            self.anon_owner[anon] = primary
            primary.anonymous_ids.add(anon)
        primary.activities.extend(secondary.activities)
        self._add_activity(
            primary,
            "profile_merge",
            None,
            ts,
            {"merged": {"id": secondary.id, "email": secondary.email, "cio_id": secondary.cio_id}},
        )

    # --- objects --------------------------------------------------------

    @staticmethod
    def _object_key(ids: Any) -> tuple[str, str] | None:
        if isinstance(ids, dict) and ids.get("object_id"):
            return str(ids.get("object_type_id") or "1"), str(ids["object_id"])
        return None

    def _relate(self, key: tuple[str, str], member: str, *, add: bool) -> None:
        obj = self.objects.get(key)
        if obj is None:
            if not add:
                return
            obj = self.objects[key] = {"attributes": {}, "relationships": set()}
        (obj["relationships"].add if add else obj["relationships"].discard)(member)

    def _apply_object(self, op: dict, action: str) -> None:
        key = self._object_key(op["identifiers"])
        if key is None:
            return
        if action == "delete":
            self.objects.pop(key, None)
            return
        add = action != "delete_relationships"
        if action in ("identify", "identify_anonymous"):
            obj = self.objects.setdefault(key, {"attributes": {}, "relationships": set()})
            obj["attributes"].update({k: v for k, v in (op.get("attributes") or {}).items() if v is not None})
        for rel in op.get("cio_relationships") or []:
            ids = rel.get("identifiers") if isinstance(rel, dict) else None
            if not isinstance(ids, dict) or len(ids) != 1:
                continue
            kind, value = next(iter(ids.items()))
            if kind == "anonymous_id":
                self._relate(key, f"anonymous:{value}", add=add)
                continue
            person = self.find(kind, value)
            if person is None and add and kind in ("id", "email"):
                person = self._create(kind, str(value), _now())
            if person is not None:
                self._relate(key, person.cio_id, add=add)

    # --- App API views --------------------------------------------------

    def attributes_view(self, person: Person) -> dict:
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
        self,
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
        return [self._activity_object(a, person.id, ids, event_data) for a in page], cursor

    @staticmethod
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

    def events(self, person: Person, type_: str | None = None) -> list[tuple[str, str | None]]:
        """(type, name) of a person's activities in arrival order; handy in tests."""
        return [(a[TYPE], a[NAME]) for a in person.activities if type_ is None or a[TYPE] == type_]

    def stats(self) -> dict:
        return {
            "people": len(self.people),
            "objects": len(self.objects),
            "object_types": len({k[0] for k in self.objects}),
            "anonymous_profiles": len(self.anon_events),
            "attribute_update_failures": self.failures,
        }


_MISSING = object()


def _change(name: str, before: Any, after: Any) -> dict:
    """Attribute-change activity data, as documented: {attr: {from, to}}, both
    strings, "from" empty when the person did not have the attribute
    (journeys-track.json #/components/schemas/attributeChangeAction)."""
    return {
        name: {"from": "" if before is None else stringify(before), "to": "" if after is None else stringify(after)}
    }

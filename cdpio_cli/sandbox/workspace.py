"""An in-memory Customer.io workspace.

People (id / email / cio_id), their attributes, activities, devices and
relationships; objects; suppression; merges; anonymous events that join a
person once an identify links their anonymous_id.

Every write goes through `Workspace.apply(op)`, which takes a Track API v2
operation (docs/contracts.md, "Customer.io Track API").  The Track v1 endpoints
translate their requests into the same operations, so both APIs enforce the
same documented limits and return the same messages (sandbox/operations.py
checks them against cdpio_cli/limits.py; docs/lint.md).  The data model is
sandbox/people.py; the App API's views of it are sandbox/views.py.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from cdpio_cli.sandbox.operations import (
    CONTENT_ACTIONS,
    EVENT_ACTIONS,
    RESERVED_ATTRIBUTES,
    OpError,
    check_person_identifiers,
    checked_event_data,
    validate_operation,
)
from cdpio_cli.sandbox.people import (
    MISSING,
    NAME,
    TYPE,
    Activity,
    Person,
    attribute_change,
    compact_json,
    stringify,
    unix_time,
)


def _now() -> int:
    return int(time.time())


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

    # --- apply ----------------------------------------------------------

    def apply(self, op: dict, *, validate: bool = True) -> OpError | None:
        """Validate and apply one v2 operation.  None means accepted."""
        if type(op) is dict and op.get("type") == "person" and op.get("action") in EVENT_ACTIONS:
            return self._apply_event(op)  # the hot path: most traffic is events
        if validate:
            err = validate_operation(op)
            if err:
                return err
        ts = unix_time(op.get("timestamp")) or _now()
        otype, action = op["type"], op["action"]
        if otype == "object":
            self._apply_object(op, action)
        elif otype == "delivery":
            self.metrics.append(op)
        elif action == "merge":
            self._merge(op["primary"], op["secondary"], ts)
        else:
            self._apply_person(op, action, ts)
        return None

    def _apply_person(self, op: dict, action: str, ts: int) -> None:
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
        elif action in ("add_device", "delete_device"):
            self._device(identifiers, op["device"], ts, add=action == "add_device")
        elif action in ("add_relationships", "delete_relationships"):
            self._person_relationships(identifiers, op.get("cio_relationships"), ts, add=action == "add_relationships")

    def _device(self, identifiers: dict, device: dict, ts: int, *, add: bool) -> None:
        person = self._resolve(identifiers, ts, create=add)
        if not person:
            return
        token = str(device["token"])
        if not add:
            person.devices.pop(token, None)
            return
        person.devices[token] = {
            "id": device["token"],
            "platform": device.get("platform"),
            "last_used": unix_time(device.get("last_used")) or ts,
            "attributes": {k: stringify(v) for k, v in (device.get("attributes") or {}).items()},
        }
        self._add_activity(person, "device_change", token, ts, None)

    def _person_relationships(self, identifiers: dict, relationships: Any, ts: int, *, add: bool) -> None:
        person = self._resolve(identifiers, ts, create=add)
        if person:
            for rel in relationships or []:
                key = self._object_key(rel.get("identifiers") if isinstance(rel, dict) else None)
                if key:
                    self._relate(key, person.cio_id, add=add)

    def _apply_event(self, op: dict) -> OpError | None:
        identifiers = op.get("identifiers")
        err = check_person_identifiers(identifiers, "identifiers", allow_anonymous=True)
        if err:
            return err
        data = op.get("attributes")
        checked = checked_event_data(op.get("name"), data, op["action"])
        if isinstance(checked, OpError):
            return checked
        ts = unix_time(op.get("timestamp")) or _now()
        self._event(op["identifiers"], op["action"], op["name"], op.get("id"), data, checked, ts)
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
                self._set_id(person, value, ts, addressed_by)
                continue
            if name == "email":
                self._set_email(person, value, ts)
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
            previous = current.get(name, MISSING)
            if previous != value:
                current[name] = value
                person.timestamps[name] = ts
                self._add_activity(
                    person,
                    "attribute_change",
                    name,
                    ts,
                    attribute_change(name, None if previous is MISSING else previous, value),
                )

    def _set_id(self, person: Person, value: Any, ts: int, addressed_by: str) -> None:
        if value is None or str(value) == person.id:
            return
        # Changing an id needs the person addressed by cio_id (docs/contracts.md).
        if addressed_by != "cio_id" or str(value) in self.by_id:
            self._failure(person, "id", ts)
            return
        if person.id is not None:
            self.by_id.pop(person.id, None)
        person.id = str(value)
        self.by_id[person.id] = person
        person.timestamps["id"] = ts

    def _set_email(self, person: Person, value: Any, ts: int) -> None:
        if not value:
            if person.email:
                self.by_email.pop(person.email.lower(), None)
            person.email = None
            return
        value = str(value)
        if person.email is not None and person.email.lower() == value.lower():
            return
        other = self.by_email.get(value.lower())
        if other is not None and other is not person:
            self._failure(person, "email", ts)
            return
        if person.email is not None:
            self.by_email.pop(person.email.lower(), None)
        previous = person.email
        person.email = value
        self.by_email[value.lower()] = person
        person.timestamps["email"] = ts
        self._add_activity(person, "attribute_change", "email", ts, attribute_change("email", previous, value))

    def _failure(self, person: Person, attribute: str, ts: int) -> None:
        # Track answers 200 but logs an "Attribute Update Failure".
        self.failures += 1
        self._add_activity(person, "failed_attribute_change", attribute, ts, attribute_change(attribute, None, None))

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

"""What to look for in Customer.io, and which of what is there belongs to this run.

send-test and doctor tag every message with the run id (`cdpio_run_id`: a
trait on identify, a property on track/page/screen), but the App API documents
no event data on activities, so the tag is used only when an activity carries
it.  Otherwise:

- a per-run person (`cdpio-test-{run_id}`) is new, so any matching activity
  on it is this run's ("new person for this run");
- a fixed user id counts only activities newer than this run's first send.

Each found activity records which evidence proved it (`matched_by`).
`cdpio verify` looks at a person something else sent and has no run id: it
matches by type and name.  The person's `cdpio_run_id` attribute (attributes
are documented) must equal the run for traits to count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cdpio_cli.verify.app_api import AppApiError
from cdpio_cli.verify.values import values_match

RUN_ID_KEY = "cdpio_run_id"  # trait on identify, property on track/page/screen
CLOCK_SLACK = 5.0  # seconds our clock may run ahead of Customer.io's

# How an activity was proven to be this run's (ExpectedActivity.evidence).
BY_RUN_ID = "run_id"  # its data carried this run's cdpio_run_id
BY_NEW_PERSON = "new_person"  # the person was created for this run
BY_TIME = "timestamp"  # newer than this run's first send (fixed user id)
BY_NAME = "name"  # `cdpio verify`: no run to tell apart
EVIDENCE_TEXT = {
    BY_RUN_ID: f"tagged with this run's {RUN_ID_KEY}",
    BY_NEW_PERSON: "new person for this run",
    BY_TIME: "newer than this run's first send",
}


def _unix(value: Any) -> float:
    """An activity timestamp (unix seconds) as a number; 0 when missing."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def activity_run_id(activity: dict) -> str | None:
    """The `cdpio_run_id` an App API activity carries in its event data, if any.

    The App API returns event data under `data`; read one level deeper too
    (`data.data`, `data.attributes`, `data.properties`) in case a response
    nests it."""
    data = activity.get("data")
    if not isinstance(data, dict):
        return None
    if data.get(RUN_ID_KEY) is not None:
        return str(data[RUN_ID_KEY])
    for key in ("data", "attributes", "properties"):
        inner = data.get(key)
        if isinstance(inner, dict) and inner.get(RUN_ID_KEY) is not None:
            return str(inner[RUN_ID_KEY])
    return None


def activity_matches(activity: dict, type_: str, name: str) -> bool:
    """Is this App API activity the `type_` one named `name`?  Pages carry
    their URL in `url`, events and screens their name in `name`
    (docs/contracts.md: Customer.io's activity object,
    https://docs.customer.io/files/journeys-track.json)."""
    if activity.get("type") != type_:
        return False
    value = activity.get("url" if type_ == "page" else "name")
    return isinstance(value, str) and value.strip() == name.strip()


@dataclass
class ExpectedActivity:
    """An activity to find: `type` event|page|screen, `name` as Customer.io stores it."""

    type: str
    name: str
    label: str  # how the user knows it: `track "Signed Up"`
    note: str = ""  # e.g. "sent anonymously, merged by identify"
    found_at: float | None = None
    found_id: str | None = None  # the App API activity id that matched
    earlier_only: bool = False  # seen, but none of them provably this run's
    evidence: str | None = None  # how it was proven this run's: BY_RUN_ID, BY_NEW_PERSON, ...


@dataclass
class Target:
    """One person to find in Customer.io and what must be on it."""

    key: str  # route name, or "person" for `cdpio verify`
    user_id: str | None = None
    email: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    activities: list[ExpectedActivity] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # push tokens
    run_id: str | None = None  # count only data tagged with it (RUN_ID_KEY)
    new_person: bool = False  # the user id is this run's own: the person is new
    sent_at: float = field(default_factory=time.monotonic)
    sent_wall: float = field(default_factory=time.time)  # unix seconds, for activity timestamps
    # Filled in by polling:
    person: dict | None = None
    person_found_at: float | None = None
    traits_ok_at: float | None = None
    devices_ok_at: float | None = None
    error: AppApiError | None = None
    failed_attributes: list[str] = field(default_factory=list)

    @property
    def who(self) -> str:
        return f"user {self.user_id}" if self.user_id is not None else f"email {self.email}"

    def attributes(self) -> dict:
        attrs = (self.person or {}).get("attributes")
        return attrs if isinstance(attrs, dict) else {}

    def run_tag(self) -> str | None:
        """The run id on the person (the last identify's), or None."""
        value = self.attributes().get(RUN_ID_KEY)
        return None if value is None else str(value)

    def run_tag_ok(self) -> bool:
        return self.run_id is None or self.run_tag() == self.run_id

    def trait_mismatches(self) -> dict[str, tuple[Any, Any]]:
        """{trait: (expected, what Customer.io has or None)} for traits that do not match.

        With a run id, the person's `cdpio_run_id` must be this run's too:
        otherwise the traits it has came from an earlier run's identify."""
        attrs = self.attributes()
        out = {}
        if not self.run_tag_ok():
            out[RUN_ID_KEY] = (self.run_id, self.run_tag())
        for key, expected in self.traits.items():
            actual = attrs.get(key)
            if key == "email" and isinstance(actual, str) and isinstance(expected, str):
                if actual.lower() == expected.lower():
                    continue
            if not values_match(expected, actual):
                out[key] = (expected, actual)
        return out

    def missing_devices(self) -> list[str]:
        devices = (self.person or {}).get("devices") or []
        have = {str(d.get("id")) for d in devices if isinstance(d, dict)}
        return [t for t in self.devices if t not in have]

    @property
    def done(self) -> bool:
        return (
            self.person is not None
            and self.traits_ok_at is not None
            and self.devices_ok_at is not None
            and all(a.found_at is not None for a in self.activities)
        )

    @property
    def delivered_at(self) -> float | None:
        """When the last expected thing showed up (None until everything did)."""
        if not self.done:
            return None
        times = [self.person_found_at, self.traits_ok_at, self.devices_ok_at, *(a.found_at for a in self.activities)]
        return max(t for t in times if t is not None)

    def seconds_to_delivery(self) -> float | None:
        at = self.delivered_at
        return None if at is None else max(0.0, at - self.sent_at)

    @property
    def nothing_arrived(self) -> bool:
        """No person, or (with a run id) a person with nothing from this run."""
        if self.person is None:
            return True
        return (
            self.run_id is not None
            and not self.run_tag_ok()
            and not any(a.found_at is not None for a in self.activities)
        )

    def found(self) -> dict[str, Any]:
        """What was found, for details and --verbose (names and ids, never values)."""
        out: dict[str, Any] = {}
        if self.run_id is not None:
            out["run_id"] = self.run_id
        if self.person is not None and self.traits_ok_at is not None:
            out["traits"] = sorted(self.traits)
        events = [
            {"label": a.label, "type": a.type, "name": a.name, "activity_id": a.found_id, "matched_by": a.evidence}
            for a in self.activities
            if a.found_at is not None
        ]
        if events:
            out["events"] = events
        if self.person is not None and self.devices and self.devices_ok_at is not None:
            out["devices"] = len(self.devices)
        return out


def run_evidence(target: Target, activity: dict) -> str | None:
    """Why this activity is this run's (an EVIDENCE key), or None if it may not be."""
    if target.run_id is None:
        return BY_NAME
    tag = activity_run_id(activity)
    if tag is not None:  # only when the App API returns event data
        return BY_RUN_ID if tag == target.run_id else None
    if target.new_person:
        return BY_NEW_PERSON
    if _unix(activity.get("timestamp")) >= target.sent_wall - CLOCK_SLACK:
        return BY_TIME
    return None


def failed_attribute_names(activities: list[dict]) -> list[str]:
    """Attribute names of `failed_attribute_change` activities: the keys of an
    attribute-change `data` ({attr: {from, to}}), else `name` (UNCONFIRMED
    which one the App API fills for this type; docs/contracts.md)."""
    names: set[str] = set()
    for a in activities:
        data = a.get("data")
        if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
            names.update(str(k) for k in data)
        elif a.get("name"):
            names.add(str(a["name"]))
    return sorted(names)

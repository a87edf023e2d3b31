"""Delivery verification: look in Customer.io (App API) until what was sent shows up.

The only proof that an event arrived is seeing it in Customer.io
(tier `delivered`, README.md).  We read the App API (docs/contracts.md):

- person by id:    GET /v1/customers/{id}/attributes?id_type=id
- person by email: GET /v1/customers?email=E, then the same by cio_id
- events:          GET /v1/customers/{id}/activities?id_type=&type=&name=

Only documented App API behaviour is relied on (docs/contracts.md):
activities are listed and matched on the client side: `type`, then `url` for a
page, `name` for an event or screen.  `next` is followed until the activity is found
or the list ends (a missing, empty or null `next`), at most 10 requests in
any second (the App API's documented rate limit).  Unknown fields are ignored.

Which activity belongs to this run?  send-test and doctor tag every message
with the run id (`cdpio_run_id`: a trait on identify, a property on
track/page/screen), but the App API documents no event data on activities, so
the tag is used only when an activity carries it.  Otherwise:

- a per-run person (`cdpio-test-{run_id}`) is new, so any matching activity
  on it is this run's ("new person for this run");
- a fixed user id counts only activities newer than this run's first send.

Each found activity records which evidence proved it (`matched_by`).
`cdpio verify` looks at a person something else sent and has no run id: it
matches by type and name.  The person's `cdpio_run_id` attribute (attributes
are documented) must equal the run for traits to count.

The App API returns every attribute value as a string, so expected values are
compared loosely (`true` matches "true", 5 matches "5.0").  Polling backs off
exponentially from `poll_interval` up to 4x it, within one overall deadline
(delivery can take a while, so the budget is generous; a 404 for the person
means "not yet": docs/contracts.md).
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cdpio_cli.keys import unreachable_hint
from cdpio_cli.results import (
    FAILED,
    FAILURE_CHECK,
    FAILURE_CREDENTIAL,
    FAILURE_UNREACHABLE,
    PASSED,
    Check,
)

BACKOFF_FACTOR = 1.6
BACKOFF_CAP = 4.0  # the longest wait between polls, in poll intervals

RUN_ID_KEY = "cdpio_run_id"  # trait on identify, property on track/page/screen
CLOCK_SLACK = 5.0  # seconds our clock may run ahead of Customer.io's

# App API limits (journeys-app.json: "10 requests per second"; getPersonActivities
# `limit` max 100).  A lookup follows `next` for at most this many pages per poll.
APP_API_RATE = 10
ACTIVITY_PAGE_LIMIT = 100
MAX_ACTIVITY_PAGES = 50

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
    (journeys-track.json #/components/schemas/activityObject)."""
    if activity.get("type") != type_:
        return False
    value = activity.get("url" if type_ == "page" else "name")
    return isinstance(value, str) and value.strip() == name.strip()


# ---------------------------------------------------------------------------
# Comparing values
# ---------------------------------------------------------------------------


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def values_match(expected: Any, actual: Any) -> bool:
    """Does the App API's (string) `actual` hold the `expected` value?

    `expected` may be a real value from a message (True, 5, {"a": 1}) or a
    string from `--trait k=v`, which is read JSON-ish ("true", "5", "Pro").
    """
    if actual is None:
        return False
    if isinstance(expected, str) and isinstance(actual, str) and expected == actual:
        return True
    if isinstance(expected, str):
        expected = _loads(expected)
    if isinstance(actual, str):
        actual = _loads(actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return str(expected).lower() == str(actual).lower()
    e_num, a_num = _as_number(expected), _as_number(actual)
    if e_num is not None and a_num is not None:
        return e_num == a_num
    return expected == actual


def parse_trait(text: str) -> tuple[str, str]:
    """`plan_type=Pro` -> ("plan_type", "Pro"); ValueError without `=` or a key."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--trait {text!r} must look like key=value")
    return key.strip(), value


def show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:59] + "…"


# ---------------------------------------------------------------------------
# App API reads
# ---------------------------------------------------------------------------


class AppApiError(Exception):
    """The App API refused (credential) or could not be reached."""

    def __init__(self, message: str, failure: str, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.message = message
        self.failure = failure
        self.status = status
        self.url = url  # the App API base URL (no secrets)


class RateWindow:
    """At most `rate` calls in any `window`-second window (the App API's limit is
    stated per second), so a handful of reads never waits at all."""

    def __init__(
        self,
        rate: int = APP_API_RATE,
        *,
        window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate = rate
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self.recent: deque[float] = deque()

    def wait(self) -> None:
        now = self.clock()
        while self.recent and now - self.recent[0] >= self.window:
            self.recent.popleft()
        if len(self.recent) >= self.rate:
            self.sleep(self.window - (now - self.recent[0]))
            self.recent.popleft()
        self.recent.append(self.clock())


class AppApi:
    """Thin App API reader over the shared transport (keys.ServiceHttp)."""

    def __init__(self, http, base_url: str, app_api_key: str, *, capture=None):
        self.http = http
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {app_api_key}", "Accept": "application/json"}
        self.calls = 0
        # The server counts arrivals: a request sent 1.0 s after the tenth may
        # arrive before a slow first one did.  A tenth of a second of slack
        # keeps every second under the limit (tests/test_campaigns.py counts).
        self.limit = RateWindow(window=1.1)
        self.capture = capture  # capture.Capture: every response, for send-test --capture

    def _get(self, path: str, params: dict | None = None):
        self.calls += 1
        self.limit.wait()
        answer = self.http.call("GET", f"{self.base}{path}", headers=self.headers, params=params)
        if self.capture is not None:
            self.capture.add("GET", path, params, answer)
        if answer.status in (401, 403):
            raise AppApiError(
                f"the App API rejected the key ({answer.status}); a key from another "
                "region or workspace, or a send-only key, cannot read people",
                FAILURE_CREDENTIAL,
                answer.status,
                self.base,
            )
        if answer.status is None or answer.status >= 500:
            raise AppApiError(
                "could not read the App API: " + (answer.error or f"it answered {answer.status}"),
                FAILURE_UNREACHABLE,
                answer.status,
                self.base,
            )
        return answer

    def person(self, *, user_id: str | None = None, email: str | None = None) -> dict | None:
        """The person's `customer` object (attributes, devices...), or None if not (yet) there."""
        if user_id is not None:
            ref = (user_id, "id")
        else:
            answer = self._get("/v1/customers", {"email": email})
            results = (answer.body or {}).get("results") if isinstance(answer.body, dict) else None
            if answer.status != 200 or not results:
                return None
            first = results[0] if isinstance(results[0], dict) else {}
            if first.get("cio_id"):
                ref = (str(first["cio_id"]), "cio_id")
            elif first.get("id"):
                ref = (str(first["id"]), "id")
            else:
                return None
        answer = self._get(f"/v1/customers/{quote(ref[0], safe='')}/attributes", {"id_type": ref[1]})
        if answer.status != 200 or not isinstance(answer.body, dict):
            return None  # 404: not there yet
        customer = answer.body.get("customer")
        if not isinstance(customer, dict):
            return None
        customer["_ref"] = ref
        return customer

    def activity_pages(
        self, ref: tuple[str, str], *, type_: str | None = None, name: str | None = None
    ) -> Iterator[list[dict]]:
        """Each page of the person's activities, following the opaque `next`
        cursor (sent back as `start`) until it is missing, empty or null."""
        params: dict[str, Any] = {"id_type": ref[1], "limit": ACTIVITY_PAGE_LIMIT}
        if type_:
            params["type"] = type_
        if name:
            params["name"] = name
        seen: set[str] = set()
        for _ in range(MAX_ACTIVITY_PAGES):
            answer = self._get(f"/v1/customers/{quote(ref[0], safe='')}/activities", params)
            if answer.status != 200 or not isinstance(answer.body, dict):
                return
            items = answer.body.get("activities")
            yield [a for a in items if isinstance(a, dict)] if isinstance(items, list) else []
            cursor = answer.body.get("next")
            if not isinstance(cursor, str) or not cursor or cursor in seen:
                return
            seen.add(cursor)
            params["start"] = cursor

    def activities(self, ref: tuple[str, str], *, type_: str | None = None, name: str | None = None) -> list[dict]:
        """Every page of the person's activities (bounded by MAX_ACTIVITY_PAGES)."""
        return [a for page in self.activity_pages(ref, type_=type_, name=name) for a in page]


# ---------------------------------------------------------------------------
# What to look for
# ---------------------------------------------------------------------------


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


def poll_once(api: AppApi, target: Target, now: Callable[[], float] = time.monotonic) -> None:
    """One look at the person; records what has arrived so far."""
    person = api.person(user_id=target.user_id, email=target.email if target.user_id is None else None)
    if person is None:
        return
    target.person = person
    if target.person_found_at is None:
        target.person_found_at = now()
    if target.traits_ok_at is None and not target.trait_mismatches():
        target.traits_ok_at = now()
    if target.devices_ok_at is None and not target.missing_devices():
        target.devices_ok_at = now()
    ref = person["_ref"]
    pending = [e for e in target.activities if e.found_at is None]
    refused: set[int] = set()
    # One unfiltered listing serves every expected activity: two reads per
    # person and poll, however many events; the order is not relied on.
    for page in api.activity_pages(ref) if pending else ():
        for activity in page:
            for expected in pending:
                if expected.found_at is not None or not activity_matches(activity, expected.type, expected.name):
                    continue
                evidence = run_evidence(target, activity)
                if evidence is None:
                    refused.add(id(expected))
                    continue
                expected.found_at = now()
                expected.evidence = evidence
                expected.found_id = str(activity["id"]) if activity.get("id") is not None else None
        if all(e.found_at is not None for e in pending):
            break
    for expected in pending:
        expected.earlier_only = expected.found_at is None and id(expected) in refused
    if target.traits_ok_at is None and target.trait_mismatches():
        # A 200 can end in an "Attribute Update Failure" (docs/contracts.md, identify).
        failures = api.activities(ref, type_="failed_attribute_change")
        target.failed_attributes = failed_attribute_names(failures)


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


def wait_for(
    api: AppApi,
    targets: list[Target],
    *,
    timeout: float,
    poll_interval: float,
    progress: Callable[[str], None] | None = None,
    now: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until every target is complete or `timeout` seconds have passed.

    Waits start at `poll_interval` and grow by 1.6x up to 4x it; the last wait
    is cut so the final look happens at the deadline.  A credential error
    stops polling at once (it will not fix itself).
    """
    start = now()
    deadline = start + max(0.0, timeout)
    interval = max(0.05, poll_interval)
    wait = interval
    polls = 0
    while True:
        polls += 1
        for target in targets:
            if target.done or (target.error and target.error.failure == FAILURE_CREDENTIAL):
                continue
            try:
                poll_once(api, target, now)
                target.error = None
            except AppApiError as exc:
                target.error = exc
        pending = [t for t in targets if not t.done and not (t.error and t.error.failure == FAILURE_CREDENTIAL)]
        if not pending:
            return
        remaining = deadline - now()
        if remaining <= 0:
            return
        if progress:
            progress(
                f"waiting for {', '.join(t.key for t in pending)} in Customer.io "
                f"({now() - start:.0f}s of {timeout:.0f}s, poll {polls})"
            )
        sleep(min(wait, remaining))
        wait = min(wait * BACKOFF_FACTOR, interval * BACKOFF_CAP)


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def missing_parts(target: Target) -> list[str]:
    """What has not shown up, in plain words."""
    out = []
    if target.person is None:
        out.append(f"no person with {target.who.replace('user ', 'id ')}")
        return out
    for key, (expected, actual) in target.trait_mismatches().items():
        if key == RUN_ID_KEY and target.run_id is not None:
            out.append(
                "this run's identify has not arrived (the person's cdpio_run_id is "
                + (f"{show(actual)}, an earlier run's)" if actual is not None else "not set)")
            )
            continue
        if actual is None:
            out.append(f"trait {key} missing (expected {show(expected)})")
        else:
            out.append(f"trait {key} is {show(actual)}, expected {show(expected)}")
    for token in target.missing_devices():
        out.append(f"device {show(token)} not registered")
    for expected in target.activities:
        if expected.found_at is None:
            text = f"{expected.label} not in the person's activities"
            notes = [expected.note] if expected.note else []
            if expected.earlier_only:
                notes.append("earlier runs' only")
            out.append(text + (f" ({'; '.join(notes)})" if notes else ""))
    return out


def found_parts(target: Target) -> str:
    parts = []
    if target.traits:
        parts.append(f"{len(target.traits)} trait{'s' if len(target.traits) != 1 else ''}")
    if target.activities:
        n = len(target.activities)
        parts.append(f"{n} event{'s' if n != 1 else ''}")
    if target.devices:
        parts.append(f"{len(target.devices)} device{'s' if len(target.devices) != 1 else ''}")
    return " with " + ", ".join(parts) if parts else ""


def app_error_hint(error: AppApiError, credential_hint: str) -> str:
    if error.failure == FAILURE_UNREACHABLE:
        return unreachable_hint(error.url, "check your network or proxy and retry; status page: status.customer.io")
    return credential_hint


def found_text(target: Target) -> str:
    """--verbose: which traits and events were found (names and activity ids, never values)."""
    found = target.found()
    parts = []
    if found.get("traits"):
        parts.append("traits " + ", ".join(found["traits"]))
    if found.get("events"):
        parts.append(
            "events "
            + ", ".join(
                e["label"]
                + (f" (activity {e['activity_id']})" if e.get("activity_id") else "")
                + (f" ({EVIDENCE_TEXT[e['matched_by']]})" if e.get("matched_by") in EVIDENCE_TEXT else "")
                for e in found["events"]
            )
        )
    if "run_id" in found:
        parts.append(f"all tagged {RUN_ID_KEY} {found['run_id']}")
    return "; ".join(parts)


def target_check(
    target: Target,
    *,
    check_id: str,
    route: str,
    timeout: float,
    causes: str | None = None,
    fix: str | None = None,
    nothing_head: str | None = None,
    verbose: bool = False,
) -> Check:
    """The `delivered` check for one target after polling."""
    took = target.seconds_to_delivery()
    details: dict[str, Any] = {"user_id": target.user_id, "email": target.email}
    if target.run_id is not None:
        details["run_id"] = target.run_id
    if took is not None:
        details["seconds_to_delivery"] = round(took, 3)
    found = target.found()
    if found.get("traits") or found.get("events") or found.get("devices"):
        details["found"] = found
    if target.done:
        message = f"{target.who} is in Customer.io{found_parts(target)}, {took:.1f}s after sending"
        proofs = sorted({EVIDENCE_TEXT[a.evidence] for a in target.activities if a.evidence in EVIDENCE_TEXT})
        if proofs:
            details["evidence"] = proofs
            message += f" (events proven this run's: {', '.join(proofs)})"
        if verbose and found_text(target):
            message += f" (found: {found_text(target)})"
        return Check(check_id, route, "delivered", PASSED, message, duration_ms=took * 1000.0, details=details)
    if target.error is not None:
        return Check(
            check_id,
            route,
            "delivered",
            FAILED,
            f"cannot verify delivery: {target.error.message}",
            http_status=target.error.status,
            failure=target.error.failure,
            hint=app_error_hint(
                target.error, "check customerio.app_api_key and customerio.region (`cdpio check-keys`)"
            ),
            details=details,
        )
    missing = missing_parts(target)
    details["missing"] = missing
    if target.nothing_arrived:
        head = f"{nothing_head or 'nothing arrived in Customer.io'} within {timeout:g}s"
        if target.person is not None:
            head += (
                f" ({target.who} is there, but nothing on it carries this run's "
                f"{RUN_ID_KEY} {target.run_id}: what it has came from earlier runs)"
            )
        head += ": "
    else:
        head = f"not everything arrived within {timeout:g}s: "
    message = head + "; ".join(missing)
    if verbose and found_text(target):
        message += f" (found: {found_text(target)})"
    if target.failed_attributes:
        message += "; Customer.io logged an Attribute Update Failure for " + ", ".join(target.failed_attributes)
    if causes:
        message += f". Likely causes: {causes}"
    return Check(check_id, route, "delivered", FAILED, message, failure=FAILURE_CHECK, hint=fix, details=details)


# ---------------------------------------------------------------------------
# `cdpio verify`: a person something else sent
# ---------------------------------------------------------------------------


def prepare_region(settings, http) -> list[Check]:
    """With `customerio.region: auto`, learn the region from the Track API so
    the App API is read on the right host (it answers 401 on the wrong one).

    Returns a warning when the region could not be learned, with the real
    reason: a Track host that gave no answer is not asked again in this run,
    so a later check's "not asked again" must point at a row that says why."""
    from cdpio_cli import keys
    from cdpio_cli.results import WARNING

    if settings.config.customerio.region != "auto" or settings.detected_region:
        return []
    if not (settings.customerio.site_id and settings.customerio.track_api_key):
        return []
    track = next((c for c in keys.check_track(settings, http) if c.id == "customerio.track"), None)
    if track is None or track.status != FAILED:
        return []
    region = settings.customerio_region().upper()
    hint = (
        unreachable_hint(
            settings.endpoint("track"), "check your network or proxy and retry; status page: status.customer.io"
        )
        if track.failure == FAILURE_UNREACHABLE
        else "set customerio.region (us or eu) to skip region detection, or fix the Track credentials "
        "(`cdpio check-keys`)"
    )
    return [
        Check(
            "customerio.region",
            "customerio",
            "authenticated",
            WARNING,
            f"region not detected ({track.message}); reading the App API in the {region} region",
            http_status=track.http_status,
            duration_ms=track.duration_ms,
            hint=hint,
        )
    ]


def run_verify(
    settings,
    *,
    user_id: str | None = None,
    email: str | None = None,
    traits: dict[str, str] | None = None,
    events: list[str] | None = None,
    within: float | None = None,
    progress: Callable[[str], None] | None = None,
):
    """Find a person in Customer.io with the given traits and events; returns a Report."""
    from cdpio_cli import keys
    from cdpio_cli.errors import UsageError
    from cdpio_cli.results import SKIPPED, Report

    if (user_id is None) == (email is None):
        raise UsageError("give exactly one of --user-id or --email")
    if not settings.customerio.app_api_key:
        raise UsageError(
            "verify needs customerio.app_api_key to read people from Customer.io",
            hint="set customerio.app_api_key (Account Settings > API Credentials > App API Keys)",
        )
    from cdpio_cli import campaigns

    timeout = settings.config.verify.timeout if within is None else within
    report = Report("verify", run_id=settings.run_id)
    expect = campaigns.expectations(settings)
    # The segmented and triggered tiers (send_test.expect) wait again after delivery.
    http = keys.ServiceHttp.for_settings(settings, timeout, waits=2 if expect else 1)
    report_tiers = None
    try:
        if progress:
            progress("finding the Customer.io region")
        report.extend(prepare_region(settings, http))
        app = keys.check_app(settings, http)
        if any(c.status == FAILED for c in app):
            report.extend(app)
            return report
        target = Target(
            "person",
            user_id=user_id,
            email=email,
            traits=dict(traits or {}),
            activities=[ExpectedActivity("event", name, f'event "{name}"') for name in (events or [])],
        )
        api = AppApi(http, settings.endpoint("app"), settings.customerio.app_api_key)
        wait_for(api, [target], timeout=timeout, poll_interval=settings.config.verify.poll_interval, progress=progress)
        if expect and target.done:
            report_tiers = Report("verify")
            _campaign_tiers(report_tiers, api, target, expect, settings, timeout, progress)
    finally:
        http.close()
    report.summary.update(
        {
            "user_id": user_id,
            "email": email,
            "customerio_region": settings.customerio_region(),
            "within_seconds": timeout,
            "app_api_polls": api.calls,
        }
    )
    start = target.sent_at
    if target.error is not None:
        report.add(target_check(target, check_id="person", route="customerio", timeout=timeout))
        return report
    who = target.who
    if target.person is None:
        report.add(
            Check(
                "person",
                "customerio",
                "delivered",
                FAILED,
                f"no person with {who.replace('user ', 'id ')} in Customer.io within {timeout:g}s",
                hint="check the id or email, the region, and that your app sends identify "
                "(events sent only with an anonymousId stay on an anonymous profile)",
            )
        )
        for key in target.traits:
            report.add(Check(f"trait {key}", "customerio", "delivered", SKIPPED, "person not found"))
        for expected in target.activities:
            report.add(Check(expected.label, "customerio", "delivered", SKIPPED, "person not found"))
        return report
    report.add(
        Check(
            "person",
            "customerio",
            "delivered",
            PASSED,
            f"{who} found in Customer.io (cio_id {target.person.get('identifiers', {}).get('cio_id')})",
            duration_ms=(target.person_found_at - start) * 1000.0,
        )
    )
    mismatches = target.trait_mismatches()
    for key, expected in target.traits.items():
        if key in mismatches:
            actual = mismatches[key][1]
            text = (
                f"trait {key} is missing"
                if actual is None
                else f"trait {key} is {show(actual)}, expected {show(expected)}"
            )
            if key in target.failed_attributes:
                text += " (Customer.io logged an Attribute Update Failure for it)"
            report.add(
                Check(
                    f"trait {key}",
                    "customerio",
                    "delivered",
                    FAILED,
                    text + f" after {timeout:g}s",
                    hint="the app never sent this trait in an identify, or sent another value",
                )
            )
        else:
            report.add(
                Check(
                    f"trait {key}", "customerio", "delivered", PASSED, f"{key} = {show(target.attributes().get(key))}"
                )
            )
    for expected in target.activities:
        if expected.found_at is None:
            report.add(
                Check(
                    expected.label,
                    "customerio",
                    "delivered",
                    FAILED,
                    f"{expected.label} is not in the person's activities after {timeout:g}s",
                    hint="check the event name (case and spaces matter) and that the event "
                    "was sent with this person's userId",
                )
            )
        else:
            report.add(
                Check(
                    expected.label,
                    "customerio",
                    "delivered",
                    PASSED,
                    f"{expected.label} found in the person's activities",
                    duration_ms=(expected.found_at - start) * 1000.0,
                )
            )
    if report_tiers is not None:
        report.extend(report_tiers.checks)
    elif expect:
        campaigns.skip_tiers(report, "customerio", expect, "not checked: the person is not complete in Customer.io")
    return report


def _campaign_tiers(report, api: AppApi, target: Target, expect, settings, timeout: float, progress) -> None:
    """`cdpio verify`: the segmented and triggered tiers for a person something
    else sent (any message of the campaign counts: there is no run to date it)."""
    from cdpio_cli import campaigns, diagnosis

    evidence = diagnosis.Evidence()
    campaigns.run_tiers(
        report,
        api,
        route="customerio",
        ref=target.person["_ref"],
        since=None,
        attributes=target.attributes(),
        sent_events=[a.name for a in target.activities if a.type == "event"],
        expect=expect,
        settings=settings,
        evidence=evidence,
        timeout=timeout,
        poll_interval=settings.config.verify.poll_interval,
        progress=progress,
    )
    diagnosis.explain_failures(report.checks, evidence, sentence_for=[c.id for c in report.checks])

"""App API segments, campaigns, actions and messages, and the App API rate limit.

The workspace's segments and campaigns come from a file
(cdpio_cli/workspace_file.py; `cdpio sandbox --workspace FILE`).  Shapes and
field names follow Customer.io's OpenAPI document (journeys-app.json:
getPersonSegments, listSegments, getSegment, getSegmentMembership,
getSegmentCount, listCampaigns, getCampaigns, listCampaignActions,
getPersonMessages); docs/contracts.md lists them field by field.

Journeys start lazily, when a read looks at a person: a person who performed
a running, active campaign's trigger event (or is in its trigger segment),
and is in every filter segment, enters it once and gets one message per
action, with `metrics` by the action's `sending_state`: automatic -> sent and
delivered, draft -> drafted, off -> no message.  Real Customer.io is
asynchronous too; a verifier polls either way.

The App API allows 10 requests per second ("rate limited to 10 requests per
1s", journeys-app.json info): above it every App API route answers 429 with
`Retry-After: 1` and the documented error body.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cdpio_cli.routes.endpoints import SANDBOX_PREFIXES
from cdpio_cli.sandbox.auth import bearer_token, same
from cdpio_cli.sandbox.people import NAME, TYPE, Person
from cdpio_cli.sandbox.state import SandboxState
from cdpio_cli.sandbox.views import UNKNOWN_FIELD, UNKNOWN_VALUE, attributes_view
from cdpio_cli.sandbox.web import bind, json_response, log
from cdpio_cli.sandbox.workspace import Workspace
from cdpio_cli.workspace_file import (
    ActionDef,
    CampaignDef,
    SegmentDef,
    WorkspaceDef,
    load_workspace,
)

ACTIONS_PAGE = 10  # listCampaignActions: actions maxItems 10
MESSAGES_LIMIT = (50, 1000)  # getPersonMessages limit: default, max
MEMBERSHIP_LIMIT = (1000, 30000)  # getSegmentMembership limit: default, max


# ---------------------------------------------------------------------------
# The rate limit
# ---------------------------------------------------------------------------


class AppRateLimit:
    """At most `rate` App API requests in any one-second window; counts the
    busiest second it has seen (tests assert no command went past the limit)."""

    def __init__(self, rate: float):
        self.rate = rate
        self.lock = threading.Lock()
        self.accepted: deque[float] = deque()
        self.arrivals: deque[float] = deque()
        self.peak = 0  # most requests (answered or refused) in any one second
        self.refused = 0  # 429s answered

    def admit(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self.lock:
            for window in (self.accepted, self.arrivals):
                while window and now - window[0] >= 1.0:
                    window.popleft()
            self.arrivals.append(now)
            self.peak = max(self.peak, len(self.arrivals))
            if len(self.accepted) >= self.rate:
                self.refused += 1
                return False
            self.accepted.append(now)
            return True


def rate_limit(state: SandboxState) -> AppRateLimit:
    limiter = state.app_rate_limit
    if limiter is None:
        limiter = state.app_rate_limit = AppRateLimit(state.options.app_api_rate)
    return limiter


def app_error(status: int, detail: str) -> Response:
    """The App API's error envelope."""
    return json_response({"errors": [{"detail": detail, "status": str(status)}]}, status)


def refuse_app_request(request: Request, state: SandboxState, route: str, region: str) -> Response | None:
    """The 401 or 429 every App API route answers before reading anything, or None to go on.

    The App API is not redirected: the wrong region is a 401 (docs/contracts.md)."""
    if (
        not same(bearer_token(request.headers.get("authorization")), state.options.app_api_key)
        or region != state.options.region
    ):
        log(request, state, route, 401)
        return app_error(401, "Unauthorized request")
    return rate_limited(request, state, route)


def rate_limited(request: Request, state: SandboxState, route: str) -> Response | None:
    """The 429 for an App API request over the limit, or None to go on."""
    rate = state.options.app_api_rate
    if not rate or rate_limit(state).admit():
        return None
    log(request, state, route, 429)
    reference = f"sbx-{int(time.time() * 1000) % 10**8:08d}"
    return json_response(
        {"errors": [{"detail": f"rate limited to {rate:g} requests per 1s (reference {reference})", "status": "429"}]},
        429,
        headers={"Retry-After": "1"},
    )


# ---------------------------------------------------------------------------
# Journeys
# ---------------------------------------------------------------------------


class CampaignEngine:
    """Which people are in which segments, and the messages campaigns sent them."""

    def __init__(self, definition: WorkspaceDef | None):
        self.definition = definition or WorkspaceDef("")
        self.started = int(time.time())
        self._people_ref: Any = None
        self._ids = itertools.count(1)
        self.journeys: dict[tuple[int, str], int] = {}  # (campaign id, cio_id) -> entered at
        self.messages: dict[str, list[dict]] = {}  # cio_id -> messages

    def _sync_reset(self, ws: Workspace) -> None:
        # Workspace.reset() replaces its `people` dict: forget the journeys too.
        if self._people_ref is not ws.people:
            self._people_ref = ws.people
            self.journeys.clear()
            self.messages.clear()

    @staticmethod
    def facts(ws: Workspace, person: Person) -> tuple[dict[str, str], set[str]]:
        """The person's attributes as the App API shows them, and the events performed."""
        attributes = attributes_view(person)["customer"]["attributes"]
        events = {a[NAME] for a in person.activities if a[TYPE] == "event" and a[NAME]}
        return attributes, events

    def live_segments(self) -> list[SegmentDef]:
        return [s for s in self.definition.segments if not s.deleted]

    def member(self, segment: SegmentDef | None, attributes: dict, events: set[str]) -> bool:
        """Membership as the App API shows it: a segment still building lists nobody yet."""
        return (
            segment is not None
            and not segment.deleted
            and segment.state == "finished"
            and segment.matches(attributes, events)
        )

    def person_segments(self, ws: Workspace, person: Person) -> list[SegmentDef]:
        attributes, events = self.facts(ws, person)
        return [s for s in self.live_segments() if self.member(s, attributes, events)]

    def _enters(self, camp: CampaignDef, attributes: dict, events: set[str]) -> bool:
        if not camp.sends:
            return False
        if camp.trigger_event is not None:
            triggered = camp.trigger_event in events
        else:
            triggered = camp.trigger_segment is not None and self.member(
                self.definition.segment(camp.trigger_segment), attributes, events
            )
        return triggered and all(
            self.member(self.definition.segment(s), attributes, events) for s in camp.filter_segments
        )

    def person_messages(self, ws: Workspace, person: Person) -> list[dict]:
        """Start the journeys the person qualifies for now; all their messages, newest first."""
        self._sync_reset(ws)
        attributes, events = self.facts(ws, person)
        now = int(time.time())
        for camp in self.definition.campaigns:
            key = (camp.id, person.cio_id)
            if key in self.journeys or not self._enters(camp, attributes, events):
                continue
            self.journeys[key] = now
            for action in camp.actions:
                if action.sending_state == "off":
                    continue
                self.messages.setdefault(person.cio_id, []).append(self._message(person, camp, action, now))
        return sorted(self.messages.get(person.cio_id, []), key=lambda m: (m["created"], m["id"]), reverse=True)

    def _message(self, person: Person, camp: CampaignDef, action: ActionDef, now: int) -> dict:
        if action.sending_state == "draft":
            metrics = {"created": now, "drafted": now}
        elif action.failure_message:
            metrics = {"created": now, "failed": now}
        else:
            metrics = {"created": now, "sent": now, "delivered": now}
        number = next(self._ids)
        return {
            "id": f"dgSBX{number:010d}",
            "deduplicate_id": f"dgSBX{number:010d}:{now}",
            "customer_id": person.id,
            "customer_identifiers": person.identifiers(),
            "recipient": person.email or person.id,
            "subject": f"{camp.name}: {action.name or action.type}",
            "created": now,
            "forgotten": False,
            "type": action.type,
            "campaign_id": camp.id,
            "action_id": action.id,
            "parent_action_id": None,
            "broadcast_id": None,
            "newsletter_id": None,
            "content_id": None,
            "failure_message": action.failure_message if action.sending_state == "automatic" else None,
            "msg_template_id": None,
            "metrics": metrics,
            UNKNOWN_FIELD: UNKNOWN_VALUE,
        }


def engine(state: SandboxState) -> CampaignEngine:
    found = state.campaign_engine
    if found is None:
        path = getattr(state.options, "workspace", None)
        found = state.campaign_engine = CampaignEngine(load_workspace(path) if path else None)
    return found


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------


def segment_object(seg: SegmentDef, created: int) -> dict:
    """journeys-app.json #/components/schemas/segment."""
    return {
        "id": seg.id,
        "name": seg.name,
        "description": seg.description,
        "type": "dynamic",
        "tags": None,
        "created_at": created,
        "updated_at": created,
        "deduplicate_id": f"{seg.id}:{created}",
        "state": seg.state,
        "progress": None if seg.state == "finished" else 40,
        UNKNOWN_FIELD: UNKNOWN_VALUE,
    }


def campaign_object(camp: CampaignDef, created: int) -> dict:
    """The event- or segment-triggered variant of journeys-app.json's campaign."""
    out: dict[str, Any] = {
        "id": camp.id,
        "name": camp.name,
        "description": camp.description,
        "created": created,
        "updated": created,
        "first_started": created if camp.state != "draft" else None,
        "deduplicate_id": f"{camp.id}:{created}",
        "tags": [],
        "state": camp.state,
        "active": camp.active,
        "actions": [{"id": a.id, "type": a.type} for a in camp.actions],
        "filter_segment_ids": list(camp.filter_segments),
        "type": "event" if camp.trigger_event is not None else "segment",
        UNKNOWN_FIELD: UNKNOWN_VALUE,
    }
    if camp.trigger_event is not None:
        out["event_name"] = camp.trigger_event
    else:
        out["trigger_segment_ids"] = [camp.trigger_segment]
        out["msg_templates"] = []
    return out


def action_object(camp: CampaignDef, action: ActionDef, created: int) -> dict:
    """journeys-app.json listCampaignActions item (the email/message shape)."""
    return {
        "id": action.id,
        "campaign_id": camp.id,
        "parent_action_id": None,
        "name": action.name or f"{action.type} {action.id}",
        "type": action.type,
        "sending_state": action.sending_state,
        "created": created,
        "updated": created,
        "language": "",
        "layout": "",
        "body": "",
        "subject": camp.name,
        "from": None,
        "from_id": None,
        "reply_to": None,
        "reply_to_id": None,
        "recipient": "{{customer.email}}",
        "headers": {},
        "bcc": None,
        "cc": None,
        UNKNOWN_FIELD: UNKNOWN_VALUE,
    }


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sbx:{offset}".encode()).decode().rstrip("=")


def _offset(start: str | None) -> int:
    """The offset an opaque `start` stands for; ValueError when it is not ours."""
    if not start:
        return 0
    try:
        text = base64.urlsafe_b64decode(start + "=" * (-len(start) % 4)).decode()
        if text.startswith("sbx:") and int(text[4:]) >= 0:
            return int(text[4:])
    except (ValueError, UnicodeDecodeError):
        pass
    raise ValueError("start is not a cursor this API returned")


def _page(items: list, start: str | None, limit: int) -> tuple[list, str | None]:
    offset = _offset(start)
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return page, (_cursor(offset + limit) if more else None)


def _number(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None


def _limit(value: str | None, default: int, maximum: int) -> int:
    if value is None:
        return default
    number = _number(value, "limit")
    if not 1 <= number <= maximum:
        raise ValueError(f"limit must be a number from 1 to {maximum}")
    return number


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------


async def endpoint(request: Request, *, state: SandboxState, region: str, op: str) -> Response:
    route = f"app.{op}"
    refused = refuse_app_request(request, state, route, region)
    if refused is not None:
        return refused
    with state.lock:
        state.drain()
        try:
            response = _answer(state, request, op)
        except ValueError as exc:  # a malformed query parameter
            response = app_error(400, str(exc))
    log(request, state, route, response.status_code)
    return response


def _answer(state: SandboxState, request: Request, op: str) -> Response:
    eng = engine(state)
    ws = state.workspace
    query = request.query_params
    params = request.path_params
    if op in ("person_segments", "person_messages"):
        return _person_answer(eng, ws, op, query, params["customer_id"])
    if op == "segments":
        return json_response({"segments": [segment_object(s, eng.started) for s in eng.live_segments()]})
    if op == "campaigns":
        return json_response({"campaigns": [campaign_object(c, eng.started) for c in eng.definition.campaigns]})
    if op in ("segment", "membership", "customer_count"):
        return _segment_answer(eng, ws, op, query, params["segment_id"])
    return _campaign_answer(eng, op, query, params["campaign_id"])


def _person_answer(eng: CampaignEngine, ws: Workspace, op: str, query: Mapping[str, str], customer_id: str) -> Response:
    id_type = query.get("id_type", "id")
    if id_type not in ("id", "email", "cio_id"):
        return app_error(400, "id_type must be one of id, email, cio_id")
    person = ws.person_by(customer_id, id_type)
    if person is None:
        return app_error(404, "The customer_id does not exist.")
    if op == "person_segments":
        return json_response(
            {
                "segments": [
                    {"id": s.id, "name": s.name, "description": s.description, UNKNOWN_FIELD: UNKNOWN_VALUE}
                    for s in eng.person_segments(ws, person)
                ],
                UNKNOWN_FIELD: UNKNOWN_VALUE,
            }
        )
    messages = eng.person_messages(ws, person)
    start_ts, end_ts = query.get("start_ts"), query.get("end_ts")
    if start_ts:
        messages = [m for m in messages if m["created"] >= _number(start_ts, "start_ts")]
    if end_ts:
        messages = [m for m in messages if m["created"] <= _number(end_ts, "end_ts")]
    page, cursor = _page(messages, query.get("start"), _limit(query.get("limit"), *MESSAGES_LIMIT))
    body: dict[str, Any] = {"messages": page}
    if cursor:
        body["next"] = cursor
    return json_response(body)


def _segment_answer(eng: CampaignEngine, ws: Workspace, op: str, query: Mapping[str, str], segment_id: str) -> Response:
    seg = _by_id(eng.live_segments(), segment_id)
    if seg is None:
        return app_error(404, "segment not found")
    if op == "segment":
        return json_response({"segment": segment_object(seg, eng.started)})
    members = [p for p in ws.people.values() if eng.member(seg, *eng.facts(ws, p))]
    if op == "customer_count":
        return json_response({"count": len(members), "segment_id": seg.id})
    page, cursor = _page(members, query.get("start"), _limit(query.get("limit"), *MEMBERSHIP_LIMIT))
    body: dict[str, Any] = {
        "identifiers": [p.identifiers() for p in page],
        "ids": [p.id for p in page],
        "segment_id": seg.id,
    }
    if cursor:
        body["next"] = cursor
    return json_response(body)


def _campaign_answer(eng: CampaignEngine, op: str, query: Mapping[str, str], campaign_id: str) -> Response:
    camp = _by_id(eng.definition.campaigns, campaign_id)
    if camp is None:
        return app_error(404, "campaign not found")
    if op == "campaign":
        return json_response({"campaign": campaign_object(camp, eng.started)})
    # actions: at most 10 per page, then `next` (listCampaignActions).
    actions = [action_object(camp, a, eng.started) for a in camp.actions]
    page, cursor = _page(actions, query.get("start"), ACTIONS_PAGE)
    return json_response({"actions": page, "next": cursor} if cursor else {"actions": page})


_Def = TypeVar("_Def", SegmentDef, CampaignDef)


def _by_id(items: list[_Def], text: str) -> _Def | None:
    try:
        wanted = int(text)
    except ValueError:
        return None
    return next((i for i in items if i.id == wanted), None)


_ROUTES = (
    ("/v1/customers/{customer_id:path}/segments", "person_segments"),
    ("/v1/customers/{customer_id:path}/messages", "person_messages"),
    ("/v1/segments", "segments"),
    ("/v1/segments/{segment_id}", "segment"),
    ("/v1/segments/{segment_id}/membership", "membership"),
    ("/v1/segments/{segment_id}/customer_count", "customer_count"),
    ("/v1/campaigns", "campaigns"),
    ("/v1/campaigns/{campaign_id}", "campaign"),
    ("/v1/campaigns/{campaign_id}/actions", "actions"),
)


def routes(state: SandboxState) -> list[Route]:
    engine(state)  # a bad --workspace file fails at start, not at the first read
    out = []
    for region, prefix in SANDBOX_PREFIXES["app"].items():
        for path, op in _ROUTES:
            out.append(Route(prefix + path, bind(endpoint, state=state, region=region, op=op), methods=["GET"]))
    return out

"""The debugger page at `/`: watch messages arrive, see what each became (docs/debugger.md).

Everything here is read-only except one same-origin POST (reset).  Each row
of the stream is a `/_sandbox/deliveries` view plus a sequence number and
its fate in the words `cdpio explain` uses; a person is shown exactly as the
App API emulation returns them.  Nothing here ever sends a credential: the
request log and deliveries hold none, and the accepted credentials appear
masked (length and last four characters).

Safety: every route answers only when the `Host` header names the sandbox
itself (DNS rebinding: a web page on another host name cannot read the
stream), and the reset POST must carry an `Origin` equal to the page's own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from cdpio_cli import explain, mapping, messages
from cdpio_cli.credentials import mask
from cdpio_cli.sandbox import control, customerio, defaults, ingest
from cdpio_cli.sandbox.state import (
    DESTINATION_NOT_CONNECTED,
    DUPLICATE,
    SandboxState,
    _delivery_view,
)
from cdpio_cli.sandbox.web import json_response

PREFIX = "/_sandbox/debugger"
STATIC_DIR = Path(__file__).with_name("static")
PAGE_SIZE = 200  # rows rendered at most; the rest are paged on the server
MAX_PAGE_SIZE = 1000
PEOPLE_PAGE_SIZE = 50
ACTIVITIES_SHOWN = 100  # the App API's largest page (limit 1..100)
STREAM_TICK = 0.25  # seconds between checks for new rows
STREAM_HEARTBEAT = 15.0  # seconds between keep-alive comments
STREAM_RETRY_MS = 1000

# A content security policy that allows only the page's own files: no inline
# script, no other origin, no framing.  Data never goes through innerHTML.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}

# --- who may ask --------------------------------------------------------------
# Host and Origin are checked for every debugger path by the sandbox-wide
# guard (sandbox/guard.py: HostGuard) before a request gets here.


def _page_post(request: Request) -> bool:
    """A POST from the debugger page itself: the guard has already refused a
    foreign Origin; an action from the page must also carry one (curl and
    scripts use /_sandbox/reset instead)."""
    return request.method == "POST" and request.headers.get("origin") is not None


def _forbidden(why: str) -> Response:
    return Response(why + "\n", 403, media_type="text/plain", headers=SECURITY_HEADERS)


def with_security_headers(
    fn: Callable[..., Awaitable[Response]], state: SandboxState
) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint whose answers carry the page's security headers (CSP and friends)."""

    async def endpoint(request: Request) -> Response:
        response = await fn(request, state=state)
        response.headers.update(SECURITY_HEADERS)
        return response

    endpoint.__name__ = getattr(fn, "__name__", "endpoint")
    return endpoint


# --- the fate of a message, in explain's words -----------------------------------

# Drops the sandbox decides per request (ingest.py), which explain cannot
# see: what each one means.
_REQUEST_DROPS = {
    ingest.UNKNOWN_SOURCE: "the write key is not one this sandbox accepts",
    ingest.INVALID_KEY: "the API key is not one this sandbox accepts",
    ingest.WRONG_REGION: "the key belongs to a workspace in the other region",
    ingest.TOO_MANY_EVENTS: f"a batch may hold at most {messages.MAX_BATCH_EVENTS} events",
    ingest.BATCH_TOO_LARGE: f"the batch is over {messages.MAX_BATCH_BYTES // 1024} KB",
    ingest.MESSAGE_TOO_LARGE: f"a message is over {messages.MAX_MESSAGE_BYTES // 1024} KB",
    DUPLICATE: "a message with this messageId was already received",
}


# The destination's discard reasons (the mapping package) and Customer.io's own 400s
# (state.py); every other reason is a Segment (or Pipelines) ingest code.
_DESTINATION_DROPS = (mapping.DROP_REJECTED, mapping.DROP_NO_MAPPING, "CUSTOMERIO_400")


def fate(view: dict) -> str:
    """One line: the Customer.io operation(s) a delivery became, or why it was
    dropped; for the messages explain can judge, exactly explain's verdict."""
    reason = view["reason"]
    exp = explain.Explanation("", 0, "", action=view["action"])
    if reason is None:
        ops = view["operations"]
        exp.operations = ops
        exp.endpoint = mapping.V1_METRICS if ops and "metric" in ops[0] else mapping.V2
        return exp.verdict()
    if reason == DESTINATION_NOT_CONNECTED:
        return f"not delivered: the {defaults.CUSTOMERIO_DESTINATION_NAME} destination is not connected"
    if not reason.startswith(_DESTINATION_DROPS):
        exp.dropped_by = explain.SEGMENT
        exp.drop_reason = reason
        exp.drop_detail = _REQUEST_DROPS.get(reason) or _ingest_detail(view, reason)
        text = exp.verdict()
        if view["route"].startswith("pipelines"):
            text = text.replace("dropped by Segment", "dropped by the Pipelines API", 1)
        return text
    exp.dropped_by = explain.DESTINATION
    exp.drop_reason = reason
    return exp.verdict()


def _skeleton(view: dict) -> dict:
    """The parts of the message a delivery keeps, as a message."""
    msg: dict[str, Any] = {"type": view["type"]}
    for key in ("userId", "anonymousId", "messageId"):
        if view.get(key) is not None:
            msg[key] = view[key]
    label_key = "event" if view["type"] == "track" else "name"
    if view.get(label_key) is not None:
        msg[label_key] = view[label_key]
    return msg


def _ingest_detail(view: dict, reason: str) -> str | None:
    """explain's detail for a Segment discard code, from what the delivery kept."""
    if view["type"] is None:
        return None
    for problem in messages.spec_problems(_skeleton(view), size=0):
        if problem.ingest_code == reason:
            return problem.message
    return None


# --- the stream -----------------------------------------------------------------


class Filters:
    """The stream's filters: route (prefix), call type, fate and free text."""

    def __init__(self, query: Mapping[str, str]) -> None:
        self.route = query.get("route") or None
        self.type = query.get("type") or None
        self.fate = query.get("fate") or None
        self.text = (query.get("q") or "").strip().lower() or None

    def match(self, row: tuple) -> bool:
        mid, mtype, label, user_id, anon, route, status, reason, action = row[:9]
        if self.route is not None and not (route == self.route or route.startswith(self.route + ".")):
            return False
        if self.type is not None and mtype != self.type:
            return False
        if self.fate is not None and status != self.fate:
            return False
        if self.text is not None:
            hay = " ".join(
                str(v) for v in (mid, mtype, label, user_id, anon, route, status, reason, action) if v is not None
            ).lower()
            if self.text not in hay:
                return False
        return True


def row_view(seq: int, row: tuple) -> dict:
    """One stream row: the `/_sandbox/deliveries` view, its sequence number and fate."""
    view = _delivery_view(row)
    view["seq"] = seq
    view["fate"] = fate(view)
    return view


def _snapshot(state: SandboxState) -> tuple[int, int, Any]:
    """(epoch, total rows ever, the deque) under the lock; the epoch changes on reset."""
    deliveries = state.deliveries
    total = state.counts["delivered"] + state.counts["dropped"]
    return id(deliveries), total, deliveries


def newest(
    state: SandboxState, filters: Filters, *, before: int | None = None, after: int = 0, limit: int = PAGE_SIZE
) -> dict:
    """Matching rows, newest first: those with after < seq < before, at most `limit`."""
    with state.lock:
        epoch, total, deliveries = _snapshot(state)
        first_seq = total - len(deliveries) + 1
        rows: list[tuple[int, tuple]] = []
        matched = 0
        seq = total + 1
        for row in reversed(deliveries):
            seq -= 1
            if seq <= after:
                break
            if before is not None and seq >= before:
                continue
            if filters.match(row):
                matched += 1
                if len(rows) < limit:
                    rows.append((seq, row))
    return {
        "epoch": str(epoch),
        "total": total,
        "kept_from": first_seq,
        "matched": matched,
        "rows": [row_view(s, r) for s, r in rows],
    }


def _counts(state: SandboxState) -> dict:
    c = state.counts
    return {
        "received": c["received"],
        "delivered": c["delivered"],
        "dropped": c["dropped"],
        "pending": state.pending_events,
    }


async def messages_page(request: Request, *, state: SandboxState) -> Response:
    """GET the stream's backlog a page at a time: ?before=SEQ&limit=N plus the filters."""
    q = request.query_params
    try:
        before = int(q["before"]) if q.get("before") else None
        limit = int(q.get("limit") or PAGE_SIZE)
    except ValueError:
        return json_response({"code": "bad_request", "message": "before and limit must be numbers"}, 400)
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    with state.lock:
        state.drain()
        page = newest(state, Filters(q), before=before, limit=limit)
        page["counts"] = _counts(state)
    return json_response(page)


def _sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


async def stream(request: Request, *, state: SandboxState) -> Response:
    """Server-sent events: `page` (the newest matching rows) on connect and after a
    reset, then `rows` whenever messages are processed.  A reconnect with
    Last-Event-ID continues where the stream left off."""
    filters = Filters(request.query_params)
    last = request.headers.get("last-event-id") or request.query_params.get("after")
    try:
        resume = int(last) if last else None
    except ValueError:
        resume = None

    async def events() -> AsyncIterator[bytes]:
        yield f"retry: {STREAM_RETRY_MS}\n\n".encode()
        with state.lock:
            state.drain()
            _, total, _ = _snapshot(state)
            if resume is None or resume > total:
                page = newest(state, filters)
                kind = "page"
            else:
                page = newest(state, filters, after=resume)
                kind = "rows"
            page["counts"] = _counts(state)
        yield _sse(kind, page, total)
        seen, quiet = total, 0.0
        while not state.stopping:
            await asyncio.sleep(STREAM_TICK)
            quiet += STREAM_TICK
            with state.lock:
                now_epoch, now_total, _ = _snapshot(state)
                if str(now_epoch) != page["epoch"] or now_total < seen:
                    page = newest(state, filters)
                    page["counts"] = _counts(state)
                    out = _sse("page", page, now_total)
                elif now_total > seen:
                    fresh = newest(state, filters, after=seen)
                    fresh["counts"] = _counts(state)
                    out = _sse("rows", fresh, now_total)
                else:
                    out = None
            seen = now_total
            if out is not None:
                quiet = 0.0
                yield out
            elif quiet >= STREAM_HEARTBEAT:
                quiet = 0.0
                yield b": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


# --- people: the App API's shapes ---------------------------------------------------


async def people(request: Request, *, state: SandboxState) -> Response:
    q = request.query_params
    try:
        offset = max(0, int(q.get("offset") or 0))
    except ValueError:
        return json_response({"code": "bad_request", "message": "offset must be a number"}, 400)
    text = (q.get("q") or "").strip().lower()
    with state.lock:
        ws = state.workspace
        everyone = list(ws.people.values())
        everyone.reverse()  # newest first
        if text:
            everyone = [p for p in everyone if any(text in str(v).lower() for v in (p.id, p.email, p.cio_id) if v)]
        shown = everyone[offset : offset + PEOPLE_PAGE_SIZE]
        rows = [
            {
                "cio_id": p.cio_id,
                "id": p.id,
                "email": p.email,
                "attributes": len(p.attributes),
                "devices": len(p.devices),
                "activities": len(p.activities),
                "unsubscribed": p.unsubscribed,
            }
            for p in shown
        ]
    return json_response({"people": rows, "total": len(everyone), "offset": offset, "page_size": PEOPLE_PAGE_SIZE})


async def person(request: Request, *, state: SandboxState) -> Response:
    """One person as the App API emulation answers GET .../attributes and .../activities."""
    with state.lock:
        ws = state.workspace
        found = ws.person_by(request.path_params["cio_id"], "cio_id")
        if found is None:
            return json_response({"code": "not_found", "message": "no such person (was the sandbox reset?)"}, 404)
        attributes = customerio.attributes_body(ws, found)
        activities = customerio.activities_body(state, found, limit=ACTIVITIES_SHOWN)
    return json_response(
        {
            "cio_id": found.cio_id,
            "attributes": attributes,
            "activities": activities,
            "activities_total": len(found.activities),
        }
    )


# --- summary ------------------------------------------------------------------------


def credentials(state: SandboxState) -> list[dict]:
    """What the sandbox accepts: every value masked, the sandbox's defaults named as such."""
    from cdpio_cli.sandbox.runner import _CREDENTIAL_FIELDS

    out = []
    for label, field_name in _CREDENTIAL_FIELDS.items():
        value = getattr(state.options, field_name)
        out.append(
            {
                "name": label,
                "masked": mask(value),
                "source": "sandbox default" if defaults.is_default(field_name, value) else "yours",
            }
        )
    return out


def faults(state: SandboxState) -> dict:
    o = state.options
    return {
        "fail_rate": o.fail_rate,
        "fail_status": o.fail_status,
        "throttle": o.throttle,
        "latency": o.latency,
        "drop_connections": o.drop_connections,
        "destination_connected": o.segment_destination_enabled,
    }


async def summary(request: Request, *, state: SandboxState) -> Response:
    per_route: dict[str, dict[str, int]] = {}
    with state.lock:
        state.drain()
        for row in state.deliveries:
            counts = per_route.setdefault(row[5], {"delivered": 0, "dropped": 0})
            counts[row[6]] += 1
        totals = state.summary()
        kept = len(state.deliveries)
        body = {
            "routes": dict(sorted(per_route.items())),
            "totals": totals,
            "kept": kept,
            "max_kept": state.options.max_deliveries,
            "pending": state.pending_events,
            "requests": state.request_count,
            "regions": {"customerio": state.options.region, "segment": state.options.region_of("segment")},
            "faults": faults(state),
            "credentials": credentials(state),
            "people": len(state.workspace.people),
            "uptime_s": round(time.time() - state.started_at, 1),
        }
    return json_response(body)


async def reset(request: Request, *, state: SandboxState) -> Response:
    if not _page_post(request):
        return _forbidden("reset needs a POST from the debugger page itself (same origin)")
    return await control.reset(request, state=state)


# --- the page and its files ------------------------------------------------------------

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}


def _static_files() -> dict[str, tuple[bytes, str]]:
    return {p.name: (p.read_bytes(), _TYPES[p.suffix]) for p in STATIC_DIR.iterdir() if p.suffix in _TYPES}


def routes(state: SandboxState) -> list[Route]:
    files = _static_files()

    async def page(request: Request, *, state: SandboxState) -> Response:
        content, media = files["index.html"]
        return Response(content, media_type=media)

    async def static(request: Request, *, state: SandboxState) -> Response:
        found = files.get(request.path_params["name"])
        if found is None or request.path_params["name"] == "index.html":
            return Response("not found\n", 404, media_type="text/plain")
        return Response(found[0], media_type=found[1])

    def route(path: str, fn: Callable[..., Awaitable[Response]], methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, with_security_headers(fn, state), methods=list(methods))

    return [
        route("/", page),
        route(PREFIX + "/static/{name}", static),
        route(PREFIX + "/messages", messages_page),
        route(PREFIX + "/stream", stream),
        route(PREFIX + "/people", people),
        route(PREFIX + "/people/{cio_id}", person),
        route(PREFIX + "/summary", summary),
        route(PREFIX + "/reset", reset, methods=("POST",)),
    ]

"""Segment: the Tracking API, the settings lookup and a Public API subset.

Facts (docs/contracts.md, "Segment"): the HTTP Tracking API
(https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/),
the Public API (https://docs.segmentapis.com/); the settings lookup is
analytics.js's `cdn.segment.com/v1/projects/<key>/settings` (undocumented).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from cdpio_cli.credentials import mask
from cdpio_cli.mapping import DEFAULT_SUBSCRIPTIONS
from cdpio_cli.messages import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES
from cdpio_cli.routes.endpoints import SANDBOX_PREFIXES
from cdpio_cli.sandbox import defaults
from cdpio_cli.sandbox.auth import bearer_token, same
from cdpio_cli.sandbox.ingest import BATCH_TOO_LARGE, MESSAGE_TOO_LARGE, Outcome, ingest
from cdpio_cli.sandbox.state import RecordError, SandboxState
from cdpio_cli.sandbox.web import bind, json_response, log, read_limited

CALLS = ("identify", "track", "page", "screen", "group", "alias")
DESTINATION_METADATA = {
    "id": "5f7dd78fe27ce7ff2b8bfa37",
    "name": defaults.CUSTOMERIO_DESTINATION_NAME,
    "slug": "actions-customerio",
}


async def ingest_endpoint(
    request: Request, *, state: SandboxState, service: str, region: str, call: str | None
) -> Response:
    """POST /{segment|pipelines}/v1/{call}: the shared Segment-shaped ingest."""
    headers = request.headers
    lenient = service == "pipelines" and headers.get("x-strict-mode") != "1"
    limit = MAX_MESSAGE_BYTES if call else MAX_BATCH_BYTES
    body = await read_limited(request, LENIENT_READ_BYTES if lenient else limit)
    route = f"{service}.{call or 'batch'}"
    entry = log(request, state, route, 0)
    if body.over:
        out = _unread_oversize(state, route, entry, call, lenient)
    else:
        if body.decoded and "content-encoding" in headers:
            # Already decompressed (within the cap): ingest sees plain JSON.
            headers = Headers(raw=[(k, v) for k, v in headers.raw if k != b"content-encoding"])
        try:
            out = ingest(
                state,
                service=service,
                call=call,
                raw=body.data,
                headers=headers,
                region_ok=region == state.options.region_of(service),
                entry=entry,
            )
        except RecordError as exc:
            # Nothing was accepted, no messageId counts as seen: a retry succeeds
            # once the file can be written again.
            entry["status"] = 503
            return json_response(
                {
                    "code": "record_failed",
                    "message": f"the sandbox could not record the messages ({exc}); nothing was accepted: retry",
                },
                503,
                {"retry-after": "1"},
            )
    entry["status"] = out.status
    if state.pending_events and state.idle_drainer is None:
        state.idle_drainer = asyncio.get_running_loop().create_task(_drain_when_idle(state))
    return json_response(out.body, out.status)


# Pipelines without strict mode answers 200 for an oversize request and drops
# it; up to this size it is still read, so each message's drop is counted.
LENIENT_READ_BYTES = 4 * MAX_BATCH_BYTES


def _unread_oversize(state: SandboxState, route: str, entry: dict, call: str | None, lenient: bool) -> Outcome:
    """A body over the cap, refused without being kept: Segment (and Pipelines in
    strict mode) answer 400; Pipelines otherwise 200 and drops it, unread."""
    reason = MESSAGE_TOO_LARGE if call else BATCH_TOO_LARGE
    if lenient:
        state.drop_unread(route, entry, reason)
        return Outcome(200, b"{}")
    what = "a message" if call else "the batch"
    limit_kb = (MAX_MESSAGE_BYTES if call else MAX_BATCH_BYTES) // 1024
    return Outcome(
        400, orjson.dumps({"code": "request_too_large", "message": f"{what} is over the {limit_kb} KB limit"})
    )


IDLE_AFTER = 0.05  # seconds without a new request before draining
IDLE_SLICE = 2_000  # messages per slice, so a new request waits little


async def _drain_when_idle(state: SandboxState) -> None:
    """Map queued messages in the gaps between requests, a slice at a time."""
    try:
        while state.pending_events:
            idle_for = time.monotonic() - state.last_accept
            if idle_for < IDLE_AFTER:
                await asyncio.sleep(IDLE_AFTER - idle_for)
                continue
            state.drain(limit=IDLE_SLICE)
            await asyncio.sleep(0)  # let a waiting request in between slices
    finally:
        state.idle_drainer = None


def ingest_routes(state: SandboxState, service: str) -> list[Route]:
    routes = []
    for region, prefix in SANDBOX_PREFIXES[service].items():
        for call in CALLS:
            routes.append(
                Route(
                    f"{prefix}/v1/{call}",
                    bind(ingest_endpoint, state=state, service=service, region=region, call=call),
                    methods=["POST"],
                )
            )
        for name in ("batch", "import"):  # import is an alias for batch
            routes.append(
                Route(
                    f"{prefix}/v1/{name}",
                    bind(ingest_endpoint, state=state, service=service, region=region, call=None),
                    methods=["POST"],
                )
            )
    return routes


# --- settings lookup (cdn.segment.com) -------------------------------------


async def settings(request: Request, *, state: SandboxState) -> Response:
    key = request.path_params["write_key"]
    # The path holds the write key: log it masked.
    path = request.url.path.replace(key, "<write_key>") if key else request.url.path
    if not same(key, state.options.write_key):
        log(request, state, "segment_cdn.settings", 404, path=path)
        return PlainTextResponse("Invalid path or write key provided.", 404)
    log(request, state, "segment_cdn.settings", 200, path=path)
    region = state.options.region_of("segment")
    integrations: dict = {
        "Segment.io": {
            "apiHost": "api.segment.io/v1" if region == "us" else "events.eu1.segmentapis.com/v1",
            "protocol": "https",
        }
    }
    if state.options.segment_destination_enabled:
        integrations[defaults.CUSTOMERIO_DESTINATION_NAME] = {
            "versionSettings": {"componentTypes": ["server"]},
            "type": "server",
        }
    return json_response(
        {
            "integrations": integrations,
            "plan": {"track": {"__default": {"enabled": True}}},
            "edgeFunction": {},
            "analyticsNextEnabled": True,
        }
    )


# --- Public API (api.segmentapis.com) ----------------------------------------


def _shown_to(token_is_yours: bool, field: str, value: str) -> bool:
    """A credential you passed to the sandbox may be a real one reused for a
    rehearsal: it is shown only to the Public API token you passed, never to
    the default token the banner prints (the sandbox's own defaults are no
    secret and are always shown)."""
    return token_is_yours or defaults.is_default(field, value)


def _source(state: SandboxState, token_is_yours: bool) -> dict:
    key = state.options.write_key
    return {
        "id": defaults.SEGMENT_SOURCE_ID,
        "slug": "cdpio-sandbox-http",
        "name": "cdpio sandbox (HTTP API)",
        "enabled": True,
        "workspaceId": defaults.SEGMENT_WORKSPACE["id"],
        # Hidden: what Segment answers a token without source-admin permission.
        "writeKeys": [key] if _shown_to(token_is_yours, "write_key", key) else [],
        "metadata": {"id": "iUM16Md8P2", "slug": "http-api", "name": "HTTP API", "categories": ["Server"]},
        "settings": {},
        "labels": [],
    }


def _destination(state: SandboxState, token_is_yours: bool) -> dict:
    # The destination may write to another workspace than the config names (a diagnosis case).
    site_id = state.options.segment_destination_site_id or state.options.site_id
    return {
        "id": defaults.SEGMENT_DESTINATION_ID,
        "name": defaults.CUSTOMERIO_DESTINATION_NAME,
        "enabled": True,
        "metadata": DESTINATION_METADATA,
        "sourceId": defaults.SEGMENT_SOURCE_ID,
        # Never the apiKey: the Public API masks secret settings.
        "settings": {
            "siteId": site_id if _shown_to(token_is_yours, "site_id", site_id) else mask(site_id),
            "accountRegion": "US 🇺🇸" if state.options.region == "us" else "EU 🇪🇺",
        },
    }


def _pagination(total: int) -> dict:
    return {"current": "MA==", "next": None, "previous": None, "totalEntries": total}


def public_api_error(status: int, type_: str, message: str) -> Response:
    """The Segment Public API's error envelope."""
    return json_response({"errors": [{"type": type_, "message": message, "status": status}]}, status)


def refuse_public_api_request(request: Request, state: SandboxState, route: str, region: str) -> Response | None:
    """The 401 for a token or regional host the sandbox does not accept, or None to go on."""
    if not same(
        bearer_token(request.headers.get("authorization")), state.options.public_api_token
    ) or region != state.options.region_of("segment_api"):
        log(request, state, route, 401)
        return public_api_error(401, "unauthorized", "Unauthorized: check the token and the region's host")
    return None


async def public_api(request: Request, *, state: SandboxState, region: str, what: str) -> Response:
    route = f"segment_api.{what}"
    refused = refuse_public_api_request(request, state, route, region)
    if refused is not None:
        return refused
    source_id = request.path_params.get("source_id")
    destination_id = request.path_params.get("destination_id")
    if (source_id is not None and source_id != defaults.SEGMENT_SOURCE_ID) or (
        destination_id is not None and destination_id != defaults.SEGMENT_DESTINATION_ID
    ):
        log(request, state, route, 404)
        return public_api_error(404, "not-found", "Resource not found")
    log(request, state, route, 200)
    yours = not defaults.is_default("public_api_token", state.options.public_api_token)
    connected = [_destination(state, yours)] if state.options.segment_destination_enabled else []
    data: dict[str, Any]
    if what == "workspace":
        data = {"workspace": dict(defaults.SEGMENT_WORKSPACE)}
    elif what == "sources":
        data = {"sources": [_source(state, yours)], "pagination": _pagination(1)}
    elif what == "source":
        data = {"source": _source(state, yours)}
    elif what == "connected":
        data = {"destinations": connected, "pagination": _pagination(len(connected))}
    elif what == "subscriptions":
        # The configured subscriptions, else the destination's default
        # ("Quick Setup") ones, as the mapping package runs them.
        listed = state.options.subscriptions
        subs: list[dict[str, Any]] = [
            {
                "id": f"sub_{s.action}",
                "name": s.name,
                "actionId": f"act_{s.action}",
                "actionSlug": s.action,
                "destinationId": defaults.SEGMENT_DESTINATION_ID,
                "modelId": "",
                "enabled": s.enabled,
                "trigger": s.trigger,
                "settings": {},
            }
            for s in (DEFAULT_SUBSCRIPTIONS if listed is None else listed)
        ]
        data = {"subscriptions": subs, "pagination": _pagination(len(subs))}
    else:  # destinations
        data = {"destinations": connected, "pagination": _pagination(len(connected))}
    return json_response({"data": data})


def routes(state: SandboxState) -> list[Route]:
    out = ingest_routes(state, "segment")
    out.append(
        Route(
            f"{SANDBOX_PREFIXES['segment_cdn']['us']}/v1/projects/{{write_key}}/settings",
            bind(settings, state=state),
            methods=["GET"],
        )
    )
    for region, prefix in SANDBOX_PREFIXES["segment_api"].items():
        for path, what in (
            ("", "workspace"),
            ("/", "workspace"),
            ("/sources", "sources"),
            ("/sources/{source_id}", "source"),
            ("/sources/{source_id}/connected-destinations", "connected"),
            ("/destinations", "destinations"),
            ("/destinations/{destination_id}/subscriptions", "subscriptions"),
        ):
            out.append(Route(prefix + path, bind(public_api, state=state, region=region, what=what), methods=["GET"]))
    return out

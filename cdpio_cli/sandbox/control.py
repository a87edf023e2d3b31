"""Inspection and control: /_sandbox/{health,info,requests,deliveries,reset}.

Never faulted, never logged in /_sandbox/requests, never shows a credential
(/_sandbox/info shows the sandbox's own defaults, which are not secrets, and
only to loopback clients; credentials a user passed are masked).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cdpio_cli import __version__
from cdpio_cli.routes.endpoints import SANDBOX_PREFIXES
from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.state import SandboxState
from cdpio_cli.sandbox.web import bind, json_response


async def health(request: Request, *, state: SandboxState) -> Response:
    return json_response(
        {
            "ok": True,
            "version": __version__,
            "region": state.options.region,
            "uptime_s": round(time.time() - state.started_at, 3),
            "segment_region": state.options.region_of("segment"),
            "services": {name: prefixes[state.options.region_of(name)] for name, prefixes in SANDBOX_PREFIXES.items()},
            "requests": state.request_count,
            "pending": state.pending_events,
            "destination_connected": state.options.segment_destination_enabled,
        }
    )


_LOOPBACK = ("127.", "::1", "localhost")


def sandbox_info(options: SandboxOptions, url: str | None = None, *, reveal_defaults: bool = True) -> dict:
    """The regions and credentials a sandbox accepts.  `credentials` masks
    everything a user passed; with `reveal_defaults` the sandbox's own
    defaults are shown in full (they open only this emulator) and listed in
    `defaults`, which `cdpio --sandbox-url` reads to fill in what no config names."""
    from cdpio_cli.credentials import mask
    from cdpio_cli.sandbox import defaults
    from cdpio_cli.sandbox.runner import CREDENTIAL_OPTION_FIELDS

    accepted, usable = {}, {}
    for field_name in CREDENTIAL_OPTION_FIELDS:
        value = getattr(options, field_name)
        if reveal_defaults and defaults.is_default(field_name, value):
            accepted[field_name] = usable[field_name] = value
        else:
            accepted[field_name] = mask(value)
    info: dict[str, Any] = {
        "sandbox": "cdpio",
        "version": __version__,
        "region": options.region,
        "segment_region": options.region_of("segment"),
        "regions": {"customerio": options.region, "segment": options.region_of("segment")},
        "credentials": accepted,
    }
    if reveal_defaults:
        info["defaults"] = usable
    if url is not None:
        info = {"url": url, "port": int(url.rsplit(":", 1)[1]), **info}
    return info


async def info(request: Request, *, state: SandboxState) -> Response:
    client = request.client.host if request.client else ""
    if not client.startswith(_LOOPBACK):
        # The defaults are harmless, but a sandbox bound to a LAN address
        # should not hand out anything to its neighbours.
        return json_response({"code": "forbidden", "message": "/_sandbox/info answers loopback clients only"}, 403)
    return json_response(sandbox_info(state.options))


async def requests(request: Request, *, state: SandboxState) -> Response:
    route = request.query_params.get("route")
    with state.lock:
        state.drain()  # so each entry's drops are final
        rows = [dict(r) for r in state.requests if route is None or r["route"].startswith(route)]
    return json_response({"requests": rows, "total": state.request_count})


async def deliveries(request: Request, *, state: SandboxState) -> Response:
    q = request.query_params
    try:
        limit = int(q["limit"]) if "limit" in q else None
    except ValueError:
        return json_response({"code": "bad_request", "message": "limit must be a number"}, 400)
    rows = state.delivery_views(
        message_id=q.get("messageId"),
        user_id=q.get("userId"),
        status=q.get("status"),
        route=q.get("route"),
        limit=limit,
    )
    return json_response({"deliveries": rows, "summary": state.summary()})


async def reset(request: Request, *, state: SandboxState) -> Response:
    state.reset()
    if state.faults is not None:
        state.faults.reset()
    return json_response({"ok": True})


def routes(state: SandboxState) -> list[Route]:
    return [
        Route("/_sandbox/health", bind(health, state=state), methods=["GET"]),
        Route("/_sandbox/info", bind(info, state=state), methods=["GET"]),
        Route("/_sandbox/requests", bind(requests, state=state), methods=["GET"]),
        Route("/_sandbox/deliveries", bind(deliveries, state=state), methods=["GET"]),
        Route("/_sandbox/reset", bind(reset, state=state), methods=["POST"]),
    ]

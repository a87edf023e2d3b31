"""Segment Protocols tracking plans in the Public API emulation.

GET /tracking-plans, /tracking-plans/{id} and /tracking-plans/{id}/rules as
documented at https://docs.segmentapis.com/tag/Tracking-Plans: answers are
`{"data": {...}}`, lists page with `pagination.count` and `pagination.cursor`
and answer `pagination: {current, next, previous, totalEntries}`; each rule is
`{type, key, version, jsonSchema}` where jsonSchema describes the whole message
(the event's properties sit under properties.properties).  `cdpio plan pull`
reads these; the sandbox plan is the one in docs/tracking-plans.md.
"""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cdpio_cli.routes.endpoints import SANDBOX_PREFIXES
from cdpio_cli.sandbox.segment import public_api_error, refuse_public_api_request
from cdpio_cli.sandbox.state import SandboxState
from cdpio_cli.sandbox.web import bind, json_response, log

PLAN_ID = "tp_cdpio_sandbox"
LIBRARY_ID = "tp_cdpio_rule_library"
MAX_PAGE = 200  # the Public API's largest pagination.count

_PLAN_TYPE = {"type": "string", "enum": ["Free", "Pro", "Enterprise"]}


def _message_schema(field: str, properties: dict, required: list[str]) -> dict:
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {field: {"type": "object", "properties": properties, "required": required}},
        "required": [field] if required else [],
    }


def _rule(rtype: str, key: str | None, field: str, properties: dict, required: list[str]) -> dict:
    return {
        "type": rtype,
        "key": key,
        "version": 1,
        "jsonSchema": _message_schema(field, properties, required),
        "createdAt": "2026-01-05T10:00:00.000Z",
        "updatedAt": "2026-01-05T10:00:00.000Z",
        "deprecatedAt": None,
    }


RULES = [
    _rule("TRACK", "Signed Up", "properties", {"plan_type": _PLAN_TYPE}, ["plan_type"]),
    _rule("TRACK", "Checkout Started", "properties", {"cart_value": {"type": "number", "minimum": 0}}, ["cart_value"]),
    _rule(
        "TRACK",
        "Order Completed",
        "properties",
        {
            "order_id": {"type": "string"},
            "total": {"type": "number"},
            "currency": {"type": "string", "enum": ["USD", "EUR"]},
        },
        ["order_id", "total"],
    ),
    _rule(
        "IDENTIFY",
        None,
        "traits",
        {"email": {"type": "string", "format": "email"}, "is_trial": {"type": "boolean"}, "plan_type": _PLAN_TYPE},
        ["email"],
    ),
    _rule("PAGE", None, "properties", {"url": {"type": "string"}}, ["url"]),
    {**_rule("TRACK", "Legacy Event", "properties", {}, []), "deprecatedAt": "2026-02-01T00:00:00.000Z"},
]

PLANS = [
    {
        "id": PLAN_ID,
        "name": "cdpio sandbox plan",
        "slug": "cdpio-sandbox-plan",
        "type": "LIVE",
        "description": "The tracking plan of docs/tracking-plans.md",
        "createdAt": "2026-01-05T10:00:00.000Z",
        "updatedAt": "2026-01-05T10:00:00.000Z",
    },
    {
        "id": LIBRARY_ID,
        "name": "Property library",
        "slug": "property-library",
        "type": "RULE_LIBRARY",
        "description": "Shared rules (not a live plan)",
        "createdAt": "2026-01-05T10:00:00.000Z",
        "updatedAt": "2026-01-05T10:00:00.000Z",
    },
]


def _cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def _page(request: Request, items: list) -> tuple[list, dict] | Response:
    """One page of `items` for pagination.count / pagination.cursor."""
    raw_count = request.query_params.get("pagination.count", "")
    raw_cursor = request.query_params.get("pagination.cursor")
    try:
        count = int(raw_count) if raw_count else MAX_PAGE
        offset = int(base64.b64decode(raw_cursor, validate=True).decode()) if raw_cursor else 0
    except ValueError:
        return public_api_error(
            422, "validation", "pagination.count must be a number and pagination.cursor a cursor from an earlier answer"
        )
    if not 1 <= count <= MAX_PAGE or offset < 0:
        return public_api_error(422, "validation", f"pagination.count must be between 1 and {MAX_PAGE}")
    chunk = items[offset : offset + count]
    following = offset + count
    return chunk, {
        "current": _cursor(offset),
        "next": _cursor(following) if following < len(items) else None,
        "previous": _cursor(max(0, offset - count)) if offset else None,
        "totalEntries": len(items),
    }


async def tracking_plans(request: Request, *, state: SandboxState, region: str, what: str) -> Response:
    route = f"segment_api.{what}"
    refused = refuse_public_api_request(request, state, route, region)
    if refused is not None:
        return refused
    plan_id = request.path_params.get("plan_id")
    plan = next((p for p in PLANS if p["id"] == plan_id), None)
    if plan_id is not None and plan is None:
        log(request, state, route, 404)
        return public_api_error(404, "not-found", "Resource not found")
    if what == "tracking_plan":
        log(request, state, route, 200)
        return json_response({"data": {"trackingPlan": plan}})
    items = PLANS if what == "tracking_plans" else (RULES if plan_id == PLAN_ID else [])
    wanted = request.query_params.get("type")
    if what == "tracking_plans" and wanted:
        items = [p for p in items if p["type"] == wanted]
    paged = _page(request, items)
    if isinstance(paged, Response):
        log(request, state, route, paged.status_code)
        return paged
    chunk, pagination = paged
    log(request, state, route, 200)
    key = "trackingPlans" if what == "tracking_plans" else "rules"
    return json_response({"data": {key: chunk, "pagination": pagination}})


def routes(state: SandboxState) -> list[Route]:
    out = []
    for region, prefix in SANDBOX_PREFIXES["segment_api"].items():
        for path, what in (
            ("/tracking-plans", "tracking_plans"),
            ("/tracking-plans/{plan_id}", "tracking_plan"),
            ("/tracking-plans/{plan_id}/rules", "tracking_plan_rules"),
        ):
            out.append(
                Route(prefix + path, bind(tracking_plans, state=state, region=region, what=what), methods=["GET"])
            )
    return out

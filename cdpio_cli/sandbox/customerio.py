"""Customer.io: Pipelines (Segment-shaped), the Track API v1/v2 and App API reads.

Facts: docs/contracts.md (Track v1/v2, Pipelines, App API, with their public
sources) and docs/lint.md (the documented 400 limit messages).

Regions: the sandbox workspace lives in one region.  Track on the US prefix
for an EU workspace redirects (307) to the EU prefix; Track on the EU prefix
for a US workspace answers 401; the App API on the wrong prefix answers 401;
`/api/v1/accounts/region` answers on either prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cdpio_cli.messages import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES
from cdpio_cli.routes.endpoints import SANDBOX_PREFIXES
from cdpio_cli.sandbox import defaults
from cdpio_cli.sandbox.auth import basic_pair, same
from cdpio_cli.sandbox.campaigns import app_error, refuse_app_request
from cdpio_cli.sandbox.operations import OpError, check_id, identifier_from_path, validate_operation
from cdpio_cli.sandbox.people import Person
from cdpio_cli.sandbox.segment import ingest_routes
from cdpio_cli.sandbox.state import SandboxState
from cdpio_cli.sandbox.views import UNKNOWN_FIELD, UNKNOWN_VALUE, activities_view, attributes_view
from cdpio_cli.sandbox.web import base_url, bind, json_response, log, parse_json
from cdpio_cli.sandbox.workspace import Workspace

# A Track API handler: (workspace, path parameters, parsed body, raw body) -> answer.
TrackHandler = Callable[[Workspace, dict, Any, bytes], Response]

TRACK_UNAUTHORIZED = {"meta": {"error": "Unauthorized request"}}
V2_MAX_OP_BYTES = MAX_MESSAGE_BYTES  # 32 KB per operation / entity request
V2_MAX_BATCH_BYTES = MAX_BATCH_BYTES  # 500 KB per batch request


# --- Track API -------------------------------------------------------------


def _track_authorized(request: Request, state: SandboxState) -> bool:
    pair = basic_pair(request.headers.get("authorization"))
    return pair is not None and same(pair[0], state.options.site_id) and same(pair[1], state.options.track_api_key)


def _meta_error(message: str) -> Response:
    return json_response({"meta": {"error": message}}, 400)


def _meta_errors(message: str) -> Response:
    return json_response({"meta": {"errors": [message]}}, 400)


async def track(request: Request, *, state: SandboxState, region: str, op: str) -> Response:
    route = f"track.{op}"
    if not _track_authorized(request, state):
        log(request, state, route, 401)
        return json_response(TRACK_UNAUTHORIZED, 401)
    workspace_region = state.options.region
    if op == "region":
        log(request, state, route, 200)
        prefix = SANDBOX_PREFIXES["track"][workspace_region]
        return json_response(
            {"url": base_url(request) + prefix, "region": workspace_region, "environment_id": defaults.WORKSPACE_ID}
        )
    if region != workspace_region:
        if workspace_region == "eu":
            # An EU account on the US host is redirected (https://docs.customer.io/api/track/)
            us, eu = SANDBOX_PREFIXES["track"]["us"], SANDBOX_PREFIXES["track"]["eu"]
            target = eu + request.url.path[len(us) :]
            if request.url.query:
                target += "?" + request.url.query
            log(request, state, route, 307)
            return Response(status_code=307, headers={"Location": base_url(request) + target})
        log(request, state, route, 401)  # a US account on the EU host fails
        return json_response(TRACK_UNAUTHORIZED, 401)
    raw = await request.body()
    try:
        body = parse_json(raw, empty={})
    except ValueError:
        log(request, state, route, 400)
        if op in ("entity", "batch"):
            return _v2_error(400, OpError("invalid", "", "the request body is not valid JSON"))
        return _meta_error("the request body is not valid JSON")
    with state.lock:
        state.drain()  # keep Segment/Pipelines traffic and Track calls in order
        response = _TRACK_HANDLERS[op](state.workspace, request.path_params, body, raw)
    entry = log(request, state, route, response.status_code)
    if op == "batch" and isinstance(body, dict) and isinstance(body.get("batch"), list):
        entry["messages"] = len(body["batch"])
    return response


def _path_identifiers(params: dict) -> dict | OpError:
    kind, value = identifier_from_path(params["identifier"])
    if kind == "id":
        err = check_id(value, "id")
        if err:
            return err
    return {kind: value}


def _apply(workspace: Workspace, op: dict, style: str) -> Response:
    err = workspace.apply(op)
    if err is None:
        return json_response({})
    return _meta_errors(err.message) if style == "errors" else _meta_error(err.message)


def _identify(ws: Workspace, params: dict, body: Any, raw: bytes) -> Response:
    if not isinstance(body, dict):
        return _meta_error("the request body must be a JSON object of attributes")
    ids = _path_identifiers(params)
    if isinstance(ids, OpError):
        return _meta_error(ids.message)
    if "id" in body:
        err = check_id(body["id"], "id")
        if err:
            return _meta_error(err.message)
    op = {"type": "person", "action": "identify", "identifiers": ids, "attributes": body}
    if body.get("_timestamp") is not None:
        op["timestamp"] = body["_timestamp"]
    return _apply(ws, op, "error")


def _event_op(body: dict, identifiers: dict) -> dict | OpError:
    etype = body.get("type", "event") or "event"
    if etype not in ("event", "page", "screen"):
        return OpError("invalid", "type", "type must be one of event, page, screen")
    data = body.get("data")
    op = {
        "type": "person",
        "action": etype,
        "identifiers": identifiers,
        "name": body.get("name"),
        "attributes": data if data is not None else None,
    }
    if data is not None and not isinstance(data, dict):
        op["attributes"] = data  # validation reports "event data must be a hash"
    for key in ("id", "timestamp"):
        if body.get(key) is not None:
            op[key] = body[key]
    return op


def _event(ws: Workspace, params: dict, body: Any, raw: bytes) -> Response:
    if not isinstance(body, dict):
        return _meta_errors("the request body must be a JSON object")
    ids = _path_identifiers(params)
    if isinstance(ids, OpError):
        return _meta_errors(ids.message)
    op = _event_op(body, ids)
    if isinstance(op, OpError):
        return _meta_errors(op.message)
    return _apply(ws, op, "errors")


def _anonymous_event(ws: Workspace, params: dict, body: Any, raw: bytes) -> Response:
    if not isinstance(body, dict):
        return _meta_errors("the request body must be a JSON object")
    anon = body.get("anonymous_id")
    op = _event_op(body, {"anonymous_id": anon} if anon else {"anonymous_id": "-"})
    if isinstance(op, OpError):
        return _meta_errors(op.message)
    if not anon:
        # Without anonymous_id it is an "invite"-style event: validated, kept nowhere.
        err = validate_operation(op)
        return _meta_errors(err.message) if err else json_response({})
    return _apply(ws, op, "errors")


def _simple(action: str) -> TrackHandler:
    def handler(ws: Workspace, params: dict, body: Any, raw: bytes) -> Response:
        ids = _path_identifiers(params)
        if isinstance(ids, OpError):
            return _meta_error(ids.message)
        return _apply(ws, {"type": "person", "action": action, "identifiers": ids}, "error")

    return handler


def _add_device(ws: Workspace, params: dict, body: Any, raw: bytes) -> Response:
    device = body.get("device") if isinstance(body, dict) else None
    if not isinstance(device, dict):
        return _meta_errors("device is required")
    if not device.get("id"):
        return _meta_errors("device id is required")
    if not device.get("platform"):
        return _meta_errors("device platform is required")
    ids = _path_identifiers(params)
    if isinstance(ids, OpError):
        return _meta_errors(ids.message)
    attributes = dict(device.get("attributes") or {})
    attributes.update({k: v for k, v in device.items() if k not in ("id", "platform", "last_used", "attributes")})
    op = {
        "type": "person",
        "action": "add_device",
        "identifiers": ids,
        "device": {
            "token": device["id"],
            "platform": device["platform"],
            "last_used": device.get("last_used"),
            "attributes": attributes,
        },
    }
    return _apply(ws, op, "errors")


def _delete_device(ws: Workspace, params: dict, body: Any, raw: bytes) -> Response:
    ids = _path_identifiers(params)
    if isinstance(ids, OpError):
        return _meta_errors(ids.message)
    op = {"type": "person", "action": "delete_device", "identifiers": ids, "device": {"token": params["device_id"]}}
    return _apply(ws, op, "errors")


def _merge(ws: Workspace, params: dict, body: Any, raw: bytes) -> Response:
    if not isinstance(body, dict):
        return _meta_error("the request body must be a JSON object")
    return _apply(
        ws,
        {"type": "person", "action": "merge", "primary": body.get("primary"), "secondary": body.get("secondary")},
        "error",
    )


def _metrics(ws: Workspace, params: dict, body: Any, raw: bytes) -> Response:
    if not isinstance(body, dict) or not body.get("delivery_id") or not body.get("metric"):
        return _meta_errors("delivery_id and metric are required")
    ws.apply_metric(body)
    return json_response({})


def _v2_error(status: int, err: OpError) -> Response:
    return json_response({"errors": [err.as_v2()]}, status)


def _entity(ws: Workspace, params: dict, body: Any, raw: bytes) -> Response:
    if len(raw) > V2_MAX_OP_BYTES:
        return _v2_error(400, OpError("too_large", "", "the request must be smaller than 32 KB"))
    err = ws.apply(body)
    return json_response({}) if err is None else _v2_error(400, err)


def _batch(ws: Workspace, params: dict, body: Any, raw: bytes) -> Response:
    if len(raw) > V2_MAX_BATCH_BYTES:
        return _v2_error(400, OpError("too_large", "", "the request must be smaller than 500 KB"))
    ops = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(ops, list):
        return _v2_error(400, OpError("required", "batch", "batch must be an array of operations"))
    check_sizes = len(raw) > V2_MAX_OP_BYTES
    errors = []
    for i, op in enumerate(ops):
        if check_sizes and len(orjson.dumps(op)) > V2_MAX_OP_BYTES:
            errors.append(OpError("too_large", "", "each operation must be smaller than 32 KB").as_v2(i))
            continue
        err = ws.apply(op)
        if err is not None:
            errors.append(err.as_v2(i))
    if errors:
        return json_response({"errors": errors}, 207)
    return json_response({})


_TRACK_HANDLERS: dict[str, TrackHandler] = {
    "identify": _identify,
    "delete": _simple("delete"),
    "event": _event,
    "anonymous_event": _anonymous_event,
    "add_device": _add_device,
    "delete_device": _delete_device,
    "suppress": _simple("suppress"),
    "unsuppress": _simple("unsuppress"),
    "merge": _merge,
    "metrics": _metrics,
    "entity": _entity,
    "batch": _batch,
}

# Most specific first: starlette takes the first full match.
_TRACK_ROUTES = (
    ("/api/v1/accounts/region", "region", ["GET"]),
    ("/api/v1/customers/{identifier:path}/devices/{device_id}", "delete_device", ["DELETE"]),
    ("/api/v1/customers/{identifier:path}/devices", "add_device", ["PUT"]),
    ("/api/v1/customers/{identifier:path}/events", "event", ["POST"]),
    ("/api/v1/customers/{identifier:path}/suppress", "suppress", ["POST"]),
    ("/api/v1/customers/{identifier:path}/unsuppress", "unsuppress", ["POST"]),
    ("/api/v1/customers/{identifier:path}", "identify", ["PUT"]),
    ("/api/v1/customers/{identifier:path}", "delete", ["DELETE"]),
    ("/api/v1/events", "anonymous_event", ["POST"]),
    ("/api/v1/merge_customers", "merge", ["POST"]),
    ("/api/v1/metrics", "metrics", ["POST"]),
    ("/api/v2/entity", "entity", ["POST"]),
    ("/api/v2/batch", "batch", ["POST"]),
)


# --- App API ---------------------------------------------------------------


async def app_api(request: Request, *, state: SandboxState, region: str, op: str) -> Response:
    route = f"app.{op}"
    refused = refuse_app_request(request, state, route, region)  # 401, or 429 past 10 requests/s
    if refused is not None:
        return refused
    with state.lock:
        state.drain()
        response = _app(state, request, op)
    log(request, state, route, response.status_code)
    return response


def _app(state: SandboxState, request: Request, op: str) -> Response:
    ws = state.workspace
    query = request.query_params
    if op == "workspaces":
        stats = ws.stats()
        return json_response(
            {
                "workspaces": [
                    {
                        "id": defaults.WORKSPACE_ID,
                        "name": defaults.WORKSPACE_NAME,
                        "messages_sent": 0,
                        "billable_messages_sent": 0,
                        "people": stats["people"],
                        "object_types": stats["object_types"],
                        "objects": stats["objects"],
                        UNKNOWN_FIELD: UNKNOWN_VALUE,
                    }
                ],
                UNKNOWN_FIELD: UNKNOWN_VALUE,
            }
        )
    if op == "customers":
        email = query.get("email")
        if not email:
            return app_error(400, "email is required")
        person = ws.find("email", email)
        results = (
            []
            if person is None
            else [{"email": person.email, "id": person.id, "cio_id": person.cio_id, UNKNOWN_FIELD: UNKNOWN_VALUE}]
        )
        return json_response({"results": results, UNKNOWN_FIELD: UNKNOWN_VALUE})
    id_type = query.get("id_type", "id")
    if id_type not in ("id", "email", "cio_id"):
        return app_error(400, "id_type must be one of id, email, cio_id")
    person = ws.person_by(request.path_params["customer_id"], id_type)
    if person is None:
        return app_error(404, "The customer_id does not exist.")
    if op == "attributes":
        return json_response(attributes_body(ws, person))
    # limit: default 10, max 100; start: the opaque `next` of the page before
    # (journeys-app.json getPersonActivities parameters).
    try:
        limit = int(query.get("limit", "10"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return app_error(400, "limit must be a number from 1 to 100")
    try:
        body = activities_body(
            state,
            person,
            type_=query.get("type") or None,
            name=query.get("name") or None,
            limit=limit,
            start=query.get("start") or None,
        )
    except ValueError as exc:
        return app_error(400, str(exc))
    return json_response(body)


def attributes_body(ws: Workspace, person: Person) -> dict:
    """GET /v1/customers/{id}/attributes, as answered (the debugger page shows the same)."""
    view = attributes_view(person)
    view["customer"][UNKNOWN_FIELD] = UNKNOWN_VALUE
    for device in view["customer"]["devices"]:
        device[UNKNOWN_FIELD] = UNKNOWN_VALUE
    view[UNKNOWN_FIELD] = UNKNOWN_VALUE
    return view


def activities_body(
    state: SandboxState,
    person: Person,
    *,
    limit: int,
    type_: str | None = None,
    name: str | None = None,
    start: str | None = None,
) -> dict:
    """One page of GET /v1/customers/{id}/activities, as answered; ValueError for a bad cursor."""
    activities, cursor = activities_view(
        person, type_=type_, name=name, limit=limit, start=start, event_data=state.options.activity_data == "properties"
    )
    body: dict[str, Any] = {"activities": activities}
    if cursor is not None:
        body["next"] = cursor  # no `next` on the last page
    body[UNKNOWN_FIELD] = UNKNOWN_VALUE
    return body


_APP_ROUTES = (
    ("/v1/workspaces", "workspaces"),
    ("/v1/customers", "customers"),
    ("/v1/customers/{customer_id:path}/attributes", "attributes"),
    ("/v1/customers/{customer_id:path}/activities", "activities"),
)


def routes(state: SandboxState) -> list[Route]:
    out = ingest_routes(state, "pipelines")  # Pipelines is Segment-shaped: one ingest path
    for region, prefix in SANDBOX_PREFIXES["track"].items():
        for path, op, methods in _TRACK_ROUTES:
            out.append(Route(prefix + path, bind(track, state=state, region=region, op=op), methods=methods))
    for region, prefix in SANDBOX_PREFIXES["app"].items():
        for path, op in _APP_ROUTES:
            out.append(Route(prefix + path, bind(app_api, state=state, region=region, op=op), methods=["GET"]))
    return out

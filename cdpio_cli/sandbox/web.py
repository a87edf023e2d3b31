"""Small helpers shared by the sandbox's route modules."""

from __future__ import annotations

from typing import Any, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cdpio_cli.sandbox.state import SandboxState

ENTRY_KEY = "cdpio.entry"     # scope key: the request-log entry of this request


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    return Response(content, status, headers=headers, media_type="application/json")


def parse_json(raw: bytes, *, empty: Any = None) -> Any:
    """The parsed body; `empty` for an empty body; raises ValueError when it is not JSON."""
    if not raw.strip():
        return empty
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def log(request: Request, state: SandboxState, route: str, status: int, *,
        path: str | None = None, messages: int = 0) -> dict:
    entry = state.log_request(request.method, path or request.url.path, route, status, messages)
    request.scope[ENTRY_KEY] = entry
    return entry


def bind(fn: Callable, **bound: Any) -> Callable:
    """A starlette endpoint that calls fn(request, **bound)."""
    async def endpoint(request: Request) -> Response:
        return await fn(request, **bound)
    endpoint.__name__ = getattr(fn, "__name__", "endpoint")
    return endpoint

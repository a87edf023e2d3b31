"""What the sandbox refuses before any route sees a request.

`HostGuard`: Host and Origin checks for the sandbox's own pages, `/_sandbox/*` and `/`.

A web page can reach a server on 127.0.0.1 through the visitor's browser:
either cross-origin (a form POST needs no CORS permission), or through DNS
rebinding, where the page's own host name is re-pointed at 127.0.0.1 so the
browser treats the sandbox as same-origin.  Neither may read or reset the
sandbox (https://en.wikipedia.org/wiki/DNS_rebinding):

- a request whose `Host` is not one of the sandbox's own names gets 421;
- a state-changing request (anything but GET, HEAD, OPTIONS) whose `Origin` is
  not the sandbox itself gets 403.  No `Origin` at all is fine: curl, httpx
  and the cdpio CLI send none.

The emulated services keep answering on any `Host`: SDKs in a container reach
the sandbox under names like `host.docker.internal`.

`BodyCap`: a size cap on every request body the Segment-shaped ingest does not
read itself (it applies the documented per-call limits while reading; see
web.read_limited).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.types import Message, Receive, Scope, Send

from cdpio_cli.messages import MAX_BATCH_BYTES
from cdpio_cli.routes.endpoints import SANDBOX_PREFIXES
from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.web import DRAIN_LIMIT

CONTROL_PREFIX = "/_sandbox"
LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The Track v1 API documents no body limit and v2's 500 KB is checked by its
# route: this only keeps one request from holding unbounded memory.
OTHER_BODY_CAP = 4 * MAX_BATCH_BYTES
_READS_ITS_OWN_BODY = tuple(
    prefix + "/v1/" for service in ("segment", "pipelines") for prefix in SANDBOX_PREFIXES[service].values()
)


def guarded(path: str) -> bool:
    """The paths that belong to the sandbox itself, not to an emulated service."""
    return path == "/" or path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def _split_host(value: str) -> tuple[str, int | None] | None:
    """`Host`'s name and port (None when absent); None when it does not parse."""
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None or parts.username is not None or parts.path:
        return None
    return parts.hostname.rstrip("."), port


class HostGuard:
    """ASGI middleware; outermost, so a refused request reaches nothing else."""

    def __init__(self, app: Any, options: SandboxOptions):
        self.app = app
        host = options.host.strip("[]").lower()
        self.names = LOCAL_NAMES | {host}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        server = scope.get("server") or (None, None)
        names = self.names | ({server[0].lower()} if server[0] else set())
        port = server[1]
        headers = {k: v for k, v in scope["headers"] if k in (b"host", b"origin")}
        raw_host = headers.get(b"host")
        # No Host at all is an HTTP/1.0 client, never a browser; an empty one names nothing.
        if raw_host is not None:
            host = raw_host.decode("latin-1")
            split = _split_host(host) if host else None
            if split is None or split[0] not in names or (split[1] is not None and split[1] != port):
                await _refuse(
                    send,
                    421,
                    "misdirected_request",
                    f"the sandbox answers {scope['path']} only under its own names "
                    f"({', '.join(_shown(n) for n in sorted(names))}, port {port}), not Host {host!r}: "
                    "a page re-pointing its own name at the sandbox (DNS rebinding) is refused",
                )
                return
        origin = headers.get(b"origin")
        if origin is not None and scope["method"] not in SAFE_METHODS:
            text = origin.decode("latin-1")
            parts = _split_host(text.partition("://")[2]) if text.startswith("http://") else None
            same = parts is not None and parts[0] in names and (parts[1] or 80) == port
            if not same:
                await _refuse(
                    send,
                    403,
                    "cross_origin",
                    f"{scope['method']} {scope['path']} from a web page at Origin {text!r} is refused: "
                    "only the sandbox's own pages or clients that send no Origin (curl, the cdpio CLI) "
                    "may change its state",
                )
                return
        await self.app(scope, receive, send)


def _shown(name: str) -> str:
    return f"[{name}]" if ":" in name else name


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"code": code, "message": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyCap:
    """ASGI middleware: a body over OTHER_BODY_CAP gets 413 before the route runs.

    The body is read here (at most the cap is kept) and handed on whole.
    """

    def __init__(self, app: Any, cap: int = OTHER_BODY_CAP):
        self.app = app
        self.cap = cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_READS_ITS_OWN_BODY):
            await self.app(scope, receive, send)
            return
        declared = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = int(value) if value.isdigit() else None
        if declared is not None and declared > self.cap:
            if declared <= DRAIN_LIMIT:
                await _discard(receive, 0)
            await self._refuse(send)
            return
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                parts = []
                first = message
                break
            size += len(message.get("body", b""))
            if size > self.cap:
                if message.get("more_body"):
                    await _discard(receive, size)
                await self._refuse(send)
                return
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                first = {"type": "http.request", "body": b"".join(parts), "more_body": False}
                break
        handed = False

        async def replay() -> Message:
            nonlocal handed
            if not handed:
                handed = True
                return first
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await _refuse(
            send, 413, "request_too_large", f"the request body is over the sandbox's {self.cap // 1024} KB cap"
        )


async def _discard(receive: Receive, seen: int) -> None:
    """Read and drop the rest of a body (up to DRAIN_LIMIT in all), so the
    client can read the answer."""
    while seen <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body"):
            return

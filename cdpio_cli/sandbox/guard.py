"""Host and Origin checks for the sandbox's own pages: `/_sandbox/*` and `/`.

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
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

from cdpio_cli.sandbox.options import SandboxOptions

CONTROL_PREFIX = "/_sandbox"
LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        server = scope.get("server") or (None, None)
        names = self.names | ({server[0].lower()} if server[0] else set())
        port = server[1]
        headers = {k: v for k, v in scope["headers"] if k in (b"host", b"origin")}
        host = headers.get(b"host", b"").decode("latin-1")
        if host:
            split = _split_host(host)
            if split is None or split[0] not in names or (split[1] is not None and split[1] != port):
                await _refuse(send, 421, "misdirected_request",
                              f"the sandbox answers {scope['path']} only under its own names "
                              f"({', '.join(_shown(n) for n in sorted(names))}, port {port}), not Host {host!r}: "
                              "a page re-pointing its own name at the sandbox (DNS rebinding) is refused")
                return
        origin = headers.get(b"origin")
        if origin is not None and scope["method"] not in SAFE_METHODS:
            text = origin.decode("latin-1")
            parts = _split_host(text.partition("://")[2]) if text.startswith("http://") else None
            same = parts is not None and parts[0] in names and (parts[1] or 80) == port
            if not same:
                await _refuse(send, 403, "cross_origin",
                              f"{scope['method']} {scope['path']} from a web page at Origin {text!r} is refused: "
                              "only the sandbox's own pages or clients that send no Origin (curl, the cdpio CLI) "
                              "may change its state")
                return
        await self.app(scope, receive, send)


def _shown(name: str) -> str:
    return f"[{name}]" if ":" in name else name


async def _refuse(send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"code": code, "message": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

"""Fault injection for the service routes (never /_sandbox/*).

- an injected error (`fail_rate`, `fail_status`) or a 429 (`throttle`) rejects
  the request *before* anything is processed;
- `latency` delays the answer;
- `drop_connections` closes the connection *after* processing: the client
  sees a failure for messages that did arrive (what idempotent retries are for).

Deterministic with `seed`: one random draw per decision, in request order.
"""

from __future__ import annotations

import asyncio
import math
import random
import time

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cdpio_cli.sandbox.state import SandboxState
from cdpio_cli.sandbox.web import ENTRY_KEY

CONTROL_PREFIX = "/_sandbox"
DEBUGGER_PAGE = "/"  # the debugger page (its feeds live under /_sandbox/debugger)


class FaultInjector:
    """ASGI middleware; the outermost layer, so it sees uvicorn's own `send`."""

    def __init__(self, app: ASGIApp, state: SandboxState):
        self.app = app
        self.state = state
        state.faults = self
        self.reset()

    def reset(self) -> None:
        opts = self.state.options
        self.rng = random.Random(opts.seed)
        self.tokens = self._capacity()
        self.last = time.monotonic()

    def _capacity(self) -> float:
        # `throttle_burst` requests, by default one second's worth; never less than one.
        opts = self.state.options
        if opts.throttle_burst is not None:
            return max(1.0, float(opts.throttle_burst))
        return max(1.0, float(opts.throttle or 0.0))

    @property
    def active(self) -> bool:
        o = self.state.options
        return bool(o.fail_rate or o.throttle or o.latency or o.drop_connections)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.active
            or scope["path"].startswith(CONTROL_PREFIX)
            or scope["path"] == DEBUGGER_PAGE
        ):
            await self.app(scope, receive, send)
            return
        opts = self.state.options
        if opts.throttle:
            # Token bucket: a client pacing itself at `throttle` req/s never sees a 429.
            now = time.monotonic()
            rate = float(opts.throttle)
            self.tokens = min(self._capacity(), self.tokens + (now - self.last) * rate)
            self.last = now
            if self.tokens < 1.0:
                retry_after = max(1, math.ceil((1.0 - self.tokens) / rate))
                await self._reject(
                    scope,
                    receive,
                    send,
                    429,
                    "too_many_requests",
                    f"over the sandbox's limit of {opts.throttle:g} requests/s",
                    {"retry-after": str(retry_after), "x-ratelimit-reset": str(retry_after)},
                )
                return
            self.tokens -= 1.0
        if opts.fail_rate and self.rng.random() < opts.fail_rate:
            headers = {"retry-after": "1"} if opts.fail_status == 429 else {}
            await self._reject(
                scope,
                receive,
                send,
                int(opts.fail_status),
                "injected_fault",
                "error injected by the sandbox (--fail-rate)",
                headers,
            )
            return
        drop = bool(opts.drop_connections) and self.rng.random() < opts.drop_connections
        if drop:
            await self._process_then_drop(scope, receive, send)
            return
        if opts.latency:
            await self.app(scope, receive, _delayed(send, opts.latency))
            return
        await self.app(scope, receive, send)

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str, headers: dict
    ) -> None:
        # Read the body so the connection stays usable for keep-alive.
        more = True
        while more:
            event = await receive()
            more = event.get("more_body", False) and event["type"] == "http.request"
        self.state.log_request(scope["method"], scope["path"], "fault", status)["fault"] = code
        body = orjson.dumps({"code": code, "message": message})
        raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    async def _process_then_drop(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        entry = scope.get(ENTRY_KEY)
        if entry is not None:
            entry["fault"] = "dropped_connection"
        # uvicorn's send is a bound method of its request cycle, which holds the
        # transport: abort it so the client gets a reset, not an HTTP answer.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
            await asyncio.sleep(0)  # let uvicorn see the disconnect
            return
        # Another server: start a response and break it off mid-body.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        raise ConnectionAbortedError("sandbox dropped the connection (--drop-connections)")


def _delayed(send: Send, seconds: float) -> Send:
    async def wrapper(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(seconds)
        await send(message)

    return wrapper

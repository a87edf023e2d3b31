"""The httpx path, behind cdpio's Client: used only when httpx is genuinely
needed (a proxy from the environment, a caller watching requests through
event hooks, a plain httpx client handed to `send`), so a send against a
plain http(s) endpoint never imports httpx.

This module is the one boundary: httpx's exceptions are translated into
cdpio's (errors.py) here, and every socket operation of a request obeys
the request's bound (an httpx read timeout alone applies to each read, so a
server sending a byte every few seconds would never be cut off: while
`request_bound_until` is in force, every socket operation in this thread
gets at most the time left).
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpcore
import httpx

from cdpio_cli.transport.body import read_body
from cdpio_cli.transport.errors import translated
from cdpio_cli.transport.url import URL
from cdpio_cli.transport.urls import check_credentials_transport

_bound = threading.local()


@contextlib.contextmanager
def request_bound_until(end: float) -> Iterator[None]:
    """Every socket operation in this thread ends by `end` (monotonic clock)."""
    _bound.end = end
    try:
        yield
    finally:
        _bound.end = None


def _clamped(timeout: float | None, exc: type[Exception]) -> float | None:
    end: float | None = getattr(_bound, "end", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise exc("the time allowed for this request ran out")
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamped(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamped(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _BoundedStream(
            self._inner.start_tls(ssl_context, server_hostname, _clamped(timeout, httpcore.ConnectTimeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class BoundedBackend(httpcore.NetworkBackend):
    """A network backend whose streams obey `request_bound_until`."""

    def __init__(self, inner: httpcore.NetworkBackend):
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _BoundedStream(
            self._inner.connect_tcp(
                host, port, _clamped(timeout, httpcore.ConnectTimeout), local_address, socket_options
            )
        )

    def connect_unix_socket(  # pragma: no cover - unused
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.NetworkStream:
        return _BoundedStream(
            self._inner.connect_unix_socket(path, _clamped(timeout, httpcore.ConnectTimeout), socket_options)
        )

    def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore sync pool never sleeps
        self._inner.sleep(seconds)


def _guard_request(request: httpx.Request) -> None:
    # Last line of defence for every request made through a cdpio client,
    # including ones built outside `send`.
    has_auth = "authorization" in request.headers or request.extensions.get("cdpio_credentials", False)
    check_credentials_transport(str(request.url), has_credentials=bool(has_auth))


def make_httpx_client(
    timeout: float, max_connections: int, headers: Mapping[str, str], ssl_context: ssl.SSLContext
) -> httpx.Client:
    """cdpio's policy on an httpx client: the same TLS context and headers as
    the wire, no automatic redirects, the credential guard, bounded sockets."""
    client = httpx.Client(
        timeout=httpx.Timeout(timeout),
        verify=ssl_context,
        follow_redirects=False,
        headers=dict(headers),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        event_hooks={"request": [_guard_request]},
    )
    # httpx has no public hook for the network backend: wrap it on the
    # default transport and on any proxy transport taken from the
    # environment.  Without it the per-chunk and per-attempt checks in `send`
    # still bound most cases.
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    for pool_transport in transports:
        pool = getattr(pool_transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = BoundedBackend(pool._network_backend)
    return client


def watched(client: httpx.Client) -> bool:
    """Does someone watch this client's requests (event hooks beyond the guard)?"""
    hooks = client.event_hooks
    return any(h is not _guard_request for h in hooks.get("request", [])) or bool(hooks.get("response"))


def client_timeout(client: httpx.Client) -> float | None:
    """The longest single timeout an httpx client was made with, if any."""
    values = [v for v in client.timeout.as_dict().values() if v is not None]
    return max(values) if values else None


def request(
    client: httpx.Client,
    method: str,
    url: URL,
    headers: dict[str, str],
    content: bytes | None,
    *,
    credentials: bool,
    max_body: int,
    end: float,
) -> tuple[int, dict[str, str], bytes]:
    """One exchange through httpx: (status, lower-cased headers, body);
    raises cdpio's transport exceptions, never httpx's."""
    try:
        with request_bound_until(end):
            built = client.build_request(method, str(url), headers=headers, content=content)
            if credentials:
                built.extensions["cdpio_credentials"] = True
            response = client.send(built, stream=True)
            try:
                answer = {k.lower(): v for k, v in response.headers.items()}
                return response.status_code, answer, read_body(response, max_body)
            finally:
                response.close()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise translated(exc) from None

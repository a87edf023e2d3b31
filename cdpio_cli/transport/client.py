"""The shared httpx client and the credential headers it carries."""

from __future__ import annotations

import base64
import ssl

import httpx

from cdpio_cli import __version__
from cdpio_cli.transport.deadlines import MAX_TIMEOUT_SECONDS, BoundedBackend, check_timeout
from cdpio_cli.transport.urls import check_credentials_transport
from cdpio_cli.transport.wire import Wire

USER_AGENT = f"cdpio/{__version__}"


def _guard_request(request: httpx.Request) -> None:
    # Last line of defence for every request made through a cdpio client,
    # including ones built outside `send`.
    has_auth = "authorization" in request.headers or request.extensions.get("cdpio_credentials", False)
    check_credentials_transport(request.url, has_credentials=bool(has_auth))


class Client(httpx.Client):
    """The httpx client `make_client` makes, with the lean wire `send` uses
    when no proxy is configured (wire.py: same TLS context, same headers)."""

    wire: Wire | None = None

    def close(self) -> None:
        if self.wire is not None:
            self.wire.close()
        super().close()


def make_client(timeout: float = 10.0, *, max_connections: int = 10) -> Client:
    """The shared httpx client: verified TLS, cdpio User-Agent, redirects by
    hand, every request bounded in total by `timeout` (see `send`)."""
    timeout = check_timeout(timeout, "timeout")
    client = Client(
        timeout=httpx.Timeout(timeout),
        verify=True,
        follow_redirects=False,
        # Only encodings `read_body` can decompress within its cap.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
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
    ssl_context = getattr(getattr(getattr(client, "_transport", None), "_pool", None), "_ssl_context", None)
    if not getattr(client, "_mounts", None) and isinstance(ssl_context, ssl.SSLContext):
        # Proxies (from the environment) stay httpx's job.
        client.wire = Wire(ssl_context, dict(client.headers))
    return client


def client_timeout(client: httpx.Client) -> float:
    """The longest single timeout the client was made with (its request bound)."""
    values = [v for v in client.timeout.as_dict().values() if v is not None]
    return max(values) if values else MAX_TIMEOUT_SECONDS


def basic_auth(username: str, password: str = "") -> str:
    """`Authorization` value for HTTP Basic (Segment: `write_key:`, note the colon)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def bearer_auth(token: str) -> str:
    return f"Bearer {token}"

"""cdpio's client: the connections `send` uses, and the credential headers.

`make_client` returns a `Client` that owns the lean wire (wire.py) and makes
an httpx client only when one is genuinely needed: a proxy configured in
the environment (httpx's job), or a caller that watches requests through
event hooks (contract tests).  A send to a plain http(s) endpoint without a
proxy never imports httpx.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cdpio_cli import __version__
from cdpio_cli.errors import ConfigError
from cdpio_cli.transport.deadlines import MAX_TIMEOUT_SECONDS, check_timeout
from cdpio_cli.transport.wire import Wire

if TYPE_CHECKING:
    import ssl

    import httpx

USER_AGENT = f"cdpio/{__version__}"
# What httpx sends by default, in its order, with cdpio's User-Agent and only
# the encodings `read_body` can decompress within its cap.
_HEADERS = {"Accept": "*/*", "Connection": "keep-alive", "User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}


class Headers(Mapping[str, str]):
    """Header names matched case-insensitively, each kept in the case given."""

    def __init__(self, items: Mapping[str, str]):
        self._items = dict(items)
        self._lower = {name.lower(): value for name, value in self._items.items()}

    def __getitem__(self, name: str) -> str:
        return self._lower[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def tls_context() -> ssl.SSLContext:
    """Verified TLS as httpx makes it (`SSL_CERT_FILE` / `SSL_CERT_DIR`
    honoured, else certifi's bundle), offering HTTP/1.1 as httpcore does;
    both wires use this one context."""
    import ssl  # here: only an https connection needs it (a replay to the sandbox does not)

    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        path = os.environ.get(name)
        if path:
            try:
                if name == "SSL_CERT_FILE":
                    context = ssl.create_default_context(cafile=path)
                else:
                    context = ssl.create_default_context(capath=path)
            except (OSError, ssl.SSLError) as exc:  # missing, unreadable, or no certificate in it
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise ConfigError(
                    f"{name}={path} cannot be used for verifying TLS: {reason}",
                    hint=f"point {name} at a PEM certificate bundle, or unset it to use certifi's",
                ) from None
            break
    else:
        import certifi

        context = ssl.create_default_context(cafile=certifi.where())
    context.set_alpn_protocols(["http/1.1"])
    return context


def proxies_configured() -> bool:
    """Would httpx mount a proxy (or a no-proxy rule) from the environment?
    (httpx's get_environment_proxies reads these four keys.)"""
    # Off macOS and Windows, getproxies() reads only variables named *_proxy
    # (any case): without one there is none, and urllib.request (15M of a
    # replay run's 530M instructions of imports) stays unimported.
    if sys.platform not in ("darwin", "win32") and not any(name[-6:].lower() == "_proxy" for name in os.environ):
        return False
    import urllib.request

    proxies = urllib.request.getproxies()
    if any(proxies.get(scheme) for scheme in ("http", "https", "all")):
        return True
    return any(host.strip() for host in proxies.get("no", "").split(","))


class Client:
    """What `make_client` returns: verified TLS, cdpio's headers, redirects
    by hand (`send`), every request bounded in total by `timeout`."""

    follow_redirects = False

    def __init__(self, timeout: float, max_connections: int):
        self.timeout = timeout
        self.max_connections = max_connections
        self.headers = Headers(_HEADERS)
        self._tls: ssl.SSLContext | None = None
        self._httpx: httpx.Client | None = None
        self._lock = threading.Lock()
        # Proxies stay httpx's job.
        self.wire: Wire | None = None if proxies_configured() else Wire(self.ssl_context, dict(self.headers))

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of both wires, made on first need: loading the CA
        bundle costs more CPU than all of a replay's imports, and a replay to
        an http:// endpoint (the sandbox) never needs it."""
        with self._lock:
            if self._tls is None:
                self._tls = tls_context()
            return self._tls

    def httpx_client(self) -> httpx.Client:
        """The httpx client with the same policy, made on first need."""
        tls = self.ssl_context()
        with self._lock:
            if self._httpx is None:
                from cdpio_cli.transport.via_httpx import make_httpx_client

                self._httpx = make_httpx_client(self.timeout, self.max_connections, self.headers, tls)
            return self._httpx

    def wire_for_send(self) -> Wire | None:
        """The lean wire, unless a proxy is configured or someone watches
        this client's requests through httpx's event hooks."""
        if self.wire is None:
            return None
        if self._httpx is not None:
            from cdpio_cli.transport.via_httpx import watched

            if watched(self._httpx):
                return None
        return self.wire

    @property
    def event_hooks(self) -> dict[str, list[Any]]:
        """httpx's hooks (adding one sends this client's requests through httpx)."""
        return self.httpx_client().event_hooks

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request outside `send` (through httpx, under the credential guard)."""
        return self.httpx_client().request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        if self.wire is not None:
            self.wire.close()
        if self._httpx is not None:
            self._httpx.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def make_client(timeout: float = 10.0, *, max_connections: int = 10) -> Client:
    """The shared client: verified TLS, cdpio User-Agent, redirects by hand,
    every request bounded in total by `timeout` (see `send`)."""
    return Client(check_timeout(timeout, "timeout"), max_connections)


def client_timeout(client: Client | httpx.Client) -> float:
    """The longest single timeout the client was made with (its request bound)."""
    if isinstance(client, Client):
        return client.timeout
    from cdpio_cli.transport.via_httpx import client_timeout as httpx_timeout

    bound = httpx_timeout(client)
    return MAX_TIMEOUT_SECONDS if bound is None else bound


def basic_auth(username: str, password: str = "") -> str:
    """`Authorization` value for HTTP Basic (Segment: `write_key:`, note the colon)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def bearer_auth(token: str) -> str:
    return f"Bearer {token}"

"""URL helpers: loopback, where credentials may go, safe display forms."""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit

from cdpio_cli.errors import UsageError
from cdpio_cli.transport.url import URL


@functools.lru_cache(maxsize=256)
def is_loopback(host: str | None) -> bool:
    # Cached: asked twice per request of a replay, and ipaddress parses slowly.
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_credentials_transport(url: URL | str, *, has_credentials: bool) -> None:
    """Refuse credentials over plain http:// except to loopback (the sandbox)."""
    if not has_credentials:
        return
    url = URL(str(url)) if not isinstance(url, URL) else url
    if url.scheme == "http" and not is_loopback(url.host):
        raise UsageError(
            f"refusing to send credentials over plain http:// to {url.host}",
            hint="use an https:// endpoint; plain http is only allowed to loopback (a local sandbox)",
        )


def may_receive_credentials(origin: URL | str, target: URL | str) -> bool:
    """May `target` see the credentials that were sent to `origin`?

    Only the same host, a `*.customer.io` host over https (the Track API
    redirects EU accounts to track-eu.customer.io), or loopback from
    loopback (the sandbox); never from https down to plain http.
    """
    origin = URL(str(origin)) if not isinstance(origin, URL) else origin
    target = URL(str(target)) if not isinstance(target, URL) else target
    if target.scheme not in ("http", "https"):
        return False
    if is_loopback(origin.host) and is_loopback(target.host):
        return True
    if origin.scheme == "https" and target.scheme != "https":
        return False
    if target.host == origin.host:
        return True
    host = target.host.lower().rstrip(".")
    return target.scheme == "https" and (host == "customer.io" or host.endswith(".customer.io"))


def safe_url(url: str | URL) -> str:
    """scheme://host[:port]/path without query or userinfo (paths here hold no
    secrets except the settings lookup, which callers mask via `secrets`)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def join_url(base: str, path: str) -> str:
    """`https://host/prefix` + `/v1/batch` (bases never end in a version)."""
    return base.rstrip("/") + "/" + path.lstrip("/")

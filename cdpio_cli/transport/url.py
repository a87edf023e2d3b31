"""cdpio's URL value: what `send` and the wire need of a URL (scheme, host,
port, the raw request target, resolving a redirect's Location), on
urllib.parse, so the send path does not import httpx for `httpx.URL`.

It normalises as httpx.URL does where cdpio shows or sends it: scheme and
host lower-cased, the scheme's default port dropped, an empty path sent as
"/", characters a request target may not carry percent-encoded, a non-ASCII
host IDNA-encoded on the wire.  tests/test_transport_url.py checks it
against httpx.URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

from cdpio_cli.transport.errors import InvalidURL

_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 pchar plus "/" (and "?" in a query); "%" kept: already-encoded stays so.
_PATH_SAFE = "/!$&'()*+,;=:@-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


class URL:
    """An absolute http(s) URL, parsed once."""

    __slots__ = ("_text", "host", "netloc", "port", "query", "raw_host", "raw_path", "scheme", "userinfo")

    def __init__(self, text: str | URL):
        if isinstance(text, URL):
            text = str(text)
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(f"Invalid URL: {exc}") from None
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname or ""
        if any(c in self.host for c in " \t\r\n/\\"):
            raise InvalidURL("Invalid URL: the host has a character a host may not have")
        try:
            self.raw_host = self.host if self.host.isascii() else self.host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURL(f"Invalid IDNA hostname: {self.host!r}") from None
        # As httpx: the default port is dropped only under a scheme written in lower case.
        self.port = None if port == _DEFAULT_PORTS.get(text.partition(":")[0]) else port
        self.userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        path = _without_dot_segments(quote(parts.path, safe=_PATH_SAFE))
        self.query = quote(parts.query, safe=_QUERY_SAFE)
        query = f"?{self.query}" if self.query or "?" in text.partition("#")[0] else ""  # "x?" keeps its "?"
        self.raw_path = (path or "/") + query  # the request target
        host = f"[{self.raw_host}]" if ":" in self.raw_host else self.raw_host
        self.netloc = host if self.port is None else f"{host}:{self.port}"  # no userinfo
        netloc = f"{self.userinfo}@{self.netloc}" if self.userinfo else self.netloc
        self._text = f"{self.scheme}://{netloc}{path}{query}"

    @property
    def origin_port(self) -> int:
        """The port a connection goes to (the scheme's default when none is given)."""
        return self.port if self.port is not None else _DEFAULT_PORTS.get(self.scheme, 80)

    def with_params(self, params: Mapping[str, Any]) -> URL:
        """This URL with its query replaced by `params`, encoded as httpx
        encodes them (spaces as "+", booleans as true/false, None as "",
        a list as repeated keys)."""
        items = [
            (key, _param_text(each))
            for key, value in params.items()
            for each in (value if isinstance(value, (list, tuple)) else [value])
        ]
        return URL(self._text.partition("?")[0] + "?" + urlencode(items))

    def join(self, location: str) -> URL:
        """A Location (absolute or relative) resolved against this URL."""
        return URL(urljoin(self._text, location))

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"URL({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URL) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


def _without_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 as httpx applies it: "/a/b/../c" is "/a/c", "/a/." is "/a"."""
    components = path.split("/")
    if "." not in components and ".." not in components:
        return path
    out: list[str] = []
    for component in components:
        if component == "..":
            if out and out != [""]:
                out.pop()
        elif component != ".":
            out.append(component)
    return "/".join(out)


def _param_text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else str(value)

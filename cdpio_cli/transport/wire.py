"""The wire under `send`: one HTTP/1.1 exchange over a kept-alive
connection, the response read by http.client's rules (http1.py).

httpx (with httpcore and h11) costs about 0.6 ms of CPU per request more than
`http.client` on this path; replay makes one request per batch, so that was a
fifth of a replay's CPU; importing http.client itself (email.*, ssl) was a
ninth of a replay run's imports.  This module only moves bytes.  Everything else is
`send`'s policy, shared by both wires: retries, backoff, `Retry-After`,
redirects, the credential guard, deadlines, masking.  The TLS context is the
very one the httpx path uses (client.tls_context: verification on,
`SSL_CERT_FILE` honoured), made only when a first https connection needs it;
the response body goes through the same capped reader (body.decode_body);
failures are raised as cdpio's transport exceptions (errors.py, httpx's
names and tree) that `describe_exception` words, so no text changes with the
wire.

Every socket operation is bounded by the time left to the request (as
via_httpx.BoundedBackend does for httpx): a server trickling bytes cannot hold
a request past its bound.
"""

from __future__ import annotations

import io
import select
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from cdpio_cli.transport import errors
from cdpio_cli.transport.http1 import BadResponse, Response
from cdpio_cli.transport.url import URL

if TYPE_CHECKING:
    import ssl

_CHUNK = 64 * 1024
# Request heads kept per Wire (method, URL, headers): a replay uses one.
_HEADS = 32
# Header values http.client would refuse (a credential with a newline): the
# same refusal h11 makes, before anything is written.
_BAD_HEADER_CHARS = ("\r", "\n", "\0")


class WireResponse:
    """A response whose head has been read; `chunks()` streams the raw body."""

    def __init__(self, response: Response, connection: _Connection):
        self.status = response.status
        self.headers: dict[str, str] = {}  # lower-cased names; repeated headers joined with ", "
        for name, value in response.fields:
            key = name.lower()
            self.headers[key] = f"{self.headers[key]}, {value}" if key in self.headers else value
        self._response = response
        self._connection = connection
        self._done = False

    def chunks(self) -> Iterator[bytes]:
        read1 = self._response.read1
        while True:
            try:
                chunk = read1(_CHUNK)
            except _READ_ERRORS as exc:
                if (ours := _as_ours(self._connection, exc)) is exc:
                    raise
                raise ours from None
            if not chunk:
                break
            yield chunk
        self._done = True

    def close(self) -> None:
        """Keep the connection only when the body was read to its end and the server keeps it open."""
        if not self._done or self._response.will_close:
            self._connection.close()


class _Bound:
    """The monotonic time by which the current request must be done."""

    def __init__(self, timeout: float, end: float):
        self.timeout = timeout
        self.end = end

    def left(self, exc: type[errors.TimeoutException]) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise exc("the time allowed for this request ran out")
        return min(self.timeout, left)


class _BoundedReader(io.RawIOBase):
    """The response side of a socket: each read waits at most the time left."""

    def __init__(self, sock: socket.socket, connection: _Connection):
        self._sock = sock
        self._connection = connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # io's signature takes any buffer
        self._sock.settimeout(self._connection.bound.left(errors.ReadTimeout))
        return self._sock.recv_into(buffer)


class _Connection:
    """One kept-alive connection to scheme://host:port."""

    def __init__(self, scheme: str, host: str, port: int, tls: Callable[[], ssl.SSLContext]):
        self.scheme, self.host, self.port = scheme, host, port
        self.tls = tls
        self.sock: socket.socket | None = None
        self.bound = _Bound(0.0, 0.0)

    def usable(self) -> bool:
        """Open and not closed (or spoken to) by the server while idle."""
        if self.sock is None:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def connect(self) -> socket.socket:
        # Outside the try: a CA file that cannot be read is not a connection failure.
        ssl_context = self.tls() if self.scheme == "https" else None
        try:
            # An ASCII host goes to getaddrinfo as bytes: as text it would be run
            # through the idna codec, which imports stringprep and unicodedata.
            host = self.host.encode("ascii") if self.host.isascii() else self.host
            address: Any = (host, self.port)  # typeshed says str; getaddrinfo takes bytes too
            sock = socket.create_connection(address, timeout=self.bound.left(errors.ConnectTimeout))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl_context is not None:
                sock.settimeout(self.bound.left(errors.ConnectTimeout))
                sock = ssl_context.wrap_socket(sock, server_hostname=self.host)
        except TimeoutError as exc:
            raise errors.ConnectTimeout(str(exc) or "timed out") from None
        except OSError as exc:  # refused, unresolvable, certificate rejected
            raise errors.ConnectError(str(exc)) from None
        self.sock = sock
        return sock

    def exchange(self, head: bytes, content: bytes | None, method: str) -> WireResponse:
        sock = self.sock if self.usable() else None
        if sock is None:
            self.close()
            sock = self.connect()
        try:
            sock.settimeout(self.bound.left(errors.WriteTimeout))
            if content and self.scheme == "http":
                # Head and body in one call, without copying the body (tens of KB) behind the head.
                sent = sock.sendmsg((head, content))
                if sent < len(head) + len(content):
                    sock.sendall(memoryview(head + content)[sent:])
            else:
                sock.sendall(head + content if content else head)
        except TimeoutError:
            raise errors.WriteTimeout("timed out") from None
        except OSError as exc:
            raise errors.WriteError(str(exc)) from None
        return self._response(sock, method)

    def _response(self, sock: socket.socket, method: str) -> WireResponse:
        response = Response(io.BufferedReader(_BoundedReader(sock, self)), method)
        try:
            response.begin()
        except _READ_ERRORS as exc:
            if (ours := _as_ours(self, exc)) is exc:
                raise
            raise ours from None
        return WireResponse(response, self)


# What reading a response may raise that `_as_ours` turns into cdpio's exceptions.
_READ_ERRORS = (errors.HTTPError, BadResponse, OSError)


def _as_ours(connection: _Connection, exc: BaseException) -> BaseException:
    """A reading failure as cdpio's exception, which describe_exception words
    (cdpio's own as it is); the connection is not reused after one."""
    connection.close()
    if isinstance(exc, errors.HTTPError):
        return exc
    if isinstance(exc, TimeoutError):
        return errors.ReadTimeout("timed out")
    if isinstance(exc, (BadResponse, ConnectionResetError, BrokenPipeError)):
        return errors.RemoteProtocolError(str(exc) or type(exc).__name__)
    return errors.ReadError(str(exc))


class Wire:
    """Kept-alive connections, one per thread and origin (no lock on the hot path)."""

    def __init__(self, tls: Callable[[], ssl.SSLContext], headers: dict[str, str]):
        self.tls = tls  # the TLS context, made on the first https connection
        self.base_headers = dict(headers)  # User-Agent, Accept-Encoding
        self._local = threading.local()
        # Weak: a thread's connections go (closed) with the thread; `close` ends the rest.
        self._all: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._heads: dict[tuple[Any, ...], bytes | tuple[bytes, bytes]] = {}

    def request(
        self,
        method: str,
        url: URL,
        headers: dict[str, str],
        content: bytes | None,
        *,
        timeout: float,
        end: float,
    ) -> WireResponse:
        """Send the request and read the response's head; raises cdpio's
        transport exceptions.  The caller reads `chunks()` and then calls `close()`."""
        head = self._head(method, url, headers, content)
        connection = self._connection(url)
        connection.bound = _Bound(timeout, end)
        try:
            return connection.exchange(head, content, method)
        except BaseException:
            connection.close()  # half a conversation: never reuse it
            raise

    def _head(self, method: str, url: URL, headers: dict[str, str], content: bytes | None) -> bytes:
        """The request head: encoded once per method, URL and headers (a
        replay sends thousands of requests that differ only in their body),
        only the length filled in per request."""
        key = (method, url, tuple(headers.items()), content is not None)
        cached = self._heads.get(key)
        if cached is None:
            cached = _encode_head(method, url, _merge_headers(self.base_headers, headers), content)
            if len(self._heads) >= _HEADS:
                self._heads.clear()
            self._heads[key] = cached
        if type(cached) is bytes:
            return cached
        before, after = cached
        return b"%s%d%s" % (before, len(content or b""), after)

    def _connection(self, url: URL) -> _Connection:
        port = url.origin_port
        key = (url.scheme, url.host, port)
        pool: dict[tuple[str, str, int], _Connection] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        connection = pool.get(key)
        if connection is None:
            connection = pool[key] = _Connection(url.scheme, url.host, port, self.tls)
            with self._lock:
                self._all.add(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            connections = list(self._all)
        for connection in connections:
            connection.close()


def _merge_headers(base: dict[str, str], own: dict[str, str]) -> dict[str, str]:
    """Case-insensitive, the request's own headers winning, as httpx merges
    them; each name keeps the case it was given (`Authorization`, as httpx
    sends it)."""
    merged = {name.lower(): (name, value) for name, value in base.items()}
    for name, value in own.items():
        merged.pop(name.lower(), None)  # an overridden header moves to the end, as in httpx
        merged[name.lower()] = (name, value)
    return dict(merged.values())


def _encode_head(method: str, url: URL, headers: dict[str, str], content: bytes | None) -> bytes | tuple[bytes, bytes]:
    """The request line and headers, refusing what h11 would refuse; with a
    Content-Length, the head's bytes before and after its value."""
    raw_host = url.raw_host  # IDNA-encoded, as on the wire
    host = raw_host if ":" not in raw_host else f"[{raw_host}]"
    if url.port is not None:
        host = f"{host}:{url.port}"
    lines = [f"{method} {url.raw_path} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if any(c in value or c in name for c in _BAD_HEADER_CHARS) or ":" in name:
            raise errors.LocalProtocolError("Illegal header value")
        lines.append(f"{name}: {value}")
    try:
        head = "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise errors.LocalProtocolError("Illegal header value") from None
    if content is not None or method in ("POST", "PUT", "PATCH"):
        return head + b"\r\nContent-Length: ", b"\r\n\r\n"
    return head + b"\r\n\r\n"

"""Time bounds: user-given timeouts, a command's `Deadline`, and the
whole-request bound every socket operation of a request obeys.

An httpx read timeout alone applies to each read, so a server sending a byte
every few seconds would never be cut off: while `request_bound_until` is in
force, every socket operation in this thread gets at most the time left.
"""

from __future__ import annotations

import contextlib
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpcore

from cdpio_cli.errors import UsageError

# A per-request timeout above an hour is a typo, and `inf`/`1e300` crash the
# socket layer.
MAX_TIMEOUT_SECONDS = 3600.0


def check_timeout(value: float, flag: str = "--timeout", *, maximum: float = MAX_TIMEOUT_SECONDS) -> float:
    """A timeout given by the user: finite, positive, at most `maximum` seconds."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{flag} {value!r} is not a number of seconds", hint=f"e.g. {flag} 10") from None
    if not math.isfinite(seconds) or seconds <= 0 or seconds > maximum:
        raise UsageError(
            f"{flag} must be a positive number of seconds up to {maximum:g}, not {value!r}", hint=f"e.g. {flag} 10"
        )
    return seconds


class Deadline:
    """A point in time (monotonic clock) after which a command stops asking."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic, owner: str = "the command's"):
        self.seconds = float(seconds)
        self.owner = owner  # whose deadline, for messages: "the command's", "the batch's"
        self._clock = clock
        self.end = clock() + self.seconds

    def remaining(self) -> float:
        return self.end - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def describe(self) -> str:
        return f"{self.owner} {self.seconds:g} s deadline passed"


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

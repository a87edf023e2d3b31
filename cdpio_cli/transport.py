"""The one HTTP policy every command uses (send-test, check-keys, verify, replay).

- `make_client`: TLS verification on, a cdpio User-Agent, no automatic
  redirects, and a guard that refuses to put credentials on plain http://
  to anything but loopback.
- `send`: one logical request with retries (408, 429, 5xx, network errors),
  exponential backoff with full jitter, `Retry-After` honoured only while it
  fits the caps and the deadline, deliberate redirects (followed with
  credentials only to a host that may see them: the same host, a
  `*.customer.io` host over https, or loopback; never elsewhere), an optional
  shared rate limit.
- Bounds (docs/security.md): every HTTP request ends within the client's
  timeout in total (not per read: a server trickling one byte at a time is
  cut off), an optional `Deadline` bounds a whole command, and response
  bodies are read streamed up to `MAX_RESPONSE_BYTES`, decompressed size
  included.
- `TokenBucket`: a thread-safe request-rate limiter.
- `service_error` / `batch_errors`: read the services' error bodies.

Nothing here ever puts a credential into an error text: httpx exception
messages can contain URLs (the Segment settings lookup has the write key in
its path) and header values, so every text is sanitised before it leaves.
"""

from __future__ import annotations

import base64
import collections
import email.utils
import functools
import ipaddress
import math
import random
import re
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import orjson

from cdpio_cli import __version__
from cdpio_cli.credentials import mask_all, redact, secret_forms
from cdpio_cli.errors import UsageError

USER_AGENT = f"cdpio/{__version__}"
MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# No Customer.io or Segment answer cdpio reads comes near this; a bigger body
# (or one that decompresses to more) is a broken or hostile server.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
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


# ---------------------------------------------------------------------------
# Whole-request time bound: every socket operation of a request in this
# thread gets at most the time left before `_bound.end` (an httpx read
# timeout alone applies to each read, so a byte every few seconds never ends).
# ---------------------------------------------------------------------------

_bound = threading.local()


def _clamped(timeout: float | None, exc: type[Exception]) -> float | None:
    end = getattr(_bound, "end", None)
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

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return _BoundedStream(
            self._inner.start_tls(ssl_context, server_hostname, _clamped(timeout, httpcore.ConnectTimeout))
        )

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend):
        self._inner = inner

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return _BoundedStream(
            self._inner.connect_tcp(
                host, port, _clamped(timeout, httpcore.ConnectTimeout), local_address, socket_options
            )
        )

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # pragma: no cover - unused
        return _BoundedStream(
            self._inner.connect_unix_socket(path, _clamped(timeout, httpcore.ConnectTimeout), socket_options)
        )

    def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore sync pool never sleeps
        self._inner.sleep(seconds)


# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_credentials_transport(url: httpx.URL | str, *, has_credentials: bool) -> None:
    """Refuse credentials over plain http:// except to loopback (the sandbox)."""
    if not has_credentials:
        return
    url = httpx.URL(str(url)) if not isinstance(url, httpx.URL) else url
    if url.scheme == "http" and not is_loopback(url.host):
        raise UsageError(
            f"refusing to send credentials over plain http:// to {url.host}",
            hint="use an https:// endpoint; plain http is only allowed to loopback (a local sandbox)",
        )


def _guard_request(request: httpx.Request) -> None:
    # Last line of defence for every request made through a cdpio client,
    # including ones built outside `send`.
    has_auth = "authorization" in request.headers or request.extensions.get("cdpio_credentials", False)
    check_credentials_transport(request.url, has_credentials=bool(has_auth))


def make_client(timeout: float = 10.0, *, max_connections: int = 10) -> httpx.Client:
    """The shared httpx client: verified TLS, cdpio User-Agent, redirects by
    hand, every request bounded in total by `timeout` (see `send`)."""
    timeout = check_timeout(timeout, "timeout")
    client = httpx.Client(
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
            pool._network_backend = _BoundedBackend(pool._network_backend)
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


# ---------------------------------------------------------------------------
# Sanitising
# ---------------------------------------------------------------------------

_URL_RE = re.compile(r"(?P<base>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/'\"<>]+)(?P<rest>[^\s'\"<>]*)")


def safe_url(url: str | httpx.URL) -> str:
    """scheme://host[:port]/path without query or userinfo (paths here hold no
    secrets except the settings lookup, which callers mask via `secrets`)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def mask_secrets(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """Replace the given and the registered secrets by their masks."""
    if secrets:
        text = mask_all(text, _forms_longest_first(tuple(secrets)))
    return redact(text)


@functools.lru_cache(maxsize=64)
def _forms_longest_first(secrets: tuple[str, ...]) -> tuple[str, ...]:
    # Called for every request of a replay: the base64 forms are worth keeping.
    return tuple(sorted(secret_forms(secrets), key=len, reverse=True))


def sanitize(text: str | None, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """Mask the given and registered secrets; drop URL paths and queries
    (exception texts may carry a full URL)."""
    if not text:
        return ""
    text = mask_secrets(text, secrets)
    text = _URL_RE.sub(lambda m: m.group("base"), text)
    # Basic auth tokens are base64 of a secret: never print one.
    text = re.sub(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._-]{6,}", r"\1 [redacted]", text)
    return redact(text)


# The words describe_exception and send use for a service that took the
# connection but did not answer in time: up, but too slow.
_SLOW_ANSWER = ("timed out waiting for a response", "no complete response from")


def answered_too_slowly(error: str | None) -> bool:
    """Did this transport error come from a service that was reached but slow?"""
    lowered = (error or "").lower()
    return any(words in lowered for words in _SLOW_ANSWER)


def describe_exception(exc: BaseException, url: httpx.URL | str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """A short, credential-free description of a transport error."""
    host = urlsplit(str(url)).netloc.rsplit("@", 1)[-1]
    if isinstance(exc, httpx.ConnectTimeout):
        text = f"timed out connecting to {host}"
    elif isinstance(exc, httpx.ReadTimeout):
        text = f"timed out waiting for a response from {host}"
    elif isinstance(exc, httpx.WriteTimeout):
        text = f"timed out sending the request to {host}"
    elif isinstance(exc, httpx.PoolTimeout):
        text = f"timed out waiting for a free connection to {host}"
    elif isinstance(exc, httpx.ConnectError):
        detail = sanitize(str(exc), secrets)
        text = f"could not connect to {host}" + (f" ({detail})" if detail else "")
    elif isinstance(exc, httpx.RemoteProtocolError):
        text = f"{host} closed the connection without a complete response"
    elif isinstance(exc, httpx.LocalProtocolError):
        # h11 puts the offending header (possibly a key with a newline) in the message.
        text = "the request could not be encoded (a credential may contain a newline or control character)"
    elif isinstance(exc, httpx.ReadError):
        text = f"connection to {host} failed while reading the response"
    elif isinstance(exc, httpx.WriteError):
        text = f"connection to {host} failed while sending the request"
    else:
        detail = sanitize(str(exc), secrets)
        text = f"{type(exc).__name__} talking to {host}" + (f": {detail}" if detail else "")
    return sanitize(text, secrets)


# ---------------------------------------------------------------------------
# Rate limit
# ---------------------------------------------------------------------------


class TokenBucket:
    """Thread-safe limiter: at most `rate` acquisitions per second.

    Each caller reserves the next free time slot under the lock and sleeps
    until it outside the lock.  Slots are absolute (start + k/rate), so sleep
    overshoot does not accumulate and the achieved rate stays on target over a
    run.  `burst` > 1 lets an idle limiter catch up by that many slots, but
    never past the rate itself: no one-second window ever holds more than
    `rate` slots (for a whole-number rate; at least one), so a server
    counting requests per second never sees a burst above it.
    """

    def __init__(self, rate: float, burst: float = 1.0, *, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self.burst = max(1.0, float(burst))
        self._clock = clock
        self._next = 0.0
        # The newest `per_second` slots: the next one starts no earlier than
        # one second after the oldest of them.
        self.per_second = max(1, math.floor(self.rate + 1e-9))
        self._recent: collections.deque[float] = collections.deque(maxlen=self.per_second)
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Reserve a slot; return the clock time at which it may be used."""
        with self._lock:
            now = self._clock()
            slot = max(self._next, now - (self.burst - 1.0) * self.interval)
            recent = self._recent
            if len(recent) == self.per_second and slot < recent[0] + 1.0:
                slot = recent[0] + 1.0
            # A slot in the past is used now: the window counts when it is used.
            recent.append(slot if slot > now else now)
            self._next = slot + self.interval
            return slot

    def acquire(self, cancel: threading.Event | None = None) -> float:
        """Block until a slot is ours; return the seconds waited."""
        slot = self.reserve()
        delay = slot - self._clock()
        if delay > 0:
            if cancel is not None:
                cancel.wait(delay)
            else:
                time.sleep(delay)
            return delay
        return 0.0


# ---------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried and how long to wait.

    Waits are exponential with full jitter: uniform(0, min(max_delay,
    base_delay * 2**n)).  A `Retry-After` header wins (capped at
    `max_retry_after`).  `bounded`: each logical request, retries and waits
    included, ends within `total_bound(timeout)` of its first attempt (a
    `Retry-After` that would outlast it is not waited for).
    """

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    bounded: bool = False

    def total_bound(self, timeout: float) -> float:
        """Seconds one logical request may take in all under this policy with
        request timeout `timeout` (docs/security.md): each attempt, one more
        for a redirect, and a backoff wait of at most `max_delay` per retry."""
        return (self.max_retries + 2) * timeout + self.max_retries * self.max_delay

    @staticmethod
    def retryable_status(status: int | None) -> bool:
        return status is not None and (status in (408, 429) or 500 <= status <= 599)

    def delay(
        self, retry_number: int, retry_after: float | None = None, rng: Callable[[float, float], float] = random.uniform
    ) -> float:
        """Seconds to wait before retry number `retry_number` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, retry_number - 1)))
        return rng(0.0, ceiling)


NO_RETRY = RetryPolicy(max_retries=0)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


# ---------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------


@dataclass
class RequestSpec:
    """One logical request.  `secrets` are values that must never appear in
    any text derived from it (keys in headers, a write key in the path)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    secrets: tuple[str, ...] = ()
    label: str = ""

    @property
    def has_credentials(self) -> bool:
        return bool(self.secrets) or any(k.lower() == "authorization" for k in self.headers)


@dataclass
class Attempt:
    """What happened to one logical request after retries and redirects."""

    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0  # seconds, whole send incl. waits
    attempts: int = 0  # HTTP requests made (retries + redirects included)
    error: str | None = None  # sanitised transport error of the last attempt
    history: list[int | None] = field(default_factory=list)  # status per request, None = no response
    latencies: list[float] = field(default_factory=list)  # seconds per request
    url: str = ""  # final URL, safe form
    redirects: list[str] = field(default_factory=list)  # safe URLs followed
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1 - len(self.redirects))

    @property
    def reached(self) -> bool:
        """Did the service answer at all (any HTTP status)?"""
        return any(s is not None for s in self.history)

    @property
    def duration_ms(self) -> float:
        return self.duration * 1000.0

    def json(self) -> Any:
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return None

    def service_error(self) -> str | None:
        return service_error(self.body, self.headers.get("content-type"))

    def describe_failure(self) -> str:
        """One line: why this request did not succeed (never a credential)."""
        if self.cancelled:
            return "cancelled before it completed"
        if self.status is None:
            return self.error or "no response"
        if self.error:  # an answer cdpio did not act on (a foreign redirect, a week's Retry-After)
            return f"HTTP {self.status}: {self.error}"
        text = self.service_error()
        base = f"HTTP {self.status}"
        return f"{base}: {text}" if text else base


def may_receive_credentials(origin: httpx.URL | str, target: httpx.URL | str) -> bool:
    """May `target` see the credentials that were sent to `origin`?

    Only the same host, a `*.customer.io` host over https (the Track API
    redirects EU accounts to track-eu.customer.io), or loopback from
    loopback (the sandbox); never from https down to plain http.
    """
    origin = httpx.URL(str(origin)) if not isinstance(origin, httpx.URL) else origin
    target = httpx.URL(str(target)) if not isinstance(target, httpx.URL) else target
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


class BodyTooLarge(Exception):
    """A response body (decompressed) over the cap."""


def read_body(response: httpx.Response, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """The response body, streamed and decompressed by hand so that neither a
    huge body nor a small gzip bomb can take more than `limit` bytes of memory."""
    encodings = [e.strip().lower() for e in response.headers.get("content-encoding", "").split(",")]
    encodings = [e for e in encodings if e and e != "identity"]
    declared = response.headers.get("content-length", "")
    if not encodings and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(int(declared))
    decoder = None
    if encodings and all(e in ("gzip", "x-gzip", "deflate") for e in encodings) and len(encodings) == 1:
        # 32 + 15: accept a gzip or a zlib header (servers send both as "deflate").
        decoder = zlib.decompressobj(47)
    out = bytearray()
    raw_deflate_tried = False
    for chunk in response.iter_raw():
        if decoder is None:
            out += chunk
            if len(out) > limit:
                raise BodyTooLarge(len(out))
            continue
        data = chunk
        while data and not decoder.eof:
            try:
                piece = decoder.decompress(data, limit - len(out) + 1)
            except zlib.error:
                if encodings == ["deflate"] and not out and not raw_deflate_tried:
                    raw_deflate_tried = True  # a raw deflate stream, no header
                    decoder = zlib.decompressobj(-15)
                    continue
                raise httpx.DecodingError("the response body is not valid " + encodings[0]) from None
            out += piece
            if len(out) > limit:
                raise BodyTooLarge(len(out))
            data = decoder.unconsumed_tail
    return bytes(out)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


def send(
    client: httpx.Client,
    spec: RequestSpec,
    policy: RetryPolicy = NO_RETRY,
    rate_limiter: TokenBucket | None = None,
    *,
    cancel: threading.Event | None = None,
    rng: Callable[[float, float], float] = random.uniform,
    deadline: Deadline | None = None,
    max_body: int = MAX_RESPONSE_BYTES,
) -> Attempt:
    """Send one logical request under the retry policy; never raises for
    network or HTTP errors (UsageError for a refused insecure request).

    Each HTTP request ends within the client's timeout in total; with a
    `deadline`, the whole logical request (retries and waits included) ends
    by it.  `Retry-After` is waited for up to `policy.max_retry_after`; one
    that the deadline would not survive is not waited for at all: the
    request ends with that answer.
    """
    check_credentials_transport(spec.url, has_credentials=spec.has_credentials)
    result = Attempt()
    started = time.perf_counter()
    method, url = spec.method.upper(), httpx.URL(spec.url)
    headers = dict(spec.headers)
    content = spec.content
    retries_done = 0
    redirects_done = 0
    request_bound = client_timeout(client)
    while True:
        if cancel is not None and cancel.is_set():
            result.cancelled = True
            break
        if deadline is not None and deadline.expired():
            if not result.history:
                result.error = f"not sent: {deadline.describe()}"
            elif result.status is None:
                result.error = f"{result.error or 'no response'}; {deadline.describe()}"
            break
        if rate_limiter is not None:
            rate_limiter.acquire(cancel)
            if cancel is not None and cancel.is_set():
                result.cancelled = True
                break
        if policy.bounded and result.attempts == 0:
            # From the first attempt, not before: waiting for a rate-limit
            # slot is the pace the user chose, not the service's slowness.
            own = Deadline(policy.total_bound(request_bound), owner="the batch's")
            if deadline is None or own.end < deadline.end:
                deadline = own
        result.attempts += 1
        t0 = time.perf_counter()
        response: httpx.Response | None = None
        body = b""
        fatal = False
        end = time.monotonic() + request_bound
        if deadline is not None:
            end = min(end, deadline.end)
        _bound.end = end
        try:
            request = client.build_request(method, url, headers=headers, content=content)
            if spec.secrets:
                request.extensions["cdpio_credentials"] = True
            response = client.send(request, stream=True)
            try:
                body = read_body(response, max_body)
            finally:
                response.close()
            status = response.status_code
            result.error = None
        except BodyTooLarge:
            status = None
            fatal = True  # asking again would read the same flood
            result.error = (
                f"the response from {url.host} is larger than {_mb(max_body)} (decompressed); cdpio stopped reading it"
            )
        except httpx.HTTPError as exc:  # TransportError, InvalidURL-ish, decoding errors
            status = None
            if isinstance(exc, httpx.TimeoutException) and time.monotonic() >= end - 0.01:
                over = deadline is not None and end >= deadline.end
                connected = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
                if over:
                    # Connected but unanswered is a slow service, not an unreachable one.
                    what = (
                        f"no complete response from {url.host} before the "
                        if connected
                        else f"no connection to {url.host} before the "
                    ) + deadline.describe()
                else:
                    what = f"no complete response from {url.host} within {request_bound:g} s"
                result.error = sanitize(f"timed out: {what}", spec.secrets)
            else:
                result.error = describe_exception(exc, url, spec.secrets)
        except UsageError:
            raise
        finally:
            _bound.end = None
        latency = time.perf_counter() - t0
        result.latencies.append(latency)
        # What the server answered, even when cdpio could not use it (a body over the cap).
        result.history.append(response.status_code if response is not None else None)
        result.status = status
        result.url = mask_secrets(safe_url(url), spec.secrets)
        if response is not None:
            result.body = body
            result.headers = {k.lower(): v for k, v in response.headers.items()}
        if fatal:
            break

        if status in REDIRECT_STATUSES and "location" in result.headers and redirects_done < MAX_REDIRECTS:
            try:
                target = url.join(result.headers["location"])
            except httpx.InvalidURL:
                result.error = "the redirect's Location is not a valid URL; not followed"
                break
            carries_credentials = spec.has_credentials
            if carries_credentials and not may_receive_credentials(url, target):
                # Not even without the header: the request body is the user's
                # data, and a later batch must not go there either.
                result.error = (
                    f"redirected to {mask_secrets(safe_url(target), spec.secrets)}, a host "
                    "that may not receive your credentials; not followed (check the endpoint setting)"
                )
                break
            if status == 303 or (status in (301, 302) and method not in ("GET", "HEAD", "POST", "PUT")):
                method, content = "GET", None
            # We are an API client: 301/302 keep POST and its body (the Track
            # API's cross-region redirect must carry the event).
            redirects_done += 1
            url = target
            result.redirects.append(mask_secrets(safe_url(target), spec.secrets))
            check_credentials_transport(url, has_credentials=carries_credentials)
            continue

        retryable = status is None or policy.retryable_status(status)
        if not retryable or retries_done >= policy.max_retries:
            break
        retry_after = None
        if status is not None:
            retry_after = parse_retry_after(result.headers.get("retry-after"))
        wait = policy.delay(retries_done + 1, retry_after, rng)
        # Retrying before the asked time (the cap cut the wait) only earns
        # another 429: a Retry-After the deadline would not survive ends it now.
        if deadline is not None and max(wait, retry_after or 0.0) >= deadline.remaining():
            if retry_after is not None:
                result.error = f"the service asked to retry after {retry_after:g} s; {deadline.describe()} before that"
            break
        retries_done += 1
        if wait > 0:
            if cancel is not None:
                if cancel.wait(wait):
                    result.cancelled = True
                    break
            else:
                time.sleep(wait)
    result.duration = time.perf_counter() - started
    if not result.url:
        result.url = mask_secrets(safe_url(url), spec.secrets)
    return result


# ---------------------------------------------------------------------------
# Service error bodies
# ---------------------------------------------------------------------------


def _clip(text: str, limit: int = 300) -> str:
    """Shorten an already-masked text (masking after a cut would miss a
    secret cut in half and print most of it)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def service_error(body: bytes | str | None, content_type: str | None = None) -> str | None:
    """The human error text in a service response body, or None.

    Segment: JSON `{code, message}` or plain text.  Customer.io: v1
    `meta.error` / `meta.errors[]`, v2 `errors[{reason, field, message}]`.
    """
    if not body:
        return None
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8", errors="replace")
        except Exception:  # pragma: no cover - decode with replace cannot fail
            return None
    else:
        text = body
    data: Any = None
    stripped = text.strip()
    if stripped[:1] in ("{", "[", '"'):
        try:
            data = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            data = None
    if data is None:
        if content_type and "html" in content_type.lower():
            m = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
            return _clip(sanitize(m.group(1))) if m else None
        return _clip(sanitize(stripped)) or None
    return _error_from_json(data)


def _error_from_json(data: Any) -> str | None:
    if isinstance(data, str):
        return _clip(sanitize(data)) or None
    if isinstance(data, list):
        parts = [p for p in (_error_from_json(x) for x in data[:5]) if p]
        return _clip(sanitize("; ".join(parts))) if parts else None
    if not isinstance(data, dict):
        return None
    meta = data.get("meta")
    if isinstance(meta, dict):
        if isinstance(meta.get("error"), str) and meta["error"]:
            return _clip(sanitize(meta["error"]))
        errs = meta.get("errors")
        if isinstance(errs, list) and errs:
            return _clip(sanitize("; ".join(str(e) for e in errs[:5])))
        if isinstance(errs, dict) and errs:
            return _clip(sanitize("; ".join(f"{k}: {v}" for k, v in list(errs.items())[:5])))
    errs = data.get("errors")
    if isinstance(errs, list) and errs:
        parts = []
        for e in errs[:5]:
            parts.append(_format_v2_error(e) if isinstance(e, dict) else str(e))
        more = f" (+{len(errs) - 5} more)" if len(errs) > 5 else ""
        return _clip(sanitize("; ".join(parts) + more))
    message = data.get("message") or data.get("error") or data.get("detail")
    code = data.get("code")
    if isinstance(message, str) and message:
        prefix = f"{code}: " if isinstance(code, (str, int)) and str(code) not in ("", "unknown") else ""
        return _clip(sanitize(prefix + message))
    if isinstance(message, dict):
        return _error_from_json(message)
    return None


def _format_v2_error(err: dict) -> str:
    message = str(err.get("message") or err.get("reason") or "error")
    field_name = err.get("field")
    reason = err.get("reason")
    text = message
    if field_name:
        text = f"{field_name}: {text}"
    if reason and reason != message:
        text = f"{text} ({reason})"
    return text


def batch_errors(body: bytes | None) -> dict[int, str]:
    """Customer.io v2 `/batch` 207: {batch_index: error text} for failed operations."""
    if not body:
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    errs = data.get("errors") if isinstance(data, dict) else None
    out: dict[int, str] = {}
    if not isinstance(errs, list):
        return out
    for e in errs:
        if not isinstance(e, dict):
            continue
        idx = e.get("batch_index")
        if isinstance(idx, bool) or not isinstance(idx, int):
            continue
        text = _clip(sanitize(_format_v2_error(e)))
        out[idx] = f"{out[idx]}; {text}" if idx in out else text
    return out


# ---------------------------------------------------------------------------
# Outcome of a single send (send-test, check-keys)
# ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """Result of sending one message (or one check request) on one route."""

    route: str
    ok: bool
    http_status: int | None = None
    duration_ms: float | None = None
    error: str | None = None  # service error text or transport error, sanitised
    attempts: int = 0
    endpoint: str = ""  # METHOD safe-url, for display
    dropped: str | None = None  # not sent: why (mapping drop, spec problem)
    redirected_to: str | None = None
    reached: bool = False  # the service answered with some HTTP status
    requests: int = 1  # HTTP calls this outcome covers
    body: Any = None  # parsed JSON body of the (last) response, if any

    @classmethod
    def from_attempt(cls, route: str, method: str, attempt: Attempt, *, ok: bool | None = None) -> Outcome:
        return cls(
            route=route,
            ok=attempt.ok if ok is None else ok,
            http_status=attempt.status,
            duration_ms=attempt.duration_ms,
            error=None if attempt.ok and ok is not False else attempt.describe_failure(),
            attempts=attempt.attempts,
            endpoint=f"{method.upper()} {attempt.url}",
            redirected_to=attempt.redirects[-1] if attempt.redirects else None,
            reached=attempt.reached,
            body=attempt.json(),
        )


def join_url(base: str, path: str) -> str:
    """`https://host/prefix` + `/v1/batch` (bases never end in a version)."""
    return base.rstrip("/") + "/" + path.lstrip("/")


__all__ = [
    "MAX_RESPONSE_BYTES",
    "USER_AGENT",
    "Attempt",
    "BodyTooLarge",
    "Deadline",
    "NO_RETRY",
    "Outcome",
    "RequestSpec",
    "RetryPolicy",
    "TokenBucket",
    "basic_auth",
    "batch_errors",
    "bearer_auth",
    "check_credentials_transport",
    "check_timeout",
    "describe_exception",
    "is_loopback",
    "join_url",
    "make_client",
    "may_receive_credentials",
    "mask_secrets",
    "parse_retry_after",
    "read_body",
    "safe_url",
    "sanitize",
    "send",
    "service_error",
]

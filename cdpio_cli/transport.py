"""The one HTTP policy every command uses (send-test, check-keys, verify, replay).

- `make_client`: TLS verification on, a cdpio User-Agent, no automatic
  redirects, and a guard that refuses to put credentials on plain http://
  to anything but loopback.
- `send`: one logical request with retries (408, 429, 5xx, network errors),
  exponential backoff with full jitter, `Retry-After` honoured (capped),
  deliberate redirects (credentials only re-sent to the same host, a
  `*.customer.io` host, or loopback), an optional shared rate limit.
- `TokenBucket`: a thread-safe request-rate limiter.
- `service_error` / `batch_errors`: read the services' error bodies.

Nothing here ever puts a credential into an error text: httpx exception
messages can contain URLs (the Segment settings lookup has the write key in
its path) and header values, so every text is sanitised before it leaves.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx
import orjson

from cdpio_cli import __version__
from cdpio_cli.credentials import mask, redact
from cdpio_cli.errors import UsageError

USER_AGENT = f"cdpio/{__version__}"
MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


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
            hint="use an https:// endpoint; plain http is only allowed to loopback (a local sandbox)")


def _guard_request(request: httpx.Request) -> None:
    # Last line of defence for every request made through a cdpio client,
    # including ones built outside `send`.
    has_auth = "authorization" in request.headers or request.extensions.get("cdpio_credentials", False)
    check_credentials_transport(request.url, has_credentials=bool(has_auth))


def make_client(timeout: float = 10.0, *, max_connections: int = 10) -> httpx.Client:
    """The shared httpx client: verified TLS, cdpio User-Agent, redirects by hand."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        verify=True,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=max_connections,
                            max_keepalive_connections=max_connections),
        event_hooks={"request": [_guard_request]},
    )


def basic_auth(username: str, password: str = "") -> str:
    """`Authorization` value for HTTP Basic (Segment: `write_key:`, note the colon)."""
    token = base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")
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
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, mask(secret))
    return redact(text)


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


def describe_exception(exc: BaseException, url: httpx.URL | str,
                       secrets: tuple[str, ...] | list[str] = ()) -> str:
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
    run.  `burst` > 1 lets an idle limiter catch up by that many slots.
    """

    def __init__(self, rate: float, burst: float = 1.0, *,
                 clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self.burst = max(1.0, float(burst))
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Reserve a slot; return the clock time at which it may be used."""
        with self._lock:
            now = self._clock()
            slot = max(self._next, now - (self.burst - 1.0) * self.interval)
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
    `max_retry_after`).
    """

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0

    @staticmethod
    def retryable_status(status: int | None) -> bool:
        return status is not None and (status in (408, 429) or 500 <= status <= 599)

    def delay(self, retry_number: int, retry_after: float | None = None,
              rng: Callable[[float, float], float] = random.uniform) -> float:
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
    duration: float = 0.0          # seconds, whole send incl. waits
    attempts: int = 0              # HTTP requests made (retries + redirects included)
    error: str | None = None       # sanitised transport error of the last attempt
    history: list[int | None] = field(default_factory=list)  # status per request, None = no response
    latencies: list[float] = field(default_factory=list)     # seconds per request
    url: str = ""                  # final URL, safe form
    redirects: list[str] = field(default_factory=list)       # safe URLs followed
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
        text = self.service_error()
        base = f"HTTP {self.status}"
        return f"{base}: {text}" if text else base


def _redirect_keeps_credentials(origin: httpx.URL, target: httpx.URL) -> bool:
    """Credentials follow a redirect only to the same host, *.customer.io, or
    loopback; and never from https down to http (unless loopback)."""
    if target.scheme not in ("http", "https"):
        return False
    if origin.scheme == "https" and target.scheme != "https" and not is_loopback(target.host):
        return False
    if target.host == origin.host:
        return True
    if target.host == "customer.io" or target.host.endswith(".customer.io"):
        return True
    return is_loopback(target.host) and is_loopback(origin.host)


def send(client: httpx.Client, spec: RequestSpec, policy: RetryPolicy = NO_RETRY,
         rate_limiter: TokenBucket | None = None, *, cancel: threading.Event | None = None,
         rng: Callable[[float, float], float] = random.uniform) -> Attempt:
    """Send one logical request under the retry policy; never raises for
    network or HTTP errors (UsageError for a refused insecure request)."""
    check_credentials_transport(spec.url, has_credentials=spec.has_credentials)
    result = Attempt()
    started = time.perf_counter()
    method, url = spec.method.upper(), httpx.URL(spec.url)
    headers = dict(spec.headers)
    content = spec.content
    retries_done = 0
    redirects_done = 0
    while True:
        if cancel is not None and cancel.is_set():
            result.cancelled = True
            break
        if rate_limiter is not None:
            rate_limiter.acquire(cancel)
            if cancel is not None and cancel.is_set():
                result.cancelled = True
                break
        result.attempts += 1
        t0 = time.perf_counter()
        response: httpx.Response | None = None
        try:
            request = client.build_request(method, url, headers=headers, content=content)
            if spec.secrets:
                request.extensions["cdpio_credentials"] = True
            response = client.send(request)
            status = response.status_code
            result.error = None
        except httpx.HTTPError as exc:  # TransportError, InvalidURL-ish, decoding errors
            status = None
            result.error = describe_exception(exc, url, spec.secrets)
        except UsageError:
            raise
        latency = time.perf_counter() - t0
        result.latencies.append(latency)
        result.history.append(status)
        result.status = status
        result.url = mask_secrets(safe_url(url), spec.secrets)
        if response is not None:
            result.body = response.content
            result.headers = {k.lower(): v for k, v in response.headers.items()}

        if status in REDIRECT_STATUSES and "location" in result.headers and redirects_done < MAX_REDIRECTS:
            target = url.join(result.headers["location"])
            if not _redirect_keeps_credentials(url, target):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if status == 303 or (status in (301, 302) and method not in ("GET", "HEAD", "POST", "PUT")):
                method, content = "GET", None
            # We are an API client: 301/302 keep POST and its body (the Track
            # API's cross-region redirect must carry the event).
            redirects_done += 1
            url = target
            result.redirects.append(mask_secrets(safe_url(target), spec.secrets))
            check_credentials_transport(url, has_credentials=any(
                k.lower() == "authorization" for k in headers) or bool(spec.secrets))
            continue

        retryable = status is None or policy.retryable_status(status)
        if not retryable or retries_done >= policy.max_retries:
            break
        retries_done += 1
        retry_after = None
        if status is not None:
            retry_after = parse_retry_after(result.headers.get("retry-after"))
        wait = policy.delay(retries_done, retry_after, rng)
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
            return sanitize(_clip(m.group(1))) if m else None
        return sanitize(_clip(stripped)) or None
    return _error_from_json(data)


def _error_from_json(data: Any) -> str | None:
    if isinstance(data, str):
        return sanitize(_clip(data)) or None
    if isinstance(data, list):
        parts = [p for p in (_error_from_json(x) for x in data[:5]) if p]
        return sanitize(_clip("; ".join(parts))) if parts else None
    if not isinstance(data, dict):
        return None
    meta = data.get("meta")
    if isinstance(meta, dict):
        if isinstance(meta.get("error"), str) and meta["error"]:
            return sanitize(_clip(meta["error"]))
        errs = meta.get("errors")
        if isinstance(errs, list) and errs:
            return sanitize(_clip("; ".join(str(e) for e in errs[:5])))
        if isinstance(errs, dict) and errs:
            return sanitize(_clip("; ".join(f"{k}: {v}" for k, v in list(errs.items())[:5])))
    errs = data.get("errors")
    if isinstance(errs, list) and errs:
        parts = []
        for e in errs[:5]:
            parts.append(_format_v2_error(e) if isinstance(e, dict) else str(e))
        more = f" (+{len(errs) - 5} more)" if len(errs) > 5 else ""
        return sanitize(_clip("; ".join(parts) + more))
    message = data.get("message") or data.get("error") or data.get("detail")
    code = data.get("code")
    if isinstance(message, str) and message:
        prefix = f"{code}: " if isinstance(code, (str, int)) and str(code) not in ("", "unknown") else ""
        return sanitize(_clip(prefix + message))
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
        text = sanitize(_clip(_format_v2_error(e)))
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
    error: str | None = None            # service error text or transport error, sanitised
    attempts: int = 0
    endpoint: str = ""                  # METHOD safe-url, for display
    dropped: str | None = None          # not sent: why (mapping drop, spec problem)
    redirected_to: str | None = None
    reached: bool = False               # the service answered with some HTTP status
    requests: int = 1                   # HTTP calls this outcome covers
    body: Any = None                    # parsed JSON body of the (last) response, if any

    @classmethod
    def from_attempt(cls, route: str, method: str, attempt: Attempt, *,
                     ok: bool | None = None) -> "Outcome":
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
    "USER_AGENT", "Attempt", "NO_RETRY", "Outcome", "RequestSpec", "RetryPolicy", "TokenBucket",
    "basic_auth", "batch_errors", "bearer_auth", "check_credentials_transport",
    "describe_exception", "is_loopback", "join_url", "make_client", "mask_secrets", "parse_retry_after",
    "safe_url", "sanitize", "send", "service_error",
]

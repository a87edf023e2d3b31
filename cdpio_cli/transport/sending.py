"""`send`: one logical request under the retry policy, with deliberate
redirects, an optional shared rate limit and deadline; and what came of it
(`Attempt`, `Outcome`)."""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from cdpio_cli.transport.body import MAX_RESPONSE_BYTES, BodyTooLarge, decode_body
from cdpio_cli.transport.client import Client, client_timeout
from cdpio_cli.transport.deadlines import Deadline
from cdpio_cli.transport.errors import ConnectTimeout, HTTPError, InvalidURL, PoolTimeout, TimeoutException
from cdpio_cli.transport.ratelimit import TokenBucket
from cdpio_cli.transport.redaction import describe_exception, mask_secrets, sanitize
from cdpio_cli.transport.retries import NO_RETRY, RetryPolicy, parse_retry_after
from cdpio_cli.transport.service_errors import service_error
from cdpio_cli.transport.url import URL
from cdpio_cli.transport.urls import check_credentials_transport, may_receive_credentials, safe_url

if TYPE_CHECKING:  # a plain httpx client may be handed in (the sandbox, tests)
    import httpx

MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


# eq=False, repr=False: nothing compares or prints these records, and dataclasses
# compiles each generated method with exec at import (start-up, issue 17).
@dataclass(eq=False, repr=False)
class RequestSpec:
    """One logical request.  `secrets` are values that must never appear in
    any text derived from it (keys in headers, a write key in the path)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    secrets: tuple[str, ...] = ()

    @property
    def has_credentials(self) -> bool:
        return bool(self.secrets) or any(k.lower() == "authorization" for k in self.headers)


@dataclass(eq=False, repr=False)
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


def send(
    client: Client | httpx.Client,
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
    url = _parsed(spec.url)
    check_credentials_transport(url, has_credentials=spec.has_credentials)
    result = Attempt()
    started = time.perf_counter()
    progress = _Progress(
        method=spec.method.upper(),
        url=url,
        headers=dict(spec.headers),
        content=spec.content,
        deadline=deadline,
        request_bound=client_timeout(client),
    )
    while _may_send(result, progress, cancel, rate_limiter):
        if policy.bounded and result.attempts == 0:
            # From the first attempt, not before: waiting for a rate-limit
            # slot is the pace the user chose, not the service's slowness.
            own = Deadline(policy.total_bound(progress.request_bound), owner="the batch's")
            if progress.deadline is None or own.end < progress.deadline.end:
                progress.deadline = own
        result.attempts += 1
        t0 = time.perf_counter()
        answer = _request_once(client, spec, progress, max_body)
        _record(result, answer, time.perf_counter() - t0, spec, progress.url)
        if answer.fatal or not _send_again(result, progress, spec, answer.status, policy, rng, cancel):
            break
    result.duration = time.perf_counter() - started
    if not result.url:
        result.url = mask_secrets(safe_url(progress.url), spec.secrets)
    return result


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> URL:
    # A replay sends every request to one URL: parsed once (URL is immutable).
    return URL(text)


@functools.lru_cache(maxsize=64)
def _safe(url: URL) -> str:
    return safe_url(url)


@dataclass(eq=False, repr=False)
class _Progress:
    """Where one logical request stands between its HTTP requests."""

    method: str
    url: URL
    headers: dict[str, str]
    content: bytes | None
    deadline: Deadline | None
    request_bound: float  # seconds one HTTP request may take in all
    retries_done: int = 0
    redirects_done: int = 0


@dataclass(eq=False, repr=False)
class _Answer:
    """What one HTTP request came back with."""

    replied: int | None = None  # the status the server answered, usable or not
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    status: int | None = None  # None: no usable answer
    body: bytes = b""
    error: str | None = None  # sanitised
    fatal: bool = False  # asking again would read the same flood


def _may_send(
    result: Attempt, progress: _Progress, cancel: threading.Event | None, rate_limiter: TokenBucket | None
) -> bool:
    """Not cancelled, within the deadline, and a rate-limit slot taken."""
    if cancel is not None and cancel.is_set():
        result.cancelled = True
        return False
    deadline = progress.deadline
    if deadline is not None and deadline.expired():
        if not result.history:
            result.error = f"not sent: {deadline.describe()}"
        elif result.status is None:
            result.error = f"{result.error or 'no response'}; {deadline.describe()}"
        return False
    if rate_limiter is not None:
        rate_limiter.acquire(cancel)
        if cancel is not None and cancel.is_set():
            result.cancelled = True
            return False
    return True


def _request_once(client: Client | httpx.Client, spec: RequestSpec, progress: _Progress, max_body: int) -> _Answer:
    """One HTTP request, bounded in total by the request bound and the deadline."""
    end = time.monotonic() + progress.request_bound
    if progress.deadline is not None:
        end = min(end, progress.deadline.end)
    answer = _Answer()
    try:
        wire = client.wire_for_send() if isinstance(client, Client) else None
        if wire is not None:
            check_credentials_transport(progress.url, has_credentials=spec.has_credentials)
            reply = wire.request(
                progress.method,
                progress.url,
                progress.headers,
                progress.content,
                timeout=progress.request_bound,
                end=end,
            )
            answer.replied, answer.headers = reply.status, reply.headers
            try:
                answer.body = decode_body(reply.headers, reply.chunks(), max_body)
            finally:
                reply.close()
        else:
            # A proxy, watched requests, or a plain httpx client: the same
            # exchange through httpx, its exceptions translated to cdpio's.
            from cdpio_cli.transport import via_httpx

            answer.replied, answer.headers, answer.body = via_httpx.request(
                client.httpx_client() if isinstance(client, Client) else client,
                progress.method,
                progress.url,
                progress.headers,
                progress.content,
                credentials=bool(spec.secrets),
                max_body=max_body,
                end=end,
            )
        answer.status = answer.replied
    except BodyTooLarge:
        answer.fatal = True
        answer.error = (
            f"the response from {progress.url.host} is larger than {_mb(max_body)} (decompressed); "
            "cdpio stopped reading it"
        )
    except HTTPError as exc:  # TransportError, decoding errors
        answer.error = _failure_text(exc, spec, progress, end)
    return answer


def _failure_text(exc: HTTPError, spec: RequestSpec, progress: _Progress, end: float) -> str:
    """Why a request got no answer; a timeout at the bound says which bound."""
    url, deadline = progress.url, progress.deadline
    if not (isinstance(exc, TimeoutException) and time.monotonic() >= end - 0.01):
        return describe_exception(exc, url, spec.secrets)
    if deadline is not None and end >= deadline.end:
        # Connected but unanswered is a slow service, not an unreachable one.
        connected = not isinstance(exc, (ConnectTimeout, PoolTimeout))
        lead = f"no complete response from {url.host}" if connected else f"no connection to {url.host}"
        what = f"{lead} before the {deadline.describe()}"
    else:
        what = f"no complete response from {url.host} within {progress.request_bound:g} s"
    return sanitize(f"timed out: {what}", spec.secrets)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


def _record(result: Attempt, answer: _Answer, latency: float, spec: RequestSpec, url: URL) -> None:
    result.latencies.append(latency)
    # What the server answered, even when cdpio could not use it (a body over the cap).
    result.history.append(answer.replied)
    result.status = answer.status
    result.error = answer.error
    result.url = mask_secrets(_safe(url), spec.secrets)
    if answer.replied is not None:
        result.body = answer.body
        result.headers = answer.headers


def _send_again(
    result: Attempt,
    progress: _Progress,
    spec: RequestSpec,
    status: int | None,
    policy: RetryPolicy,
    rng: Callable[[float, float], float],
    cancel: threading.Event | None,
) -> bool:
    """Follow a redirect, or wait for a retry; False when the request ends here."""
    followed = _follow_redirect(result, progress, spec, status)
    if followed is not None:
        return followed
    return _wait_to_retry(result, progress, status, policy, rng, cancel)


def _follow_redirect(result: Attempt, progress: _Progress, spec: RequestSpec, status: int | None) -> bool | None:
    """Point `progress` at a redirect's target: True to send there, False when
    it may not be followed, None when there is no redirect to follow."""
    if status not in REDIRECT_STATUSES or "location" not in result.headers or progress.redirects_done >= MAX_REDIRECTS:
        return None
    url = progress.url
    try:
        target = url.join(result.headers["location"])
    except InvalidURL:
        result.error = "the redirect's Location is not a valid URL; not followed"
        return False
    if spec.has_credentials and not may_receive_credentials(url, target):
        # Not even without the header: the request body is the user's
        # data, and a later batch must not go there either.
        result.error = (
            f"redirected to {mask_secrets(safe_url(target), spec.secrets)}, a host "
            "that may not receive your credentials; not followed (check the endpoint setting)"
        )
        return False
    if status == 303 or (status in (301, 302) and progress.method not in ("GET", "HEAD", "POST", "PUT")):
        progress.method, progress.content = "GET", None
    # We are an API client: 301/302 keep POST and its body (the Track
    # API's cross-region redirect must carry the event).
    progress.redirects_done += 1
    progress.url = target
    result.redirects.append(mask_secrets(safe_url(target), spec.secrets))
    check_credentials_transport(target, has_credentials=spec.has_credentials)
    return True


def _wait_to_retry(
    result: Attempt,
    progress: _Progress,
    status: int | None,
    policy: RetryPolicy,
    rng: Callable[[float, float], float],
    cancel: threading.Event | None,
) -> bool:
    """Wait before asking again; False when the request ends here."""
    retryable = status is None or policy.retryable_status(status)
    if not retryable or progress.retries_done >= policy.max_retries:
        return False
    retry_after = parse_retry_after(result.headers.get("retry-after")) if status is not None else None
    wait = policy.delay(progress.retries_done + 1, retry_after, rng)
    # Retrying before the asked time (the cap cut the wait) only earns
    # another 429: a Retry-After the deadline would not survive ends it now.
    deadline = progress.deadline
    if deadline is not None and max(wait, retry_after or 0.0) >= deadline.remaining():
        if retry_after is not None:
            result.error = f"the service asked to retry after {retry_after:g} s; {deadline.describe()} before that"
        return False
    progress.retries_done += 1
    if wait <= 0:
        return True
    if cancel is None:
        time.sleep(wait)
        return True
    if cancel.wait(wait):
        result.cancelled = True
        return False
    return True


@dataclass(eq=False, repr=False)
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

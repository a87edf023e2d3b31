"""The one HTTP policy every command uses (send-test, check-keys, verify, replay).

- `make_client` (client): TLS verification on, a cdpio User-Agent, no
  automatic redirects, and a guard that refuses to put credentials on plain
  http:// to anything but loopback (urls).  Requests go over the lean
  wire (wire: sockets, responses read by http.client's rules in http1)
  with cdpio's URL (url) and exceptions (errors);
  httpx is imported only for a proxy from the environment or a client whose
  requests are watched through event hooks (via_httpx, the one place httpx's
  exceptions are translated).
- `send` (sending): one logical request with retries (408, 429, 5xx,
  network errors), exponential backoff with full jitter, `Retry-After`
  honoured only while it fits the caps and the deadline (retries), deliberate
  redirects (followed with credentials only to a host that may see them: the
  same host, a `*.customer.io` host over https, or loopback; never
  elsewhere), an optional shared rate limit (ratelimit: `TokenBucket`).
- Bounds (docs/security.md, deadlines): every HTTP request ends within the
  client's timeout in total (not per read: a server trickling one byte at a
  time is cut off), an optional `Deadline` bounds a whole command, and
  response bodies are read streamed up to `MAX_RESPONSE_BYTES`, decompressed
  size included (body).
- `service_error` / `batch_errors` (service_errors): read the services'
  error bodies.

Nothing here ever puts a credential into an error text: every text is
sanitised before it leaves (redaction).
"""

from cdpio_cli.transport.body import MAX_RESPONSE_BYTES, BodyTooLarge, read_body
from cdpio_cli.transport.client import USER_AGENT, basic_auth, bearer_auth, make_client
from cdpio_cli.transport.deadlines import Deadline, check_timeout
from cdpio_cli.transport.ratelimit import TokenBucket
from cdpio_cli.transport.redaction import answered_too_slowly, describe_exception, mask_secrets, sanitize
from cdpio_cli.transport.retries import NO_RETRY, RetryPolicy, parse_retry_after
from cdpio_cli.transport.sending import Attempt, Outcome, RequestSpec, send
from cdpio_cli.transport.service_errors import batch_errors, service_error
from cdpio_cli.transport.urls import (
    check_credentials_transport,
    is_loopback,
    join_url,
    may_receive_credentials,
    safe_url,
)

__all__ = [
    "MAX_RESPONSE_BYTES",
    "NO_RETRY",
    "USER_AGENT",
    "Attempt",
    "BodyTooLarge",
    "Deadline",
    "Outcome",
    "RequestSpec",
    "RetryPolicy",
    "TokenBucket",
    "answered_too_slowly",
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

"""Segment Tracking API route: messages -> `POST {base}/v1/batch` (or a single
call), response -> outcome.

Auth is HTTP Basic `write_key:` (the colon matters).  Limits: 32 KB per
message, 500 KB per batch request, 2,500 events per batch (more are silently
dropped with a 200, so we never send more).
Source: https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/
(docs/contracts.md).
A 200 here means "accepted", never "delivered": Segment answers 200 even for
a write key that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cdpio_cli import messages
from cdpio_cli.credentials import FormatHint
from cdpio_cli.routes.registry import Capabilities, CredentialSpec, RouteSpec, SendOne, SendTestText, register
from cdpio_cli.transport import (
    NO_RETRY,
    Attempt,
    Deadline,
    Outcome,
    RequestSpec,
    RetryPolicy,
    TokenBucket,
    basic_auth,
    join_url,
    send,
)
from cdpio_cli.transport.client import Client

NAME = "segment"
SINGLE_CALLS = ("identify", "track", "page", "screen", "group", "alias")


@dataclass(eq=False, repr=False, slots=True)  # slots: made once per message, about 90 ns quicker
class Prepared:
    """One message made ready for a batch route: its wire items, or why not."""

    items: list[bytes] = field(default_factory=list)
    dropped: str | None = None  # not sent, by design (mapping drop)
    problem: str | None = None  # cannot be sent (too large, ...)
    lane: str = "batch"  # items of different lanes never share a request


@dataclass(eq=False, repr=False)
class BatchVerdict:
    """How the service answered one batch request."""

    accepted: bool  # the request as a whole succeeded
    item_errors: dict[int, str] = field(default_factory=dict)  # item index -> why it failed
    reason: str | None = None  # why the whole batch failed


class SegmentStyleRoute:
    """Shared by Segment and Pipelines: Segment-shaped batches of messages."""

    name = NAME
    max_item_bytes = messages.MAX_MESSAGE_BYTES
    max_batch_bytes = messages.MAX_BATCH_BYTES
    max_batch_items = messages.MAX_BATCH_EVENTS
    # `{"batch":[` ... `],"sentAt":"2024-01-01T00:00:00.000Z"}` plus slack.
    envelope_bytes = 64
    # One item per message, the message as encoded: replay may skip prepare().
    passthrough = True

    def __init__(self, base_url: str, key: str, *, batch_size: int = 100, extra_headers: dict[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.batch_size = max(1, min(int(batch_size), self.max_batch_items))
        self.extra_headers = dict(extra_headers or {})

    # -- auth ---------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": basic_auth(self.key, "")}

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.key,)

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", **self.auth_headers(), **self.extra_headers}

    # -- batching -----------------------------------------------------------
    def prepare(self, msg: dict, encoded: bytes | None = None) -> Prepared:
        data = encoded if encoded is not None else messages.encode(msg)
        if len(data) > self.max_item_bytes:
            return Prepared(problem=f"message is {len(data):,} bytes; the limit is {self.max_item_bytes:,} bytes")
        return Prepared(items=[data])

    def lane_limits(self, lane: str) -> int:
        """Most items one request of this lane may carry."""
        return self.batch_size

    def batch_url(self) -> str:
        return join_url(self.base_url, "/v1/batch")

    def build_request(self, items: list[bytes], *, lane: str = "batch", sent_at: str | None = None) -> RequestSpec:
        return self.build_joined(b",".join(items), sent_at=sent_at)

    def build_joined(self, joined: bytes, *, sent_at: str | None = None) -> RequestSpec:
        """`build_request` of items already joined with b"," (replay spools a
        batch so: the items are not split and joined again per request)."""
        body = b"".join((b'{"batch":[', joined, b'],"sentAt":"', (sent_at or messages.now_iso()).encode(), b'"}'))
        return RequestSpec("POST", self.batch_url(), self.headers(), body, secrets=self.secrets)

    def interpret(self, attempt: Attempt, n_items: int) -> BatchVerdict:
        if attempt.ok:
            return BatchVerdict(True)
        return BatchVerdict(False, reason=attempt.describe_failure())

    # -- single calls (send-test) --------------------------------------------
    def single_request(self, msg: dict) -> RequestSpec:
        mtype = msg.get("type")
        if mtype not in SINGLE_CALLS:
            raise ValueError(f"message type {mtype!r} has no single-call endpoint")
        body = dict(msg)
        body.setdefault("sentAt", messages.now_iso())
        return RequestSpec(
            "POST",
            join_url(self.base_url, f"/v1/{mtype}"),
            self.headers(),
            messages.encode(body),
            secrets=self.secrets,
        )


class SegmentRoute(SegmentStyleRoute):
    name = NAME


def send_message(
    client: Client,
    base_url: str,
    write_key: str,
    msg: dict,
    *,
    policy: RetryPolicy = NO_RETRY,
    rate_limiter: TokenBucket | None = None,
    deadline: Deadline | None = None,
) -> Outcome:
    """Send one message through `POST {base}/v1/{type}` (send-test).

    The message gets a messageId before the first attempt (so a retry cannot
    duplicate it); `msg` is updated in place with it.
    """
    return send_single(
        SegmentRoute(base_url, write_key), client, msg, policy=policy, rate_limiter=rate_limiter, deadline=deadline
    )


def send_batch(
    client: Client, base_url: str, write_key: str, msgs: list[dict], *, policy: RetryPolicy = NO_RETRY
) -> Outcome:
    """Send a few messages as one `POST {base}/v1/batch` request."""
    return send_messages_as_batch(SegmentRoute(base_url, write_key), client, msgs, policy=policy)


def send_single(
    route: SegmentStyleRoute,
    client: Client,
    msg: dict,
    *,
    policy: RetryPolicy = NO_RETRY,
    rate_limiter: TokenBucket | None = None,
    deadline: Deadline | None = None,
) -> Outcome:
    messages.ensure_message_id(msg)
    size = messages.message_size(msg)
    if size > route.max_item_bytes:
        return Outcome(
            route.name,
            False,
            dropped=f"message is {size:,} bytes; the limit is {route.max_item_bytes:,} bytes",
            requests=0,
        )
    spec = route.single_request(msg)
    attempt = send(client, spec, policy, rate_limiter, deadline=deadline)
    return Outcome.from_attempt(route.name, spec.method, attempt)


def send_messages_as_batch(
    route: SegmentStyleRoute, client: Client, msgs: list[dict], *, policy: RetryPolicy = NO_RETRY
) -> Outcome:
    items: list[bytes] = []
    for msg in msgs:
        messages.ensure_message_id(msg)
        prepared = route.prepare(msg)
        if prepared.problem:
            return Outcome(route.name, False, dropped=prepared.problem, requests=0)
        items.extend(prepared.items)
    if len(items) > route.max_batch_items:
        return Outcome(
            route.name,
            False,
            dropped=f"{len(items)} messages; a batch holds at most {route.max_batch_items}",
            requests=0,
        )
    spec = route.build_request(items)
    if len(spec.content or b"") > route.max_batch_bytes:
        return Outcome(
            route.name,
            False,
            dropped=f"the batch is {len(spec.content or b''):,} bytes; the limit is {route.max_batch_bytes:,}",
            requests=0,
        )
    attempt = send(client, spec, policy)
    return Outcome.from_attempt(route.name, spec.method, attempt)


# ---------------------------------------------------------------------------
# The route's registry entry
# ---------------------------------------------------------------------------

_ALNUM = re.compile(r"^[A-Za-z0-9]+$")


def _write_key_format(value: str) -> FormatHint:
    n = len(value)
    if _ALNUM.match(value) and n >= 20:
        return FormatHint(True, f"looks right ({n} alphanumeric characters)")
    if not _ALNUM.match(value):
        return FormatHint(
            False, "contains characters other than letters and digits; Segment write keys are alphanumeric"
        )
    return FormatHint(False, f"is only {n} characters; Segment write keys are usually 32")


def _public_api_token_format(value: str) -> FormatHint:
    if value.startswith("sgp_"):
        return FormatHint(True, "looks right (sgp_ prefix)")
    return FormatHint(False, "does not start with sgp_, the prefix of Segment Public API tokens")


WRITE_KEY = CredentialSpec(
    "segment.write_key",
    "Segment write key",
    "SEGMENT_WRITE_KEY",
    sandbox_option="write_key",
    check_format=_write_key_format,
)
PUBLIC_API_TOKEN = CredentialSpec(
    "segment.public_api_token",
    "Segment Public API token",
    "SEGMENT_PUBLIC_API_TOKEN",
    sandbox_option="public_api_token",
    check_format=_public_api_token_format,
)


def _build(base_url: str, credentials: Mapping[str, str], batch_size: int, strict: bool) -> SegmentRoute:
    return SegmentRoute(base_url, credentials[WRITE_KEY.field], batch_size=batch_size)


def _send_one(send: SendOne, msg: dict[str, Any]) -> Outcome:
    return send_message(
        send.client, send.base_url, send.credentials[WRITE_KEY.field], msg, policy=send.policy, deadline=send.deadline
    )


SPEC = register(
    RouteSpec(
        name=NAME,
        title="Segment Tracking API",
        credentials=(WRITE_KEY,),
        related_credentials=(PUBLIC_API_TOKEN,),
        service="segment",
        build=_build,
        send_one=_send_one,
        capabilities=Capabilities(batching=True, destination_subscriptions=True),
        send_test=SendTestText(
            accepted="{status} accepted by Segment (not proof of delivery: Segment answers "
            "{status} even for unknown write keys)",
            rejected_fix="check segment.write_key",
            nothing_arrived="Segment accepted the events (200) but none reached Customer.io",
            unverified_caveat=" (Segment's 200 is not proof of delivery)",
            verified="{status} accepted by Segment; delivery verified",
        ),
    )
)

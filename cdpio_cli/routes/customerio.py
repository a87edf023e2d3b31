"""Customer.io Track API route: Segment messages -> the operations the
Customer.io (Actions) destination would send (mapping.py) -> Track API.

Replay posts v2 operations to `POST {base}/api/v2/batch` (docs/contracts.md,
"Track API"): Basic `site_id:track_api_key`, request < 500 KB, each operation <= 32 KB.
A 207 lists the failed operations by `errors[].batch_index`; the others were
accepted.  Messages the mapping drops are not sent (the real destination
would drop them too) and are reported as dropped.  `Report Delivery Event`
maps to `POST /api/v1/metrics`, which cannot ride in a v2 batch; it is sent on
its own.

send-test uses the single sends: v2 `POST /api/v2/entity` per operation, or
the v1 equivalents (`PUT /api/v1/customers/{id}`, `.../events`, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cdpio_cli import messages
from cdpio_cli.credentials import FormatHint
from cdpio_cli.routes.registry import Capabilities, CredentialSpec, RouteSpec, SendOne, SendTestText, register
from cdpio_cli.routes.segment import BatchVerdict, Prepared
from cdpio_cli.transport import (
    NO_RETRY,
    Attempt,
    Deadline,
    Outcome,
    RequestSpec,
    RetryPolicy,
    TokenBucket,
    basic_auth,
    batch_errors,
    join_url,
    may_receive_credentials,
    send,
)
from cdpio_cli.transport.client import Client

NAME = "customerio"
MAX_OP_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
# No maximum operation count is documented for /api/v2/batch; keep batches
# at Segment's size so one slow request never holds too much.
MAX_BATCH_OPS = 2500

LANE_BATCH = "batch"
LANE_METRICS = "metrics"


class CustomerioRoute:
    """Track v2 batches of mapped operations."""

    name = NAME
    max_item_bytes = MAX_OP_BYTES
    max_batch_bytes = MAX_REQUEST_BYTES
    max_batch_items = MAX_BATCH_OPS
    envelope_bytes = 16  # {"batch":[ ... ]}

    def __init__(self, base_url: str, site_id: str, api_key: str, *, batch_size: int = 100):
        self.base_url = base_url.rstrip("/")
        self.site_id = site_id
        self.api_key = api_key
        self.batch_size = max(1, min(int(batch_size), self.max_batch_items))
        # The mapping loads with the first Customer.io sender, not with the route
        # registry: a Segment-route run never imports it (41M instructions).
        from cdpio_cli import mapping
        from cdpio_cli.mapping.encoded import encoded_operation

        self._map_message = mapping.map_message
        # The one operation of a common message (mapping/encoded.py), or None: ask `prepare`.
        # The pre-pass calls it first (cutting.Cutter.add_mapped): no `Prepared` per message.
        self.encoded_item = encoded_operation
        self._metrics_path = mapping.V1_METRICS

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.api_key,)

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": basic_auth(self.site_id, self.api_key)}

    def prepare(self, msg: dict, encoded: bytes | None = None) -> Prepared:
        # The common message, encoded straight from its fields (the same bytes).
        data = self.encoded_item(msg) if type(msg) is dict else None
        if data is not None and len(data) <= self.max_item_bytes:
            return Prepared([data])
        result = self._map_message(msg, check_limits=False)  # Customer.io judges its limits
        if result.drop_reason is not None:
            return Prepared(dropped=result.drop_reason)
        limit = self.max_item_bytes
        items = []
        encode = messages.encode
        for op in result.operations:
            data = encode(op)
            if len(data) > limit:
                return Prepared(
                    problem=f"the Customer.io operation is {len(data):,} bytes; the limit is {limit:,} bytes"
                )
            items.append(data)
        return Prepared(items, None, None, LANE_METRICS if result.endpoint == self._metrics_path else LANE_BATCH)

    def lane_limits(self, lane: str) -> int:
        return 1 if lane == LANE_METRICS else self.batch_size

    def build_request(self, items: list[bytes], *, lane: str = LANE_BATCH, sent_at: str | None = None) -> RequestSpec:
        if lane == LANE_METRICS:
            return RequestSpec(
                "POST",
                join_url(self.base_url, self._metrics_path),
                self.headers(),
                items[0],
                secrets=self.secrets,
            )
        return self.build_joined(b",".join(items))

    def build_joined(self, joined: bytes, *, sent_at: str | None = None) -> RequestSpec:
        """The batch lane's request for items already joined with b"," (replay
        spools a batch so: the body is one copy of them)."""
        body = b"".join((b'{"batch":[', joined, b"]}"))
        return RequestSpec(
            "POST",
            join_url(self.base_url, "/api/v2/batch"),
            self.headers(),
            body,
            secrets=self.secrets,
        )

    def interpret(self, attempt: Attempt, n_items: int) -> BatchVerdict:
        self._follow_redirect(attempt)
        if attempt.status == 207:
            errors = {i: text for i, text in batch_errors(attempt.body).items() if 0 <= i < n_items}
            if not errors:  # a 207 we cannot attribute: treat every op as failed
                return BatchVerdict(False, reason=attempt.describe_failure())
            return BatchVerdict(True, item_errors=errors)
        if attempt.ok:
            return BatchVerdict(True)
        return BatchVerdict(False, reason=attempt.describe_failure())

    def _follow_redirect(self, attempt: Attempt) -> None:
        """The Track API redirects an EU account from the US host on every
        call; once it has, send the rest of the batches to where it pointed --
        but only to a host that may see the credentials anyway (the EU Track
        host over https, the same host, loopback for the sandbox): a base URL
        moved anywhere else would hand `site_id:key` to that host on every
        later batch."""
        suffix = "/api/v2/batch"
        if not (attempt.ok and attempt.redirects and attempt.url.endswith(suffix)):
            return
        target = attempt.url[: -len(suffix)]
        if may_receive_credentials(self.base_url, target):
            self.base_url = target


# ---------------------------------------------------------------------------
# Single sends (send-test)
# ---------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class V1Call:
    """One Track API v1 request a message becomes."""

    method: str
    path: str
    body: Any = None


def _path_identifier(identifiers: dict) -> str | None:
    """v1 path identifier: id, email, or `cio_<id>` (docs/contracts.md)."""
    if not isinstance(identifiers, dict):
        return None
    if identifiers.get("id") not in (None, ""):
        return quote(str(identifiers["id"]), safe="")
    if identifiers.get("email"):
        return quote(str(identifiers["email"]), safe="")
    if identifiers.get("cio_id"):
        return quote("cio_" + str(identifiers["cio_id"]), safe="")
    return None


def v1_call(op: dict) -> V1Call | str:
    """The Track v1 request equivalent to one v2 operation, or why there is none."""
    if op.get("type") != "person":
        return f"Track v1 has no endpoint for {op.get('type')} operations; use v2"
    action = op.get("action")
    identifiers = op.get("identifiers") or {}
    ident = _path_identifier(identifiers)
    if action in ("event", "page", "screen"):
        anonymous_id = identifiers.get("anonymous_id") if isinstance(identifiers, dict) else None
        return _v1_event(op, str(action), ident, anonymous_id)
    if ident is None:
        if action == "merge":
            return V1Call(
                "POST", "/api/v1/merge_customers", {"primary": op.get("primary"), "secondary": op.get("secondary")}
            )
        return f"Track v1 cannot {action} a person known only by anonymous_id; use v2"
    return _v1_person(op, str(action), ident)


def _v1_event(op: dict, action: str, ident: str | None, anonymous_id: Any) -> V1Call | str:
    """An event, page or screen: on the person's path, or anonymous."""
    body: dict[str, Any] = {"name": op.get("name")}
    if action != "event":
        body["type"] = action
    for key in ("id", "timestamp"):
        if op.get(key) is not None:
            body[key] = op[key]
    if isinstance(op.get("attributes"), dict):
        body["data"] = op["attributes"]
    if ident:
        return V1Call("POST", f"/api/v1/customers/{ident}/events", body)
    if anonymous_id:
        body["anonymous_id"] = anonymous_id
        return V1Call("POST", "/api/v1/events", body)
    return "the event has no person identifier"


def _v1_person(op: dict, action: str, ident: str) -> V1Call | str:
    """A person action on `/api/v1/customers/{ident}...`."""
    if action == "identify":
        attrs = dict(op.get("attributes") or {})
        if op.get("timestamp") is not None:
            attrs["_timestamp"] = op["timestamp"]
        if op.get("cio_relationships"):
            attrs["cio_relationships"] = op["cio_relationships"]
        return V1Call("PUT", f"/api/v1/customers/{ident}", attrs)
    if action == "add_device":
        device = dict(op.get("device") or {})
        token = device.pop("token", None)
        return V1Call("PUT", f"/api/v1/customers/{ident}/devices", {"device": {"id": token, **device}})
    if action == "delete_device":
        token = (op.get("device") or {}).get("token")
        return V1Call("DELETE", f"/api/v1/customers/{ident}/devices/{quote(str(token), safe='')}")
    if action == "delete":
        return V1Call("DELETE", f"/api/v1/customers/{ident}")
    if action in ("suppress", "unsuppress"):
        return V1Call("POST", f"/api/v1/customers/{ident}/{action}")
    return f"Track v1 has no endpoint for the {action} action; use v2"


def _combine(outcomes: list[Outcome]) -> Outcome:
    """One outcome for a message that needed several requests: the first
    failure wins; durations add up."""
    first_bad = next((o for o in outcomes if not o.ok), None)
    base = first_bad or outcomes[-1]
    base.duration_ms = sum(o.duration_ms or 0.0 for o in outcomes)
    base.attempts = sum(o.attempts for o in outcomes)
    base.requests = sum(o.requests for o in outcomes)
    base.reached = any(o.reached for o in outcomes)
    return base


def send_message(
    client: Client,
    base_url: str,
    site_id: str,
    api_key: str,
    msg: dict,
    *,
    api: str = "v2",
    policy: RetryPolicy = NO_RETRY,
    rate_limiter: TokenBucket | None = None,
    deadline: Deadline | None = None,
) -> Outcome:
    """Send one Segment message the way the Customer.io (Actions) destination
    would: map it, then `POST /api/v2/entity` per operation (api="v2") or the
    v1 equivalents (api="v1").  A message the mapping drops is not sent:
    the outcome has `dropped` set and `requests == 0`."""
    if api not in ("v1", "v2"):
        raise ValueError("api must be 'v1' or 'v2'")
    from cdpio_cli import mapping

    messages.ensure_message_id(msg)
    result = mapping.map_message(msg, check_limits=False)  # Customer.io judges its limits
    if not result.ok:
        return Outcome(NAME, False, dropped=result.drop_reason, requests=0)
    headers = {"Content-Type": "application/json", "Authorization": basic_auth(site_id, api_key)}
    outcomes: list[Outcome] = []
    for op in result.operations:
        if result.endpoint == mapping.V1_METRICS:
            method, path, body = "POST", mapping.V1_METRICS, op
        elif api == "v2":
            method, path, body = "POST", "/api/v2/entity", op
        else:
            call = v1_call(op)
            if isinstance(call, str):
                return Outcome(NAME, False, dropped=call, requests=0)
            method, path, body = call.method, call.path, call.body
        content = None if body is None else messages.encode(body)
        limit = MAX_OP_BYTES
        if content is not None and len(content) > limit:
            return Outcome(
                NAME, False, dropped=f"the request body is {len(content):,} bytes; the limit is {limit:,}", requests=0
            )
        spec = RequestSpec(method, join_url(base_url, path), headers, content, secrets=(api_key,))
        attempt = send(client, spec, policy, rate_limiter, deadline=deadline)
        outcomes.append(Outcome.from_attempt(NAME, method, attempt))
        if not attempt.ok:
            break
    return _combine(outcomes)


def get_region(client: Client, base_url: str, site_id: str, api_key: str, *, policy: RetryPolicy = NO_RETRY) -> Outcome:
    """`GET {track}/api/v1/accounts/region`: 200 `{url, region, environment_id}`
    for valid Track credentials, 401 otherwise (docs/contracts.md).
    The parsed body is in `outcome.body`."""
    spec = RequestSpec(
        "GET",
        join_url(base_url, "/api/v1/accounts/region"),
        {"Authorization": basic_auth(site_id, api_key)},
        None,
        secrets=(api_key,),
    )
    return Outcome.from_attempt(NAME, "GET", send(client, spec, policy))


# ---------------------------------------------------------------------------
# The route's registry entry
# ---------------------------------------------------------------------------

_HEX20 = re.compile(r"^[0-9a-f]{20}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _track_format(kind: str) -> Callable[[str], FormatHint]:
    """The format check of a Track credential; `kind` names it in the warning."""

    def check(value: str) -> FormatHint:
        if _HEX20.match(value):
            return FormatHint(True, "looks right (20 lowercase hex characters)")
        if _HEX32.match(value):
            return FormatHint(
                False, "is 32 hex characters, which looks like an App API key; Track credentials are usually 20"
            )
        if re.fullmatch(r"[0-9a-fA-F]{20}", value):
            return FormatHint(False, "has uppercase letters; Customer.io shows these in lowercase")
        return FormatHint(
            False, f"is {len(value)} characters; Customer.io {kind} are usually 20 lowercase hex characters"
        )

    return check


def _app_key_format(value: str) -> FormatHint:
    if _HEX32.match(value):
        return FormatHint(True, "looks right (32 hex characters)")
    if _HEX20.match(value):
        return FormatHint(False, "is 20 hex characters, which looks like a Track API key; App API keys are usually 32")
    return FormatHint(False, f"is {len(value)} characters; App API keys are usually 32 hex characters")


SITE_ID = CredentialSpec(
    "customerio.site_id",
    "Customer.io site id",
    "CUSTOMERIO_SITE_ID",
    sandbox_option="site_id",
    check_format=_track_format("site ids"),
)
TRACK_API_KEY = CredentialSpec(
    "customerio.track_api_key",
    "Customer.io Track API key",
    "CUSTOMERIO_TRACK_API_KEY",
    sandbox_option="track_api_key",
    check_format=_track_format("Track API keys"),
)
APP_API_KEY = CredentialSpec(
    "customerio.app_api_key",
    "Customer.io App API key",
    "CUSTOMERIO_APP_API_KEY",
    sandbox_option="app_api_key",
    check_format=_app_key_format,
)


def _build(base_url: str, credentials: Mapping[str, str], batch_size: int, strict: bool) -> CustomerioRoute:
    return CustomerioRoute(
        base_url, credentials[SITE_ID.field], credentials[TRACK_API_KEY.field], batch_size=batch_size
    )


def _send_one(send: SendOne, msg: dict[str, Any]) -> Outcome:
    return send_message(
        send.client,
        send.base_url,
        send.credentials[SITE_ID.field],
        send.credentials[TRACK_API_KEY.field],
        msg,
        policy=send.policy,
        deadline=send.deadline,
    )


SPEC = register(
    RouteSpec(
        name=NAME,
        title="Customer.io Track API",
        credentials=(SITE_ID, TRACK_API_KEY),
        related_credentials=(APP_API_KEY,),
        service="track",
        build=_build,
        send_one=_send_one,
        capabilities=Capabilities(batching=True, per_operation_results=True),
        precheck=("customerio.track", "the Track API"),
        send_test=SendTestText(
            accepted="{status} accepted by the Track API",
            rejected_fix="check customerio.site_id and customerio.track_api_key "
            "(Account Settings > API Credentials > Track API Keys)",
            rejected_cause=(
                "customerio.track.rejected",
                "the Track API rejected the site id and Track API key ({status})",
            ),
        ),
    )
)

"""Customer.io Data Pipelines route: the Segment-shaped API at `{base}/v1/...`.

Auth (docs/contracts.md, "Pipelines"): Bearer for `pk_/sk_` region-prefixed keys, Basic
`key:` for legacy keys.  `X-Strict-Mode: 1` makes the API validate and answer
with real error codes instead of a 200 that silently drops the event; without
it a 200 proves nothing about the key.  Limits are Segment's (32 KB / 500 KB).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cdpio_cli.credentials import FormatHint
from cdpio_cli.routes.endpoints import pipelines_key_region
from cdpio_cli.routes.registry import Capabilities, CredentialSpec, RouteSpec, SendOne, SendTestText, register
from cdpio_cli.routes.segment import SegmentStyleRoute, send_messages_as_batch, send_single
from cdpio_cli.transport import NO_RETRY, Deadline, Outcome, RetryPolicy, TokenBucket, basic_auth, bearer_auth
from cdpio_cli.transport.client import Client

NAME = "pipelines"
STRICT_HEADER = "X-Strict-Mode"


def auth_header(api_key: str) -> str:
    if pipelines_key_region(api_key) is not None:
        return bearer_auth(api_key)
    return basic_auth(api_key, "")


class PipelinesRoute(SegmentStyleRoute):
    name = NAME

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        batch_size: int = 100,
        strict: bool = False,
        extra_headers: dict[str, str] | None = None,
    ):
        headers = dict(extra_headers or {})
        if strict:
            headers[STRICT_HEADER] = "1"
        super().__init__(base_url, api_key, batch_size=batch_size, extra_headers=headers)
        self.strict = strict

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": auth_header(self.key)}


def send_message(
    client: Client,
    base_url: str,
    api_key: str,
    msg: dict,
    *,
    strict: bool = True,
    policy: RetryPolicy = NO_RETRY,
    rate_limiter: TokenBucket | None = None,
    deadline: Deadline | None = None,
) -> Outcome:
    """Send one message through `POST {base}/v1/{type}`; strict mode by default
    (send-test wants a real error for a bad key or a bad payload)."""
    return send_single(
        PipelinesRoute(base_url, api_key, strict=strict),
        client,
        msg,
        policy=policy,
        rate_limiter=rate_limiter,
        deadline=deadline,
    )


def send_batch(
    client: Client,
    base_url: str,
    api_key: str,
    msgs: list[dict],
    *,
    strict: bool = True,
    policy: RetryPolicy = NO_RETRY,
) -> Outcome:
    return send_messages_as_batch(PipelinesRoute(base_url, api_key, strict=strict), client, msgs, policy=policy)


# ---------------------------------------------------------------------------
# The route's registry entry
# ---------------------------------------------------------------------------


def _key_format(value: str) -> FormatHint:
    region = pipelines_key_region(value)
    if region:
        return FormatHint(
            True, f"looks right (a {value[:2]}_{region}_ key for the {region.upper()} region)", region=region
        )
    if re.match(r"^[A-Za-z0-9]+$", value) and len(value) >= 16:
        return FormatHint(True, "looks like a legacy Pipelines key (no region prefix)")
    return FormatHint(False, f"is {len(value)} characters and has no pk_us_/pk_eu_/sk_us_/sk_eu_ prefix")


API_KEY = CredentialSpec(
    "customerio.pipelines_api_key",
    "Customer.io Pipelines API key",
    "CUSTOMERIO_PIPELINES_API_KEY",
    sandbox_option="pipelines_api_key",
    check_format=_key_format,
)


def _build(base_url: str, credentials: Mapping[str, str], batch_size: int, strict: bool) -> PipelinesRoute:
    return PipelinesRoute(base_url, credentials[API_KEY.field], batch_size=batch_size, strict=strict)


def _send_one(send: SendOne, msg: dict[str, Any]) -> Outcome:
    return send_message(
        send.client,
        send.base_url,
        send.credentials[API_KEY.field],
        msg,
        strict=True,
        policy=send.policy,
        deadline=send.deadline,
    )


SPEC = register(
    RouteSpec(
        name=NAME,
        title="Customer.io Pipelines API",
        credentials=(API_KEY,),
        service="pipelines",
        build=_build,
        send_one=_send_one,
        capabilities=Capabilities(batching=True, strict_mode=True, email_only_identity=True),
        send_test=SendTestText(
            accepted="{status} accepted by the Pipelines API (strict mode)",
            rejected_fix="check customerio.pipelines_api_key and its region",
            rejected_cause=(
                "pipelines.key.rejected",
                "the Pipelines API rejected the key in strict mode ({status})",
            ),
        ),
    )
)

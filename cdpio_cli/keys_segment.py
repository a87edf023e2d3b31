"""check-keys' Segment checks: the write key through the settings lookup
(is the Customer.io destination enabled on the source), and with a Public API
token the source, its workspace and its connected Customer.io destination.
Facts and public sources: docs/contracts.md ("Segment")."""

from __future__ import annotations

from cdpio_cli import credentials as creds
from cdpio_cli.errors import FailureKind
from cdpio_cli.keys import DESTINATION_NAMES, Answer, ServiceHttp, _unreachable, dig
from cdpio_cli.results import Check, Status, Tier
from cdpio_cli.settings import Settings


def check_segment(settings: Settings, http: ServiceHttp) -> list[Check]:
    """The write key through the settings lookup; with a token, the Public API checks."""
    key = settings.segment.write_key
    if not key:
        return [
            Check(
                id="segment.write_key",
                route="segment",
                tier=Tier.AUTHENTICATED,
                status=Status.SKIPPED,
                message="no Segment write key configured",
            )
        ]
    token = settings.segment.public_api_token
    answer = http.call("GET", f"{settings.endpoint('segment_cdn')}/v1/projects/{key}/settings")
    lookup = _settings_lookup_check(answer, has_token=bool(token))
    checks = [lookup] if lookup else []
    if token:
        checks.extend(_check_public_api(settings, http, key, token))
    elif answer.status == 200:
        checks.append(
            Check(
                id="segment.destination",
                route="segment",
                tier=Tier.AUTHENTICATED,
                status=Status.SKIPPED,
                message="cannot see whether the Customer.io destination is connected without a Public API token",
                hint="set segment.public_api_token, or run `cdpio send-test --verify`",
            )
        )
    return checks


def _settings_lookup_check(answer: Answer, *, has_token: bool) -> Check | None:
    """`segment.write_key` from the settings lookup's answer (None: it failed
    and the Public API token will say more)."""
    if answer.status == 200 and not answer.error:
        integrations = dig(answer.body, "integrations")
        integrations = integrations if isinstance(integrations, dict) else {}
        has_cio = any(name in integrations for name in DESTINATION_NAMES)
        # The answer names the source's API host: the Segment region it belongs to.
        segment_io = integrations.get("Segment.io")
        api_host = segment_io.get("apiHost") if isinstance(segment_io, dict) else None
        return Check(
            id="segment.write_key",
            route="segment",
            tier=Tier.AUTHENTICATED,
            status=Status.PASSED,
            message="Segment's settings lookup knows this write key (unofficial endpoint)"
            + ("; it lists a Customer.io destination" if has_cio else ""),
            http_status=200,
            duration_ms=answer.ms,
            details={"api_host": api_host if isinstance(api_host, str) else None, "lists_destination": has_cio},
        )
    if answer.status == 404:
        return Check(
            id="segment.write_key",
            route="segment",
            tier=Tier.AUTHENTICATED,
            status=Status.FAILED,
            message="Segment's settings lookup does not know this write key (unofficial endpoint). "
            "The Tracking API would still answer 200 and drop every event",
            http_status=404,
            duration_ms=answer.ms,
            failure=FailureKind.CREDENTIAL,
            hint="copy the write key again from your source's Settings > API Keys; "
            "`cdpio send-test --verify` proves delivery end to end",
        )
    if has_token:
        return None
    reason = answer.error or f"it answered {answer.status}"
    return Check(
        id="segment.write_key",
        route="segment",
        tier=Tier.AUTHENTICATED,
        status=Status.SKIPPED,
        message=f"format only: Segment's Tracking API accepts any write key, and the settings "
        f"lookup could not be used ({reason})",
        http_status=answer.status,
        duration_ms=answer.ms,
        hint="set segment.public_api_token, or run `cdpio send-test --verify`",
    )


def _check_public_api(settings: Settings, http: ServiceHttp, write_key: str, token: str) -> list[Check]:
    """The token (which workspace), the source that owns the write key, and
    that source's Customer.io destination; each step only when the one before held."""
    base = settings.endpoint("segment_api")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.segment.v1+json"}
    answer = http.call("GET", f"{base}/", headers=headers)
    if answer.status in (401, 403):
        return [_token_rejected(settings, answer)]
    if answer.status != 200 or answer.error:
        return [_unreachable("segment.public_api_token", "segment", answer, "the Segment Public API")]
    workspace = dig(answer.body, "data", "workspace")
    workspace = workspace if isinstance(workspace, dict) else {}
    checks = [
        Check(
            id="segment.public_api_token",
            route="segment",
            tier=Tier.AUTHENTICATED,
            status=Status.PASSED,
            message=f"Public API token accepted (workspace {workspace.get('name') or workspace.get('slug')})",
            http_status=200,
            duration_ms=answer.ms,
        )
    ]
    sources = http.call("GET", f"{base}/sources", headers=headers, params={"pagination.count": 200})
    if sources.status != 200 or sources.error:
        checks.append(_unreachable("segment.source", "segment", sources, "the Segment Public API sources list"))
        return checks
    source_list = dig(sources.body, "data", "sources")
    source_list = [s for s in source_list if isinstance(s, dict)] if isinstance(source_list, list) else []
    source = next(
        (s for s in source_list if isinstance(s.get("writeKeys"), list) and write_key in s["writeKeys"]), None
    )
    if source is None:
        checks.append(_no_source(source_list, workspace, sources))
        return checks
    name = source.get("name") or source.get("slug") or source.get("id")
    enabled = source.get("enabled", True)
    checks.append(
        Check(
            id="segment.source",
            route="segment",
            tier=Tier.AUTHENTICATED,
            status=Status.PASSED if enabled else Status.FAILED,
            message=f"the write key belongs to source {name!r}" + ("" if enabled else ", which is disabled"),
            http_status=200,
            duration_ms=sources.ms,
            hint=None if enabled else "enable the source in Segment",
        )
    )
    dests = http.call("GET", f"{base}/sources/{source.get('id')}/connected-destinations", headers=headers)
    if dests.status != 200 or dests.error:
        checks.append(_unreachable("segment.destination", "segment", dests, "the Segment Public API"))
        return checks
    checks.append(_destination_check(settings, dests, name))
    return checks


def _token_rejected(settings: Settings, answer: Answer) -> Check:
    region = settings.config.segment.region
    other = "eu" if region == "us" else "us"
    return Check(
        id="segment.public_api_token",
        route="segment",
        tier=Tier.AUTHENTICATED,
        status=Status.FAILED,
        message=f"Segment Public API rejected the token ({answer.status}) on the {region.upper()} host",
        http_status=answer.status,
        duration_ms=answer.ms,
        failure=FailureKind.CREDENTIAL,
        hint="create a token under Settings > Workspace settings > Access Management > Tokens; "
        f"if your Segment workspace is in the {other.upper()} region, set segment.region: {other}",
    )


def _no_source(source_list: list[dict], workspace: dict, sources: Answer) -> Check:
    """No source lists the write key: the token cannot see write keys, or the key is another workspace's."""
    if source_list and not any(s.get("writeKeys") for s in source_list):
        return Check(
            id="segment.source",
            route="segment",
            tier=Tier.AUTHENTICATED,
            status=Status.WARNING,
            message="the token cannot read write keys (it needs source admin permission)",
            http_status=200,
            duration_ms=sources.ms,
        )
    return Check(
        id="segment.source",
        route="segment",
        tier=Tier.AUTHENTICATED,
        status=Status.FAILED,
        message=f"no source in workspace {workspace.get('slug')} has this write key",
        http_status=200,
        duration_ms=sources.ms,
        failure=FailureKind.CREDENTIAL,
        hint="the write key may belong to another workspace or a deleted source",
    )


def _destination_check(settings: Settings, dests: Answer, name: object) -> Check:
    """Is a Customer.io destination connected to the source, and enabled?"""
    dest_list = dig(dests.body, "data", "destinations")
    dest_list = [d for d in dest_list if isinstance(d, dict)] if isinstance(dest_list, list) else []
    cio = [d for d in dest_list if str(dig(d, "metadata", "name") or d.get("name") or "").startswith("Customer.io")]
    enabled = [d for d in cio if d.get("enabled")]
    if not enabled:
        return Check(
            id="segment.destination",
            route="segment",
            tier=Tier.AUTHENTICATED,
            status=Status.FAILED,
            message=f"source {name!r} has {'a disabled' if cio else 'no'} Customer.io destination: "
            "events will be accepted by Segment and never reach Customer.io",
            http_status=200,
            duration_ms=dests.ms,
            failure=FailureKind.CHECK,
            hint="connect the Customer.io (Actions) destination to this source and enable it",
        )
    # The siteId is not secret (the Public API masks only the apiKey).
    site_id = (enabled[0].get("settings") or {}).get("siteId")
    return Check(
        id="segment.destination",
        route="segment",
        tier=Tier.AUTHENTICATED,
        status=Status.PASSED,
        message=f"source {name!r} has an enabled Customer.io destination",
        http_status=200,
        duration_ms=dests.ms,
        details={"site_id": creds.mask(site_id), "site_id_matches": site_id == settings.customerio.site_id}
        if isinstance(site_id, str) and site_id
        else {},
    )

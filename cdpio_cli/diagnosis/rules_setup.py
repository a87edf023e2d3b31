"""Cause rules about the setup: services, credentials, regions, and the Segment destination.

Each rule returns the cause its facts point at, or None when the facts rule it
out (so a ruled-out cause is never printed).  Registered with `@rule`, in the
order of this file; verdict.causes asks them all.
"""

from __future__ import annotations

from cdpio_cli.diagnosis.evidence import DIRECT, LIKELY, POSSIBLE, SERVICE, Cause, Evidence, Rule, make_cause, registry
from cdpio_cli.diagnosis.routes import PIPELINES, SEGMENT, TRACK, asks_about
from cdpio_cli.results import Check

RULES: list[Rule] = []  # in the order of this file
rule = registry(RULES)

SANDBOX_FIX = "is the sandbox still running? (`cdpio sandbox`)"


# --- services ---------------------------------------------------------------


@rule
def _service(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    if check is None:
        return None
    for fact_id, cause_id, text, fix in (
        ("service.refused_loopback", "sandbox.not_running", "the local sandbox is not running", SANDBOX_FIX),
        (
            "service.unreachable",
            "service.unreachable",
            "a service could not be reached",
            (
                "check your network, proxy and any endpoint override in cdpio.yaml; status pages: "
                "status.customer.io, status.segment.com"
            ),
        ),
        (
            "service.timed_out",
            "service.slow",
            ("a service answered too slowly (the request may still have arrived)"),
            (
                "retry; raise verify.timeout if the service is only slow; check status.customer.io and "
                "status.segment.com"
            ),
        ),
        (
            "service.error_5xx",
            "service.error_5xx",
            "a service failed with a server error, even after retries",
            (
                "retry later: this is the service's fault, not your setup's; see status.customer.io and "
                "status.segment.com"
            ),
        ),
        (
            "service.rate_limited",
            "service.rate_limited",
            ("a service refused with 429 (rate limit), even after retries"),
            "wait and retry; lower the request rate (replay --rate) or spread the runs out",
        ),
    ):
        fact = ev.get(f"{fact_id}#{check.id}")
        if fact is not None:
            return make_cause(cause_id, fact, text, fix, SERVICE)
    return None


# --- Customer.io --------------------------------------------------------------


@rule
def _track_rejected(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get("customerio.track.rejected")
    if fact is None or ev.has(f"{route}.person_arrived"):
        return None
    return make_cause(
        "customerio.track_rejected",
        fact,
        "Customer.io rejected the Track API credentials (a wrong key): the site id or the Track API key is "
        "wrong, from another workspace, or an App API key was used",
        "copy the site id and Track API key as a pair from Customer.io > Account Settings > API Credentials "
        "> Track API Keys into customerio.site_id / customerio.track_api_key",
        DIRECT + 1,
    )


@rule
def _cio_region(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    if not asks_about(route, TRACK):
        return None  # the Pipelines route already uses the detected region
    fact = ev.get("customerio.app.other_region")
    if fact is not None and fact.data.get("detected") is None:
        # No Track credentials said where the workspace is: the App key's region is the evidence.
        region = fact.data["region"]
        return make_cause(
            "customerio.region_mismatch",
            fact,
            f"wrong region: the App API key works only in {region.upper()}",
            f"set customerio.region: {region} (or auto) in cdpio.yaml",
            DIRECT + 1,
            customerio__region=region,
        )
    fact = ev.get("customerio.region.differs")
    if fact is None:
        return None
    detected = fact.data["detected"]
    return make_cause(
        "customerio.region_mismatch",
        fact,
        f"wrong region: the Customer.io workspace is in {detected.upper()}; the App API answers 401 on the "
        "other region's host (this run used the detected region)",
        f"set customerio.region: {detected} (or auto) in cdpio.yaml",
        DIRECT + 1,
        customerio__region=detected,
    )


@rule
def _app_rejected(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get("customerio.app.rejected")
    if fact is None:
        return None
    return make_cause(
        "customerio.app_rejected",
        fact,
        "Customer.io rejected the App API key (a wrong key, or a Track API key used as an App key)",
        "create an App API key under Account Settings > API Credentials > App API Keys and set customerio.app_api_key",
        DIRECT + 1,
    )


@rule
def _app_other_workspace(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get("customerio.app.other_region")
    if fact is not None and fact.data.get("detected") is not None:
        return make_cause(
            "customerio.app_other_workspace",
            fact,
            "the App API key belongs to another workspace (in the other region) than the Track credentials",
            "use an App API key from the same workspace as the Track API key (Account Settings > API Credentials)",
            DIRECT,
        )
    # The direct Track send was accepted with good keys, and the App API cannot see it.
    fact = ev.get("customerio.person_missing")
    if (
        fact is None
        or not asks_about(route, TRACK)
        or not ev.has("customerio.track.ok")
        or ev.has("customerio.region.differs")
    ):
        return None
    return make_cause(
        "customerio.app_other_workspace",
        fact,
        "the App API key and the Track credentials belong to different workspaces: the Track API accepted "
        "the test person, but the App API cannot see it",
        "use an App API key from the same workspace as the Track API key (Account Settings > API Credentials)",
        LIKELY + 1,
    )


@rule
def _pipelines_rejected(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get("pipelines.key.rejected")
    if fact is None or not asks_about(route, PIPELINES):
        return None
    return make_cause(
        "pipelines.key_rejected",
        fact,
        "the Pipelines API rejected the key in strict mode (a wrong key, or one from the other region)",
        "copy the API key of your Customer.io API source (Data & Integrations > Integrations) into "
        "customerio.pipelines_api_key",
        DIRECT + 1,
    )


@rule
def _pipelines_other_workspace(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get("pipelines.person_missing")
    if fact is None or route != PIPELINES or ev.has("pipelines.key.rejected"):
        return None
    return make_cause(
        "pipelines.other_workspace",
        fact,
        "the Pipelines key belongs to another workspace or region than the App API key",
        "copy the Pipelines key of the workspace your App API key reads (Data & Integrations > "
        "Integrations > your Customer.io API source)",
        LIKELY,
    )


# --- Segment ----------------------------------------------------------------


def _segment_arrived(ev: Evidence) -> bool:
    return ev.has("segment.person_arrived")


@rule
def _write_key_unknown(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    if not asks_about(route, SEGMENT) or _segment_arrived(ev):
        return None
    if ev.has("segment.lookup.known", "segment.source.found"):
        return None
    text = (
        "a wrong write key: Segment does not know it. Segment's Tracking API still answers 200 to every "
        "event and then drops them, so nothing ever reaches Customer.io"
    )
    fix = (
        "copy the write key from Segment > Connections > Sources > your source > Settings > API Keys into "
        "segment.write_key"
    )
    for fact_id, strength in (("segment.lookup.unknown", DIRECT + 1), ("segment.source.missing", DIRECT)):
        fact = ev.get(fact_id)
        if fact is not None:
            return make_cause("segment.write_key_unknown", fact, text, fix, strength)
    fact = ev.get("segment.person_missing")
    if fact is None:
        return None
    return make_cause(
        "segment.write_key_unknown",
        fact,
        "the write key may be unknown to Segment (it answers 200 anyway and drops the events; the settings "
        "lookup could not confirm it)",
        fix,
        LIKELY,
    )


@rule
def _segment_region(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    if not asks_about(route, SEGMENT) or _segment_arrived(ev):
        return None
    fact = ev.get("segment.region.differs")
    if fact is not None:
        actual = fact.data["actual"]
        return make_cause(
            "segment.region_mismatch",
            fact,
            f"wrong Segment region: the source belongs to {'an' if actual == 'eu' else 'a'} "
            f"{actual.upper()} Segment workspace, so events "
            f"sent to the {fact.data['configured'].upper()} endpoint are dropped",
            f"set segment.region: {actual} in cdpio.yaml",
            DIRECT + 1,
            segment__region=actual,
        )
    fact = ev.get("segment.person_missing")
    if fact is None or ev.has(
        "segment.lookup.known", "segment.public_api.ok", "segment.lookup.unknown", "segment.source.missing"
    ):
        return None
    return make_cause(
        "segment.region_mismatch",
        fact,
        "the Segment workspace may be in the other region than segment.region (nothing could confirm the region)",
        "check segment.region: it must be the region of your Segment workspace (not of Customer.io)",
        POSSIBLE,
    )


@rule
def _public_api_rejected(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get("segment.public_api.rejected")
    if fact is None or ev.has("segment.region.differs"):
        return None  # the token was asked on the wrong region's host
    return make_cause(
        "segment.public_api_token_rejected",
        fact,
        "the Segment Public API rejected segment.public_api_token",
        "create a Public API token (Settings > Workspace settings > Access Management > Tokens), or remove "
        "segment.public_api_token to skip the source/destination checks",
        DIRECT,
    )


@rule
def _source_disabled(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get("segment.source.disabled")
    if fact is None or _segment_arrived(ev):
        return None
    return make_cause(
        "segment.source_disabled",
        fact,
        "the Segment source is disabled",
        "enable the source in Segment (Connections > Sources > your source > Settings)",
        DIRECT + 1,
    )


@rule
def _destination_not_connected(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    if not asks_about(route, SEGMENT) or _segment_arrived(ev):
        return None
    if ev.has(
        "segment.destination.enabled",
        "segment.lookup.destination",
        "segment.lookup.unknown",
        "segment.source.missing",
        "segment.region.differs",
    ):
        return None
    fix = (
        "in Segment, open the source > Add Destination > Customer.io (Actions), paste the Customer.io site id "
        "and Track API key, and enable it"
    )
    for fact_id, strength, text in (
        ("segment.destination.disabled", DIRECT + 1, "the Customer.io destination is disabled"),
        ("segment.destination.missing", DIRECT + 1, "the destination is not connected"),
        ("segment.lookup.no_destination", DIRECT, "the destination is not connected"),
    ):
        fact = ev.get(fact_id)
        if fact is not None:
            return make_cause(
                "segment.destination_not_connected",
                fact,
                f"{text}: Segment accepts the events with 200 and sends them nowhere",
                fix,
                strength,
            )
    fact = ev.get("segment.person_missing")
    if fact is None:
        return None
    return make_cause(
        "segment.destination_not_connected",
        fact,
        "the destination is not connected: the Customer.io (Actions) destination may not be connected to "
        "this source or may be disabled",
        fix + "; set segment.public_api_token so cdpio can check it",
        LIKELY,
    )


@rule
def _destination_other_workspace(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    if not asks_about(route, SEGMENT) or _segment_arrived(ev):
        return None
    fact = ev.get("segment.destination.site_differs")
    if fact is not None:
        return make_cause(
            "segment.destination_other_workspace",
            fact,
            f"the Customer.io destination writes to another workspace: its site id is "
            f"{fact.data['destination']}, customerio.site_id is {fact.data['configured']}",
            "in Segment, open the Customer.io (Actions) destination > Settings and paste this workspace's "
            "site id and Track API key (or point customerio.* at the workspace it writes to)",
            DIRECT + 1,
        )
    fact = ev.get("segment.person_missing")
    if fact is None or ev.has(
        "segment.destination.enabled",
        "segment.lookup.unknown",
        "segment.source.missing",
        "segment.region.differs",
        "segment.destination.missing",
        "segment.destination.disabled",
        "segment.lookup.no_destination",
    ):
        return None
    return make_cause(
        "segment.destination_other_workspace",
        fact,
        "the destination's Customer.io credentials may point at another workspace",
        "check the site id in the Customer.io (Actions) destination's settings; set "
        "segment.public_api_token so cdpio can compare it",
        POSSIBLE,
    )


@rule
def _destination_drops(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    # What remains when the key, region, destination and its site id all check out.
    fact = ev.get("segment.person_missing")
    if (
        fact is None
        or not asks_about(route, SEGMENT)
        or ev.has(
            "segment.lookup.unknown",
            "segment.source.missing",
            "segment.source.disabled",
            "segment.region.differs",
            "segment.destination.missing",
            "segment.destination.disabled",
            "segment.lookup.no_destination",
            "segment.destination.site_differs",
        )
    ):
        return None
    return make_cause(
        "segment.destination_drops",
        fact,
        "the destination's Track API key may be wrong (the Public API does not show it), or its "
        "subscriptions or filters drop every event",
        "in the Customer.io (Actions) destination, paste this workspace's Track API key and check its "
        "Mappings and Filters; Segment's Delivery Overview shows the destination's errors",
        POSSIBLE,
    )

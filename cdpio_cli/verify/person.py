"""`cdpio verify`: find a person something else sent, with the given traits and events."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cdpio_cli.errors import FailureKind
from cdpio_cli.keys import unreachable_hint
from cdpio_cli.results import Check, Report, Status, Tier
from cdpio_cli.verify.app_api import AppApi
from cdpio_cli.verify.checks import target_check
from cdpio_cli.verify.polling import wait_for
from cdpio_cli.verify.target import ExpectedActivity, Target
from cdpio_cli.verify.values import show

if TYPE_CHECKING:
    from cdpio_cli.campaigns import Expect
    from cdpio_cli.keys import ServiceHttp
    from cdpio_cli.settings import Settings


def prepare_region(settings: Settings, http: ServiceHttp) -> list[Check]:
    """With `customerio.region: auto`, learn the region from the Track API so
    the App API is read on the right host (it answers 401 on the wrong one).

    Returns a warning when the region could not be learned, with the real
    reason: a Track host that gave no answer is not asked again in this run,
    so a later check's "not asked again" must point at a row that says why."""
    from cdpio_cli import keys

    if settings.config.customerio.region != "auto" or settings.detected_region:
        return []
    if not (settings.customerio.site_id and settings.customerio.track_api_key):
        return []
    track = next((c for c in keys.check_track(settings, http) if c.id == "customerio.track"), None)
    if track is None or track.status != Status.FAILED:
        return []
    region = settings.customerio_region().upper()
    hint = (
        unreachable_hint(
            settings.endpoint("track"), "check your network or proxy and retry; status page: status.customer.io"
        )
        if track.failure == FailureKind.UNREACHABLE
        else "set customerio.region (us or eu) to skip region detection, or fix the Track credentials "
        "(`cdpio check-keys`)"
    )
    return [
        Check(
            id="customerio.region",
            route="customerio",
            tier=Tier.AUTHENTICATED,
            status=Status.WARNING,
            message=f"region not detected ({track.message}); reading the App API in the {region} region",
            http_status=track.http_status,
            duration_ms=track.duration_ms,
            hint=hint,
        )
    ]


def run_verify(
    settings: Settings,
    *,
    user_id: str | None = None,
    email: str | None = None,
    traits: dict[str, str] | None = None,
    events: list[str] | None = None,
    within: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Find a person in Customer.io with the given traits and events; returns a Report.

    `within` None means verify.timeout."""
    from cdpio_cli import campaigns

    _require_one_person(settings, user_id, email)
    timeout = settings.config.verify.timeout if within is None else within
    report = Report("verify", run_id=settings.run_id)
    expect = campaigns.expectations(settings)
    looked = _look(
        settings, report, timeout, expect, progress, user_id=user_id, email=email, traits=traits, events=events
    )
    if looked is None:
        return report  # the App API key failed its check
    target, api_calls, tiers = looked
    report.summary.update(
        {
            "user_id": user_id,
            "email": email,
            "customerio_region": settings.customerio_region(),
            "within_seconds": timeout,
            "app_api_polls": api_calls,
        }
    )
    if target.error is not None:
        report.add(target_check(target, check_id="person", route="customerio", timeout=timeout))
        return report
    found_at = target.person_found_at
    if target.person is None or found_at is None:
        report.extend(_not_found_checks(target, timeout))
        return report
    report.add(
        Check(
            id="person",
            route="customerio",
            tier=Tier.DELIVERED,
            status=Status.PASSED,
            message=f"{target.who} found in Customer.io (cio_id {target.person.get('identifiers', {}).get('cio_id')})",
            duration_ms=(found_at - target.sent_at) * 1000.0,
        )
    )
    report.extend(_trait_checks(target, timeout))
    report.extend(_activity_checks(target, timeout))
    if tiers is not None:
        report.extend(tiers.checks)
    elif expect:
        campaigns.skip_tiers(report, "customerio", expect, "not checked: the person is not complete in Customer.io")
    return report


def _require_one_person(settings: Settings, user_id: str | None, email: str | None) -> None:
    from cdpio_cli.errors import UsageError

    if (user_id is None) == (email is None):
        raise UsageError("give exactly one of --user-id or --email")
    if not settings.customerio.app_api_key:
        raise UsageError(
            "verify needs customerio.app_api_key to read people from Customer.io",
            hint="set customerio.app_api_key (Account Settings > API Credentials > App API Keys)",
        )


def _look(
    settings: Settings,
    report: Report,
    timeout: float,
    expect: Expect,
    progress: Callable[[str], None] | None,
    *,
    user_id: str | None,
    email: str | None,
    traits: dict[str, str] | None,
    events: list[str] | None,
) -> tuple[Target, int, Report | None] | None:
    """Poll the App API for the person (and then its segments and campaigns):
    the polled target, the number of App API reads, and the tiers' checks (None
    when the person is not complete or nothing is expected of them).  None when
    the App API key failed its check (its checks are on `report`)."""
    from cdpio_cli import keys

    # The segmented and triggered tiers (send_test.expect) wait again after delivery.
    http = keys.ServiceHttp.for_settings(settings, timeout, waits=2 if expect else 1)
    try:
        if progress:
            progress("finding the Customer.io region")
        report.extend(prepare_region(settings, http))
        app = keys.check_app(settings, http)
        if any(c.status == Status.FAILED for c in app):
            report.extend(app)
            return None
        target = Target(
            "person",
            user_id=user_id,
            email=email,
            traits=dict(traits or {}),
            activities=[ExpectedActivity("event", name, f'event "{name}"') for name in (events or [])],
        )
        app_api_key = settings.customerio.app_api_key
        assert app_api_key, "run_verify refuses to start without an App API key"
        api = AppApi(http, settings.endpoint("app"), app_api_key)
        wait_for(api, [target], timeout=timeout, poll_interval=settings.config.verify.poll_interval, progress=progress)
        tiers = None
        if expect and target.done and target.person is not None:
            tiers = Report("verify")
            _campaign_tiers(tiers, api, target.person["_ref"], target, expect, settings, timeout, progress)
    finally:
        http.close()
    return target, api.calls, tiers


def _not_found_checks(target: Target, timeout: float) -> list[Check]:
    """No person: the person check fails, and the traits and events are not looked at."""
    person = Check(
        id="person",
        route="customerio",
        tier=Tier.DELIVERED,
        status=Status.FAILED,
        message=f"no person with {target.who.replace('user ', 'id ')} in Customer.io within {timeout:g}s",
        hint="check the id or email, the region, and that your app sends identify "
        "(events sent only with an anonymousId stay on an anonymous profile)",
    )
    skipped = [
        Check(
            id=f"trait {key}",
            route="customerio",
            tier=Tier.DELIVERED,
            status=Status.SKIPPED,
            message="person not found",
        )
        for key in target.traits
    ]
    skipped += [
        Check(id=e.label, route="customerio", tier=Tier.DELIVERED, status=Status.SKIPPED, message="person not found")
        for e in target.activities
    ]
    return [person, *skipped]


def _trait_checks(target: Target, timeout: float) -> list[Check]:
    mismatches = target.trait_mismatches()
    checks = []
    for key, expected in target.traits.items():
        if key not in mismatches:
            checks.append(
                Check(
                    id=f"trait {key}",
                    route="customerio",
                    tier=Tier.DELIVERED,
                    status=Status.PASSED,
                    message=f"{key} = {show(target.attributes().get(key))}",
                )
            )
            continue
        actual = mismatches[key][1]
        text = (
            f"trait {key} is missing" if actual is None else f"trait {key} is {show(actual)}, expected {show(expected)}"
        )
        if key in target.failed_attributes:
            text += " (Customer.io logged an Attribute Update Failure for it)"
        checks.append(
            Check(
                id=f"trait {key}",
                route="customerio",
                tier=Tier.DELIVERED,
                status=Status.FAILED,
                message=text + f" after {timeout:g}s",
                hint="the app never sent this trait in an identify, or sent another value",
            )
        )
    return checks


def _activity_checks(target: Target, timeout: float) -> list[Check]:
    checks = []
    for expected in target.activities:
        if expected.found_at is None:
            checks.append(
                Check(
                    id=expected.label,
                    route="customerio",
                    tier=Tier.DELIVERED,
                    status=Status.FAILED,
                    message=f"{expected.label} is not in the person's activities after {timeout:g}s",
                    hint="check the event name (case and spaces matter) and that the event "
                    "was sent with this person's userId",
                )
            )
        else:
            checks.append(
                Check(
                    id=expected.label,
                    route="customerio",
                    tier=Tier.DELIVERED,
                    status=Status.PASSED,
                    message=f"{expected.label} found in the person's activities",
                    duration_ms=(expected.found_at - target.sent_at) * 1000.0,
                )
            )
    return checks


def _campaign_tiers(
    report: Report,
    api: AppApi,
    ref: tuple[str, str],
    target: Target,
    expect: Expect,
    settings: Settings,
    timeout: float,
    progress: Callable[[str], None] | None,
) -> None:
    """`cdpio verify`: the segmented and triggered tiers for a person something
    else sent (any message of the campaign counts: there is no run to date it)."""
    from cdpio_cli import campaigns, diagnosis

    evidence = diagnosis.Evidence()
    campaigns.run_tiers(
        report,
        api,
        route="customerio",
        ref=ref,
        since=None,
        attributes=target.attributes(),
        sent_events=[a.name for a in target.activities if a.type == "event"],
        expect=expect,
        settings=settings,
        evidence=evidence,
        timeout=timeout,
        poll_interval=settings.config.verify.poll_interval,
        progress=progress,
    )
    diagnosis.explain_failures(report.checks, evidence, sentence_for=[c.id for c in report.checks])

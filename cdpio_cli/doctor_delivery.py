"""doctor's delivery links: the test events reached Customer.io, the traits
are there, and the user's own person (--user-id/--email) looks right; plus
the context every link shares (doctor.py runs the chain)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdpio_cli import diagnosis
from cdpio_cli.errors import UsageError
from cdpio_cli.results import Check, Report, Status, Tier
from cdpio_cli.settings import Settings
from cdpio_cli.verify import AppApi, AppApiError, ExpectedActivity, Target, app_error_hint, found_text, show, wait_for


@dataclass
class PersonQuery:
    """A person the user's app sent, to diagnose after the chain passes."""

    user_id: str | None = None
    email: str | None = None
    traits: dict[str, str | None] = field(default_factory=dict)  # None: any value
    events: list[str] = field(default_factory=list)


@dataclass
class DoctorContext:
    settings: Settings
    http: Any
    report: Report
    progress: Callable[[str], None] | None
    person: PersonQuery | None
    api: AppApi | None = None
    targets: dict[str, Target] = field(default_factory=dict)
    timeout: float = 90.0
    verbose: bool = False
    evidence: diagnosis.Evidence = field(default_factory=diagnosis.Evidence)
    # The destination's subscriptions (config or Public API; None: its defaults).
    subscriptions: list | None = None

    def say(self, text: str) -> None:
        if self.progress:
            self.progress(text)


def _poll(ctx: DoctorContext) -> None:
    if ctx.api is not None:
        return
    s = ctx.settings
    ctx.api = AppApi(ctx.http, s.endpoint("app"), _app_key(ctx))
    ctx.say("waiting for the test events in Customer.io")
    wait_for(
        ctx.api,
        list(ctx.targets.values()),
        timeout=ctx.timeout,
        poll_interval=s.config.verify.poll_interval,
        progress=ctx.progress,
    )


def _app_key(ctx: DoctorContext) -> str:
    """The App API key of a link that reads Customer.io (those links run only with one: _no_app_key)."""
    key = ctx.settings.customerio.app_api_key
    if not key:
        raise UsageError("reading Customer.io needs customerio.app_api_key")
    return key


def _no_app_key(ctx: DoctorContext) -> bool:
    return not ctx.settings.customerio.app_api_key


def link_delivered(ctx: DoctorContext) -> list[Check]:
    if _no_app_key(ctx):
        return [
            Check(
                id="delivered",
                route="customerio",
                tier=Tier.DELIVERED,
                status=Status.SKIPPED,
                message="delivery not checked: without an App API key cdpio cannot look in Customer.io, and "
                "a 200 from Segment is not proof of delivery",
                hint="set customerio.app_api_key to let doctor check delivery and traits",
            )
        ]
    if not ctx.targets:
        return []
    _poll(ctx)
    for route, target in ctx.targets.items():
        diagnosis.learn_target(ctx.evidence, route, target)
    direct = ctx.targets.get("customerio")
    segment = ctx.targets.get("segment")
    out: list[Check] = []
    if direct is not None:
        check = _direct_delivered(ctx, direct)
        if check.status != Status.PASSED:
            return [check]
        out.append(check)
    if segment is not None:
        out.append(_segment_delivered(ctx, segment, direct))
    return out


def _direct_delivered(ctx: DoctorContext, direct: Target) -> Check:
    """Is the person the Track API accepted visible through the App API?"""
    if direct.error is not None:
        return _app_error_check(direct.error)
    if direct.nothing_arrived:
        return Check(
            id="customerio.delivered",
            route="customerio",
            tier=Tier.DELIVERED,
            status=Status.FAILED,
            message=f"the Track API accepted a test person, but the App API cannot see it within {ctx.timeout:g}s",
        )
    return Check(
        id="customerio.delivered",
        route="customerio",
        tier=Tier.DELIVERED,
        status=Status.PASSED,
        message=f"a direct Track API send is visible in Customer.io "
        f"({direct.seconds_to_delivery() or 0:.1f}s)" + _found(ctx, direct),
    )


def _segment_delivered(ctx: DoctorContext, segment: Target, direct: Target | None) -> Check:
    """Did Segment's test person and events reach Customer.io?"""
    if segment.error is not None:
        return _app_error_check(segment.error)
    if segment.nothing_arrived:
        both = (
            " The direct Track send did arrive, so Customer.io and the App API key are fine: the break "
            "is between Segment and Customer.io"
            if direct is not None and direct.person is not None
            else ""
        )
        return Check(
            id="segment.delivered",
            route="segment",
            tier=Tier.DELIVERED,
            status=Status.FAILED,
            message=f"Segment accepted the events (200) but none reached Customer.io within {ctx.timeout:g}s.{both}",
        )
    missing_events = [a for a in segment.activities if a.found_at is None]
    if missing_events:
        return Check(
            id="segment.delivered",
            route="segment",
            tier=Tier.DELIVERED,
            status=Status.FAILED,
            message=f"the test person arrived from Segment but {missing_events[0].label} did not within "
            f"{ctx.timeout:g}s",
        )
    for check in ctx.report.checks:
        if check.route == "segment" and check.tier == Tier.ACCEPTED and check.status == Status.PASSED:
            check.message = f"{check.http_status} accepted by Segment; delivery verified below" + (
                sendtest_detail(check) if ctx.verbose else ""
            )
    return Check(
        id="segment.delivered",
        route="segment",
        tier=Tier.DELIVERED,
        status=Status.PASSED,
        message=f"Segment events reached Customer.io ({segment.seconds_to_delivery() or 0:.1f}s after "
        "sending)" + _found(ctx, segment),
    )


def sendtest_detail(check: Check) -> str:
    from cdpio_cli.sendtest import sent_detail

    return sent_detail(check.details)


def _found(ctx: DoctorContext, target: Target) -> str:
    """--verbose: which traits and events of this run were found."""
    text = found_text(target) if ctx.verbose else ""
    return f" (found: {text})" if text else ""


def _app_error_check(err: AppApiError) -> Check:
    return Check(
        id="delivered",
        route="customerio",
        tier=Tier.DELIVERED,
        status=Status.FAILED,
        message=f"cannot read Customer.io: {err.message}",
        http_status=err.status,
        failure=err.failure,
        hint="Fix: " + app_error_hint(err, "check customerio.app_api_key and customerio.region (`cdpio check-keys`)"),
    )


def link_traits(ctx: DoctorContext) -> list[Check]:
    if _no_app_key(ctx):
        return []
    target = ctx.targets.get("segment") or ctx.targets.get("customerio")
    if target is None or target.person is None:
        return []
    wrong = target.trait_mismatches()
    if wrong:
        listed = ", ".join(
            f"{k} (expected {show(e)}, {'missing' if a is None else 'has ' + show(a)})" for k, (e, a) in wrong.items()
        )
        failed = (
            f"; Customer.io logged an Attribute Update Failure for {', '.join(target.failed_attributes)}"
            if target.failed_attributes
            else ""
        )
        return [
            Check(
                id="traits",
                route=target.key,
                tier=Tier.DELIVERED,
                status=Status.FAILED,
                message=f"the test person arrived without its traits: {listed}{failed}",
            )
        ]
    return [
        Check(
            id="traits",
            route=target.key,
            tier=Tier.DELIVERED,
            status=Status.PASSED,
            message=f"the test person has all {len(target.traits)} traits sent ({', '.join(sorted(target.traits))})",
        )
    ]


def link_person(ctx: DoctorContext) -> list[Check]:
    """The user's own person: exists, traits sent, events identified."""
    q = ctx.person
    if q is None or _no_app_key(ctx):
        return []
    ctx.say("looking for your person in Customer.io")
    api = ctx.api or AppApi(ctx.http, ctx.settings.endpoint("app"), _app_key(ctx))
    target = Target(
        "person",
        user_id=q.user_id,
        email=q.email,
        traits={k: v for k, v in q.traits.items() if v is not None},
        activities=[ExpectedActivity("event", name, f'event "{name}"') for name in q.events],
    )
    wait_for(
        api,
        [target],
        timeout=ctx.timeout,
        poll_interval=ctx.settings.config.verify.poll_interval,
        progress=ctx.progress,
    )
    if target.error is not None:
        return [_app_error_check(target.error)]
    who = target.who
    if target.person is None:
        return [_no_person(who)]
    checks = [
        Check(
            id="person",
            route="customerio",
            tier=Tier.DELIVERED,
            status=Status.PASSED,
            message=f"{who} is in Customer.io",
        )
    ]
    traits = _person_traits(q, target)
    if traits is not None:
        checks.append(traits)
        if traits.status == Status.FAILED:
            return checks
    events = _person_events(q, target)
    if events is not None:
        checks.append(events)
    return checks


def _no_person(who: str) -> Check:
    anon = (
        " If your app sends events with only an anonymousId (before login) and never calls identify "
        "with this userId and that anonymousId, they stay on an anonymous profile (anonymous events "
        "never identified)."
    )
    return Check(
        id="person",
        route="customerio",
        tier=Tier.DELIVERED,
        status=Status.FAILED,
        message=f"no person with {who.replace('user ', 'id ')} in Customer.io.{anon}",
        hint="Fix: call identify(userId, traits) when the user signs up or logs in, with the "
        "same anonymousId the earlier events carried; check the id's case and spaces",
    )


def _person_traits(q: PersonQuery, target: Target) -> Check | None:
    """`person.traits`: the asked traits are there with the asked values (None: none asked)."""
    who = target.who
    attrs = target.attributes()
    absent = [k for k, v in q.traits.items() if v is None and attrs.get(k) is None]
    wrong = target.trait_mismatches()
    if absent or wrong:
        parts = [f"{k} missing" for k in absent]
        parts += [
            f"{k} {'missing' if a is None else 'is ' + show(a)}" + ("" if a is None else f", expected {show(e)}")
            for k, (e, a) in wrong.items()
        ]
        return Check(
            id="person.traits",
            route="customerio",
            tier=Tier.DELIVERED,
            status=Status.FAILED,
            message=f"{who} exists but lacks the traits: {'; '.join(parts)}. Traits never sent: "
            "the app tracks events for this person but does not send these traits in an "
            "identify call.",
            hint="Fix: call identify(userId, {" + ", ".join(f"{k}: ..." for k in [*absent, *wrong]) + "}) "
            "whenever these values are set or change",
        )
    if q.traits:
        return Check(
            id="person.traits",
            route="customerio",
            tier=Tier.DELIVERED,
            status=Status.PASSED,
            message=f"{who} has {', '.join(q.traits)}",
        )
    return None


def _person_events(q: PersonQuery, target: Target) -> Check | None:
    """`person.events`: the asked events are in the person's activities (None: none asked)."""
    who = target.who
    missing = [a for a in target.activities if a.found_at is None]
    if missing:
        return Check(
            id="person.events",
            route="customerio",
            tier=Tier.DELIVERED,
            status=Status.FAILED,
            message=f"{who} exists but {', '.join(a.label for a in missing)} is not in its activities. "
            "If the app sent it before identify with only an anonymousId, it was never linked "
            "to this person (anonymous events never identified); or the name differs.",
            hint="Fix: send identify with the userId and the same anonymousId, and track "
            "with the userId once known; check the event name's exact spelling",
        )
    if q.events:
        return Check(
            id="person.events",
            route="customerio",
            tier=Tier.DELIVERED,
            status=Status.PASSED,
            message=f"{who} has {', '.join(a.label for a in target.activities)}",
        )
    return None

"""doctor: walk the Segment -> Customer.io chain link by link; stop at the
first broken one and explain the cause and the fix in plain words.

Links, in order: config found; credentials cleaned; Track credentials
authenticated; region right; App API key; Pipelines key; Segment write key
(settings lookup) and, with a Public API token, its source and connected
Customer.io destination; a direct Track send accepted; a Segment send
accepted; delivered to Customer.io (App API); traits present.  With
`--user-id`/`--email` it then checks a person your own app sent (exists,
traits sent, events identified).

The checks themselves are check-keys' and send-test's (keys.py, sendtest.py,
verify.py); doctor orders them and turns a failure into an explanation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdpio_cli import diagnosis, keys
from cdpio_cli.errors import UsageError
from cdpio_cli.results import (
    FAILED,
    FAILURE_CREDENTIAL,
    FAILURE_USAGE,
    PASSED,
    SKIPPED,
    WARNING,
    Check,
    Report,
)
from cdpio_cli.routes import registry
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
class _Ctx:
    settings: Settings
    http: Any
    report: Report
    progress: Callable[[str], None] | None
    person: PersonQuery | None
    api: AppApi | None = None
    targets: dict[str, Target] = field(default_factory=dict)
    sent_routes: list[str] = field(default_factory=list)
    timeout: float = 90.0
    verbose: bool = False
    evidence: diagnosis.Evidence = field(default_factory=diagnosis.Evidence)
    # The destination's subscriptions (config or Public API; None: its defaults).
    subscriptions: list | None = None

    def say(self, text: str) -> None:
        if self.progress:
            self.progress(text)


# ---------------------------------------------------------------------------
# Explanation: the broken link's causes come from diagnosis.py, from the facts
# every link before it (and the link itself) established.
# ---------------------------------------------------------------------------


def explain(check: Check, ctx: _Ctx) -> None:
    """Rewrite a failed check's message and hint as cause + fix."""
    route = check.route if check.route in registry.route_names() else "doctor"
    found = diagnosis.diagnose(ctx.evidence, check, route=route, fix_prefix="Fix: ")
    if found:
        check.message = check.message.rstrip(". ") + ". " + diagnosis.cause_sentence(found, check.message)


# ---------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------


def link_config(ctx: _Ctx) -> list[Check]:
    s = ctx.settings
    if s.config_path:
        where = f"found {s.config_path}"
    else:
        where = "no config file (cdpio.yaml)"
    if s.using_sandbox:
        target = "the embedded sandbox" if s.embedded is not None else f"the sandbox at {s.sandbox_url}"
        where += f"; checking against {target}, not your real accounts"
    return [Check("config", "config", "format", PASSED, where)]


def link_credentials(ctx: _Ctx) -> list[Check]:
    s = ctx.settings
    fixes = [f"{c.field}: {'; '.join(c.fixes)}" for c in s.credentials.values() if c.fixes]
    problems = [f"{c.field}: {'; '.join(c.problems)}" for c in s.credentials.values() if c.problems]
    configured = [c for c in s.credentials.values() if c.configured]
    if not configured:
        # A config problem: exit 2, as check-keys and send-test say for the same thing.
        return [
            Check(
                "credentials",
                "config",
                "format",
                FAILED,
                "no credential is configured",
                hint="Fix: run `cdpio init` and export the env vars it names",
                failure=FAILURE_USAGE,
            )
        ]
    if fixes or problems:
        text = "whitespace or quotes around a key: " + "; ".join(fixes + problems)
        text += (
            ". cdpio used the cleaned value, but Segment's destination settings, your app and other "
            "tools get the raw one"
        )
        return [
            Check(
                "credentials",
                "config",
                "format",
                WARNING,
                text,
                hint="Fix: remove the stray characters where the secret is stored (env var, secret manager, .env file)",
            )
        ]
    return [
        Check(
            "credentials",
            "config",
            "format",
            PASSED,
            f"{len(configured)} credential{'s' if len(configured) != 1 else ''} configured, "
            "no stray whitespace, quotes or invisible characters",
        )
    ]


def link_track(ctx: _Ctx) -> list[Check]:
    s = ctx.settings
    if not (s.customerio.site_id and s.customerio.track_api_key):
        return [
            Check(
                "customerio.track",
                "customerio",
                "authenticated",
                SKIPPED,
                "no Track credentials (customerio.site_id, customerio.track_api_key): the region "
                "cannot be detected and the direct Track send is skipped",
            )
        ]
    ctx.say("checking the Customer.io Track credentials and region")
    from cdpio_cli.sendtest import detect_region

    return [
        c
        for c in detect_region(ctx.settings, ctx.http)
        if c.id in ("customerio.track", "customerio.region") or c.status == WARNING
    ]


def link_app(ctx: _Ctx) -> list[Check]:
    ctx.say("checking the App API key")
    return keys.check_app(ctx.settings, ctx.http)


def link_pipelines(ctx: _Ctx) -> list[Check]:
    if not ctx.settings.customerio.pipelines_api_key:
        return []
    return keys.check_pipelines(ctx.settings, ctx.http)


def link_segment(ctx: _Ctx) -> list[Check]:
    if not ctx.settings.segment.write_key:
        return [
            Check(
                "segment.write_key",
                "segment",
                "authenticated",
                SKIPPED,
                "no Segment write key: the Segment links are skipped",
            )
        ]
    ctx.say("checking the Segment write key")
    return diagnosis.segment_region_check(ctx.settings, keys.check_segment(ctx.settings, ctx.http), ctx.evidence)


def _workspace_subscriptions(ctx: _Ctx) -> tuple[list | None, str]:
    """(subscriptions, where from): the config's customerio.subscriptions, else
    the destination's own through the Segment Public API with your token, else
    (None, why they could not be read), or (None, "") with neither."""
    from cdpio_cli import explain

    s = ctx.settings
    listed = explain.configured_subscriptions(s)
    if listed is not None:
        return listed, f"customerio.subscriptions in {s.config_path}"
    token = s.credentials.get("segment.public_api_token")
    if token is None or not token.configured or token.source == "sandbox default":
        return None, ""
    ctx.say("reading the destination's subscriptions")
    return explain.fetch_subscriptions(s, ctx.http)


def link_subscriptions(ctx: _Ctx) -> list[Check]:
    """Do the destination's subscriptions send the test events and the --event names?"""
    from cdpio_cli import sendtest

    if not ctx.settings.segment.write_key:
        return []
    subs, where = _workspace_subscriptions(ctx)
    if subs is None:
        # No list and no token of yours: the defaults, silently, as explain does.
        return (
            [
                Check(
                    "segment.subscriptions",
                    "segment",
                    "mapping",
                    WARNING,
                    f"using the destination's default subscriptions: {where}",
                )
            ]
            if where
            else []
        )
    ctx.subscriptions = subs
    plan = sendtest.build_plan(
        ctx.settings,
        "segment",
        sendtest.SendTestOptions(user_id="cdpio-doctor-{run_id}"),
        several=True,
        subscriptions=subs,
    )
    items = [(i.label, i.msg, "segment.subscriptions") for i in plan.items]
    user = ctx.person.user_id if ctx.person and ctx.person.user_id else "cdpio-doctor"
    for name in ctx.person.events if ctx.person else []:
        items.append((f'track "{name}"', {"type": "track", "event": name, "userId": user}, "segment.subscriptions"))
    diagnosis.learn_subscriptions(ctx.evidence, items, subs)
    facts = [
        f
        for f in (
            ctx.evidence.get("destination.subscription_disabled"),
            ctx.evidence.get("destination.subscription_excludes"),
        )
        if f is not None
    ]
    if facts:
        return [
            Check(
                "segment.subscriptions",
                "segment",
                "mapping",
                FAILED,
                f"the destination's {len(subs)} subscription(s) ({where}) do not send what you test: "
                + "; ".join(f.text for f in facts),
                details={"source": where},
            )
        ]
    return [
        Check(
            "segment.subscriptions",
            "segment",
            "mapping",
            PASSED,
            f"the destination's {len(subs)} subscription(s) ({where}) send every test event"
            + (" and --event" if ctx.person and ctx.person.events else ""),
            details={"source": where},
        )
    ]


def _send_route(ctx: _Ctx, route: str) -> list[Check]:
    from cdpio_cli import sendtest

    s = ctx.settings
    plan = sendtest.build_plan(
        s,
        route,
        sendtest.SendTestOptions(user_id="cdpio-doctor-{run_id}"),
        several=True,
        subscriptions=ctx.subscriptions if registry.get(route).capabilities.destination_subscriptions else None,
    )
    # identify + the first track that maps: enough to prove the link.
    first_track = next((i for i in plan.items if i.msg.get("type") == "track" and i.mapped.ok), None)
    plan.items = [i for i in plan.items if i.label == "identify" or i is first_track]
    diagnosis.learn_plan(ctx.evidence, plan)
    title = registry.get(route).title
    ctx.say(f"sending a test identify and event through {title}")
    checks = []
    for item in plan.items:
        outcome = sendtest.send_one(s, ctx.http, route, item.msg)
        check = sendtest.accepted_check(route, item, outcome, s.config.send_test.expect_status, verbose=ctx.verbose)
        checks.append(check)
        sendtest.learn_sends(ctx.evidence, route, check)
        if check.status == FAILED:
            if check.failure == FAILURE_CREDENTIAL:
                check.message = f"{title} rejected the test {item.label}: {check.message} (a wrong key)"
            else:
                check.message = f"{title} did not accept the test {item.label}: {check.message}"
            return checks
    target = sendtest.target_for(plan)
    target.sent_at = time.monotonic()
    ctx.targets[route] = target
    return checks


def link_track_send(ctx: _Ctx) -> list[Check]:
    s = ctx.settings
    if not (s.customerio.site_id and s.customerio.track_api_key):
        return []
    return _send_route(ctx, "customerio")


def link_segment_send(ctx: _Ctx) -> list[Check]:
    if not ctx.settings.segment.write_key:
        return []
    return _send_route(ctx, "segment")


def _poll(ctx: _Ctx) -> None:
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


def _app_key(ctx: _Ctx) -> str:
    """The App API key of a link that reads Customer.io (those links run only with one: _no_app_key)."""
    key = ctx.settings.customerio.app_api_key
    if not key:
        raise UsageError("reading Customer.io needs customerio.app_api_key")
    return key


def _no_app_key(ctx: _Ctx) -> bool:
    return not ctx.settings.customerio.app_api_key


def link_delivered(ctx: _Ctx) -> list[Check]:
    if _no_app_key(ctx):
        return [
            Check(
                "delivered",
                "customerio",
                "delivered",
                SKIPPED,
                "delivery not checked: without an App API key cdpio cannot look in Customer.io, and "
                "a 200 from Segment is not proof of delivery",
                hint="set customerio.app_api_key to let doctor check delivery and traits",
            )
        ]
    if not ctx.targets:
        return []
    _poll(ctx)
    for route, target in ctx.targets.items():
        diagnosis.learn_target(ctx.evidence, route, target)
    out = []
    direct = ctx.targets.get("customerio")
    segment = ctx.targets.get("segment")
    if direct is not None:
        if direct.error is not None:
            return [_app_error_check(direct.error)]
        if direct.nothing_arrived:
            return [
                Check(
                    "customerio.delivered",
                    "customerio",
                    "delivered",
                    FAILED,
                    f"the Track API accepted a test person, but the App API cannot see it within {ctx.timeout:g}s",
                )
            ]
        out.append(
            Check(
                "customerio.delivered",
                "customerio",
                "delivered",
                PASSED,
                f"a direct Track API send is visible in Customer.io "
                f"({direct.seconds_to_delivery() or 0:.1f}s)" + _found(ctx, direct),
            )
        )
    if segment is not None:
        if segment.error is not None:
            return out + [_app_error_check(segment.error)]
        if segment.nothing_arrived:
            both = (
                " The direct Track send did arrive, so Customer.io and the App API key are fine: the break "
                "is between Segment and Customer.io"
                if direct is not None and direct.person is not None
                else ""
            )
            out.append(
                Check(
                    "segment.delivered",
                    "segment",
                    "delivered",
                    FAILED,
                    f"Segment accepted the events (200) but none reached Customer.io within {ctx.timeout:g}s.{both}",
                )
            )
            return out
        missing_events = [a for a in segment.activities if a.found_at is None]
        if missing_events:
            out.append(
                Check(
                    "segment.delivered",
                    "segment",
                    "delivered",
                    FAILED,
                    f"the test person arrived from Segment but {missing_events[0].label} did not "
                    f"within {ctx.timeout:g}s",
                )
            )
            return out
        for check in ctx.report.checks:
            if check.route == "segment" and check.tier == "accepted" and check.status == PASSED:
                check.message = f"{check.http_status} accepted by Segment; delivery verified below" + (
                    sendtest_detail(check) if ctx.verbose else ""
                )
        out.append(
            Check(
                "segment.delivered",
                "segment",
                "delivered",
                PASSED,
                f"Segment events reached Customer.io ({segment.seconds_to_delivery() or 0:.1f}s after "
                "sending)" + _found(ctx, segment),
            )
        )
    return out


def sendtest_detail(check: Check) -> str:
    from cdpio_cli.sendtest import sent_detail

    return sent_detail(check.details)


def _found(ctx: _Ctx, target: Target) -> str:
    """--verbose: which traits and events of this run were found."""
    text = found_text(target) if ctx.verbose else ""
    return f" (found: {text})" if text else ""


def _app_error_check(err: AppApiError) -> Check:
    return Check(
        "delivered",
        "customerio",
        "delivered",
        FAILED,
        f"cannot read Customer.io: {err.message}",
        http_status=err.status,
        failure=err.failure,
        hint="Fix: " + app_error_hint(err, "check customerio.app_api_key and customerio.region (`cdpio check-keys`)"),
    )


def link_traits(ctx: _Ctx) -> list[Check]:
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
                "traits",
                target.key,
                "delivered",
                FAILED,
                f"the test person arrived without its traits: {listed}{failed}",
            )
        ]
    return [
        Check(
            "traits",
            target.key,
            "delivered",
            PASSED,
            f"the test person has all {len(target.traits)} traits sent ({', '.join(sorted(target.traits))})",
        )
    ]


def link_person(ctx: _Ctx) -> list[Check]:
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
        anon = (
            " If your app sends events with only an anonymousId (before login) and never calls identify "
            "with this userId and that anonymousId, they stay on an anonymous profile (anonymous events "
            "never identified)."
        )
        return [
            Check(
                "person",
                "customerio",
                "delivered",
                FAILED,
                f"no person with {who.replace('user ', 'id ')} in Customer.io.{anon}",
                hint="Fix: call identify(userId, traits) when the user signs up or logs in, with the "
                "same anonymousId the earlier events carried; check the id's case and spaces",
            )
        ]
    checks = [Check("person", "customerio", "delivered", PASSED, f"{who} is in Customer.io")]
    attrs = target.attributes()
    absent = [k for k, v in q.traits.items() if v is None and attrs.get(k) is None]
    wrong = target.trait_mismatches()
    if absent or wrong:
        parts = [f"{k} missing" for k in absent]
        parts += [
            f"{k} {'missing' if a is None else 'is ' + show(a)}" + ("" if a is None else f", expected {show(e)}")
            for k, (e, a) in wrong.items()
        ]
        checks.append(
            Check(
                "person.traits",
                "customerio",
                "delivered",
                FAILED,
                f"{who} exists but lacks the traits: {'; '.join(parts)}. Traits never sent: "
                "the app tracks events for this person but does not send these traits in an "
                "identify call.",
                hint="Fix: call identify(userId, {" + ", ".join(f"{k}: ..." for k in [*absent, *wrong]) + "}) "
                "whenever these values are set or change",
            )
        )
        return checks
    if q.traits:
        checks.append(Check("person.traits", "customerio", "delivered", PASSED, f"{who} has {', '.join(q.traits)}"))
    missing = [a for a in target.activities if a.found_at is None]
    if missing:
        checks.append(
            Check(
                "person.events",
                "customerio",
                "delivered",
                FAILED,
                f"{who} exists but {', '.join(a.label for a in missing)} is not in its activities. "
                "If the app sent it before identify with only an anonymousId, it was never linked "
                "to this person (anonymous events never identified); or the name differs.",
                hint="Fix: send identify with the userId and the same anonymousId, and track "
                "with the userId once known; check the event name's exact spelling",
            )
        )
    elif q.events:
        checks.append(
            Check(
                "person.events",
                "customerio",
                "delivered",
                PASSED,
                f"{who} has {', '.join(a.label for a in target.activities)}",
            )
        )
    return checks


# (name, tier, link).  Order is the chain: a link is only worth checking once
# every link before it holds.
LINKS: list[tuple[str, str, Callable[[_Ctx], list[Check]]]] = [
    ("config found", "format", link_config),
    ("credentials cleaned", "format", link_credentials),
    ("Track credentials and region", "authenticated", link_track),
    ("App API key", "authenticated", link_app),
    ("Pipelines key", "authenticated", link_pipelines),
    ("Segment write key and destination", "authenticated", link_segment),
    ("destination subscriptions", "mapping", link_subscriptions),
    ("a direct Track send accepted", "accepted", link_track_send),
    ("a Segment send accepted", "accepted", link_segment_send),
    ("delivered to Customer.io", "delivered", link_delivered),
    ("traits present", "delivered", link_traits),
    ("your person", "delivered", link_person),
]


def run_doctor(
    settings: Settings,
    *,
    person: PersonQuery | None = None,
    timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
    verbose: bool = False,
) -> Report:
    report = Report("doctor", run_id=settings.run_id)
    timeout = settings.config.verify.timeout if timeout is None else timeout
    # Two delivery waits when a person is looked up too.
    http = keys.ServiceHttp.for_settings(settings, timeout, waits=2 if person else 1)
    ctx = _Ctx(settings, http, report, progress, person, timeout=timeout, verbose=verbose)
    broken: Check | None = None
    try:
        for index, (name, _tier, link) in enumerate(LINKS):
            checks = link(ctx)
            diagnosis.learn_checks(ctx.evidence, checks, settings)
            for check in checks:
                report.add(check)
                if check.status == FAILED and broken is None:
                    broken = check
            if broken is not None:
                explain(broken, ctx)
                # Only the first broken link matters; the rest are listed, not run.
                report.checks = report.checks[: report.checks.index(broken) + 1]
                for later, tier, later_link in LINKS[index + 1 :]:
                    if later_link is link_person and person is None:
                        continue
                    report.add(Check(later, "doctor", tier, SKIPPED, "not checked: fix the broken link above first"))
                report.summary["broken_link"] = {"link": name, "check": broken.id}
                break
    finally:
        http.close()
    report.summary["sandbox"] = settings.using_sandbox
    report.summary["diagnosis"] = diagnosis.summary(ctx.evidence)
    if broken is None:
        report.summary["broken_link"] = None
    return report

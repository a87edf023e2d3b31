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
the verify package); doctor orders them and turns a failure into an explanation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cdpio_cli import diagnosis, keys, keys_segment
from cdpio_cli.doctor_delivery import DoctorContext, PersonQuery, link_delivered, link_person, link_traits
from cdpio_cli.errors import FailureKind
from cdpio_cli.results import Check, Report, Status, Tier
from cdpio_cli.routes import registry
from cdpio_cli.settings import Settings

# ---------------------------------------------------------------------------
# Explanation: the broken link's causes come from the diagnosis package, from the facts
# every link before it (and the link itself) established.
# ---------------------------------------------------------------------------


def explain(check: Check, ctx: DoctorContext) -> None:
    """Rewrite a failed check's message and hint as cause + fix."""
    route = check.route if check.route in registry.route_names() else "doctor"
    found = diagnosis.diagnose(ctx.evidence, check, route=route, fix_prefix="Fix: ")
    if found:
        check.message = check.message.rstrip(". ") + ". " + diagnosis.cause_sentence(found, check.message)


# ---------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------


def link_config(ctx: DoctorContext) -> list[Check]:
    s = ctx.settings
    if s.config_path:
        where = f"found {s.config_path}"
    else:
        where = "no config file (cdpio.yaml)"
    if s.using_sandbox:
        target = "the embedded sandbox" if s.embedded is not None else f"the sandbox at {s.sandbox_url}"
        where += f"; checking against {target}, not your real accounts"
    return [Check(id="config", route="config", tier=Tier.FORMAT, status=Status.PASSED, message=where)]


def link_credentials(ctx: DoctorContext) -> list[Check]:
    s = ctx.settings
    fixes = [f"{c.field}: {'; '.join(c.fixes)}" for c in s.credentials.values() if c.fixes]
    problems = [f"{c.field}: {'; '.join(c.problems)}" for c in s.credentials.values() if c.problems]
    configured = [c for c in s.credentials.values() if c.configured]
    if not configured:
        # A config problem: exit 2, as check-keys and send-test say for the same thing.
        return [
            Check(
                id="credentials",
                route="config",
                tier=Tier.FORMAT,
                status=Status.FAILED,
                message="no credential is configured",
                hint="Fix: run `cdpio init` and export the env vars it names",
                failure=FailureKind.USAGE,
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
                id="credentials",
                route="config",
                tier=Tier.FORMAT,
                status=Status.WARNING,
                message=text,
                hint="Fix: remove the stray characters where the secret is stored (env var, secret manager, .env file)",
            )
        ]
    return [
        Check(
            id="credentials",
            route="config",
            tier=Tier.FORMAT,
            status=Status.PASSED,
            message=f"{len(configured)} credential{'s' if len(configured) != 1 else ''} configured, "
            "no stray whitespace, quotes or invisible characters",
        )
    ]


def link_track(ctx: DoctorContext) -> list[Check]:
    s = ctx.settings
    if not (s.customerio.site_id and s.customerio.track_api_key):
        return [
            Check(
                id="customerio.track",
                route="customerio",
                tier=Tier.AUTHENTICATED,
                status=Status.SKIPPED,
                message="no Track credentials (customerio.site_id, customerio.track_api_key): the region "
                "cannot be detected and the direct Track send is skipped",
            )
        ]
    ctx.say("checking the Customer.io Track credentials and region")
    from cdpio_cli.sendtest import detect_region

    return [
        c
        for c in detect_region(ctx.settings, ctx.http)
        if c.id in ("customerio.track", "customerio.region") or c.status == Status.WARNING
    ]


def link_app(ctx: DoctorContext) -> list[Check]:
    ctx.say("checking the App API key")
    return keys.check_app(ctx.settings, ctx.http)


def link_pipelines(ctx: DoctorContext) -> list[Check]:
    if not ctx.settings.customerio.pipelines_api_key:
        return []
    return keys.check_pipelines(ctx.settings, ctx.http)


def link_segment(ctx: DoctorContext) -> list[Check]:
    if not ctx.settings.segment.write_key:
        return [
            Check(
                id="segment.write_key",
                route="segment",
                tier=Tier.AUTHENTICATED,
                status=Status.SKIPPED,
                message="no Segment write key: the Segment links are skipped",
            )
        ]
    ctx.say("checking the Segment write key")
    return diagnosis.segment_region_check(
        ctx.settings, keys_segment.check_segment(ctx.settings, ctx.http), ctx.evidence
    )


def _workspace_subscriptions(ctx: DoctorContext) -> tuple[list | None, str]:
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


def link_subscriptions(ctx: DoctorContext) -> list[Check]:
    """Do the destination's subscriptions send the test events and the --event names?"""
    if not ctx.settings.segment.write_key:
        return []
    subs, where = _workspace_subscriptions(ctx)
    if subs is None:
        # No list and no token of yours: the defaults, silently, as explain does.
        return (
            [
                Check(
                    id="segment.subscriptions",
                    route="segment",
                    tier=Tier.MAPPING,
                    status=Status.WARNING,
                    message=f"using the destination's default subscriptions: {where}",
                )
            ]
            if where
            else []
        )
    ctx.subscriptions = subs
    diagnosis.learn_subscriptions(ctx.evidence, _subscription_items(ctx, subs), subs)
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
                id="segment.subscriptions",
                route="segment",
                tier=Tier.MAPPING,
                status=Status.FAILED,
                message=f"the destination's {len(subs)} subscription(s) ({where}) do not send what you test: "
                + "; ".join(f.text for f in facts),
                details={"source": where},
            )
        ]
    return [
        Check(
            id="segment.subscriptions",
            route="segment",
            tier=Tier.MAPPING,
            status=Status.PASSED,
            message=f"the destination's {len(subs)} subscription(s) ({where}) send every test event"
            + (" and --event" if ctx.person and ctx.person.events else ""),
            details={"source": where},
        )
    ]


def _subscription_items(ctx: DoctorContext, subs: list) -> list[tuple[str, dict, str]]:
    """The messages the subscriptions must send: send-test's Segment messages and the --event names."""
    from cdpio_cli import sendtest_plan

    plan = sendtest_plan.build_plan(
        ctx.settings,
        "segment",
        sendtest_plan.SendTestOptions(user_id="cdpio-doctor-{run_id}"),
        several=True,
        subscriptions=subs,
    )
    items = [(i.label, i.msg, "segment.subscriptions") for i in plan.items]
    user = ctx.person.user_id if ctx.person and ctx.person.user_id else "cdpio-doctor"
    for name in ctx.person.events if ctx.person else []:
        items.append((f'track "{name}"', {"type": "track", "event": name, "userId": user}, "segment.subscriptions"))
    return items


def _send_route(ctx: DoctorContext, route: str) -> list[Check]:
    from cdpio_cli import sendtest, sendtest_plan

    s = ctx.settings
    plan = sendtest_plan.build_plan(
        s,
        route,
        sendtest_plan.SendTestOptions(user_id="cdpio-doctor-{run_id}"),
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
        if check.status == Status.FAILED:
            if check.failure == FailureKind.CREDENTIAL:
                check.message = f"{title} rejected the test {item.label}: {check.message} (a wrong key)"
            else:
                check.message = f"{title} did not accept the test {item.label}: {check.message}"
            return checks
    target = sendtest_plan.target_for(plan)
    target.sent_at = time.monotonic()
    ctx.targets[route] = target
    return checks


def link_track_send(ctx: DoctorContext) -> list[Check]:
    s = ctx.settings
    if not (s.customerio.site_id and s.customerio.track_api_key):
        return []
    return _send_route(ctx, "customerio")


def link_segment_send(ctx: DoctorContext) -> list[Check]:
    if not ctx.settings.segment.write_key:
        return []
    return _send_route(ctx, "segment")


# (name, tier, link).  Order is the chain: a link is only worth checking once
# every link before it holds.
LINKS: list[tuple[str, Tier, Callable[[DoctorContext], list[Check]]]] = [
    ("config found", Tier.FORMAT, link_config),
    ("credentials cleaned", Tier.FORMAT, link_credentials),
    ("Track credentials and region", Tier.AUTHENTICATED, link_track),
    ("App API key", Tier.AUTHENTICATED, link_app),
    ("Pipelines key", Tier.AUTHENTICATED, link_pipelines),
    ("Segment write key and destination", Tier.AUTHENTICATED, link_segment),
    ("destination subscriptions", Tier.MAPPING, link_subscriptions),
    ("a direct Track send accepted", Tier.ACCEPTED, link_track_send),
    ("a Segment send accepted", Tier.ACCEPTED, link_segment_send),
    ("delivered to Customer.io", Tier.DELIVERED, link_delivered),
    ("traits present", Tier.DELIVERED, link_traits),
    ("your person", Tier.DELIVERED, link_person),
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
    ctx = DoctorContext(settings, http, report, progress, person, timeout=timeout, verbose=verbose)
    broken: Check | None = None
    try:
        for index, (name, _tier, link) in enumerate(LINKS):
            checks = link(ctx)
            diagnosis.learn_checks(ctx.evidence, checks, settings)
            for check in checks:
                report.add(check)
                if check.status == Status.FAILED and broken is None:
                    broken = check
            if broken is not None:
                explain(broken, ctx)
                # Only the first broken link matters; the rest are listed, not run.
                so_far = list(report.checks)
                report.checks = so_far[: so_far.index(broken) + 1]
                for later, tier, later_link in LINKS[index + 1 :]:
                    if later_link is link_person and person is None:
                        continue
                    report.add(
                        Check(
                            id=later,
                            route="doctor",
                            tier=tier,
                            status=Status.SKIPPED,
                            message="not checked: fix the broken link above first",
                        )
                    )
                report.summary["broken_link"] = {"link": name, "check": broken.id}
                break
    finally:
        http.close()
    report.summary["sandbox"] = settings.using_sandbox
    report.summary["diagnosis"] = diagnosis.summary(ctx.evidence)
    if broken is None:
        report.summary["broken_link"] = None
    return report

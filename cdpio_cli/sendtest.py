"""send-test: build test messages, send them through each route, prove delivery.

Tiers (README.md): a send whose HTTP status is in `expect_status` is
`accepted`, never `delivered`; Segment answers 200 even for a write key that
does not exist.  Delivery is a separate check per route, made by finding the
route's own test person and events in Customer.io through the App API
(verify.py).  Each route writes to its own person (`...-segment`,
`...-customerio`, `...-pipelines`), so what arrives is attributable.

Every message carries the run id (`cdpio_run_id`: a trait on identify, a
property on track/page/screen).  Delivery counts the person's traits only when
its `cdpio_run_id` attribute is this run's, and activities only when they are
provably this run's (verify.run_evidence): on a per-run person any match, on a
fixed test user (`send_test.user_id` without `{run_id}`) only activities newer
than this run's first send, or tagged with this run when the App API returns
event data.  So a fixed test user never passes on an earlier run's data.

Every message gets a fixed messageId before the first attempt, so the
transport's retries cannot duplicate it (Segment and Customer.io dedupe on
it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdpio_cli import campaigns, diagnosis, keys, keys_segment
from cdpio_cli.errors import FailureKind, UsageError
from cdpio_cli.keys import unreachable_hint
from cdpio_cli.results import Check, Report, Status, Tier
from cdpio_cli.routes import registry
from cdpio_cli.routes.registry import SendOne
from cdpio_cli.sendtest_plan import (
    PLATFORMS,
    Planned,
    RoutePlan,
    SendTestOptions,
    build_plan,
    choose_routes,
    mapping_warnings,
    target_for,
)
from cdpio_cli.settings import Settings
from cdpio_cli.transport import Outcome, RetryPolicy
from cdpio_cli.verify import (
    RUN_ID_KEY,
    AppApi,
    Target,
    target_check,
    wait_for,
)

SEND_POLICY = RetryPolicy(max_retries=2, base_delay=0.5, max_delay=4.0)

# ---------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------


def send_one(settings: Settings, http: keys.ServiceHttp, route: str, msg: dict) -> Outcome:
    """Send one test message through `route` (its RouteSpec.send_one)."""
    spec = registry.get(route)
    values = settings.credential_values()
    send = SendOne(
        http.client,
        settings.endpoint(spec.service),
        {cred.field: values.get(cred.field) or "" for cred in spec.credentials},
        SEND_POLICY,
        http.deadline,
    )
    return spec.send_one(send, msg)


def _sent_to(outcome: Outcome) -> tuple[str, str]:
    """(METHOD, path) the outcome's last request went to (the path holds no secret)."""
    from urllib.parse import urlsplit

    method, _, url = (outcome.endpoint or "").partition(" ")
    try:
        path = urlsplit(url).path if url else ""
    except ValueError:
        path = ""
    return method, path


def sent_detail(details: dict) -> str:
    """--verbose suffix of an accepted check: messageId, where it went, retries."""
    parts = [f"messageId {details.get('messageId')}"]
    if details.get("endpoint"):
        parts.append(str(details["endpoint"]))
    if (details.get("attempts") or 0) > 1:
        parts.append(f"{details['attempts']} attempts")
    return f" ({', '.join(parts)})"


def accepted_check(
    route: str, item: Planned, outcome: Outcome, expect_status: list[int], *, verbose: bool = False
) -> Check:
    """`<route>.<message>` at the accepted tier: what the service answered."""
    check_id = f"{route}.{item.check_id}"
    spec = registry.get(route)
    title = spec.title
    method, path = _sent_to(outcome)
    details: dict[str, Any] = {"messageId": item.msg.get("messageId")}
    if path:
        details["endpoint"] = f"{method} {path}"
    if outcome.attempts:
        details["attempts"] = outcome.attempts
    sent = sent_detail(details) if verbose else ""
    if outcome.dropped is not None and outcome.requests == 0:
        # Only the Track route maps before sending: the destination would drop it.
        return Check(
            id=check_id,
            route=route,
            tier=Tier.ACCEPTED,
            status=Status.SKIPPED,
            message=f"not sent: the Customer.io (Actions) destination would drop it ({outcome.dropped})",
        )
    status = outcome.http_status
    if status is not None and status in expect_status:
        message = spec.send_test.accepted.format(status=status)
        if outcome.redirected_to:
            message += " after a redirect (the workspace is in another region)"
        return Check(
            id=check_id,
            route=route,
            tier=Tier.ACCEPTED,
            status=Status.PASSED,
            message=message + sent,
            http_status=status,
            duration_ms=outcome.duration_ms,
            details=details,
        )
    failure, hint = _failure(spec, outcome, expect_status)
    error = outcome.error or (f"HTTP {status}" if status is not None else "no response")
    if outcome.reached:
        text = f"{title} answered {error}"
    elif "timed out waiting for a response" in error:
        text = f"the {title} answered too slowly: {error} (the message may still have arrived)"
    else:
        text = f"could not reach the {title}: {error}"
    return Check(
        id=check_id,
        route=route,
        tier=Tier.ACCEPTED,
        status=Status.FAILED,
        message=text + sent,
        http_status=status,
        duration_ms=outcome.duration_ms,
        failure=failure,
        hint=hint,
        details=details,
    )


def _failure(spec: registry.RouteSpec, outcome: Outcome, expect_status: list[int]) -> tuple[FailureKind, str]:
    """(failure kind, hint) of a send that was not accepted."""
    status = outcome.http_status
    if status is None or not outcome.reached:
        where = outcome.endpoint.partition(" ")[2] if outcome.endpoint else None
        return FailureKind.UNREACHABLE, unreachable_hint(where, "check your network or proxy, or the endpoint override")
    if status in (401, 403):
        return FailureKind.CREDENTIAL, spec.send_test.rejected_fix
    if status >= 500:
        return FailureKind.UNREACHABLE, "the service failed after retries; try again later"
    return FailureKind.CHECK, f"expected {' or '.join(map(str, expect_status))}"


def mapping_drop_check(route: str, item: Planned) -> Check:
    return Check(
        id=f"{route}.{item.check_id}",
        route=route,
        tier=Tier.DELIVERED,
        status=Status.FAILED,
        message=f"will not reach Customer.io: dropped by the destination mapping: {item.mapped.drop_reason}",
        failure=FailureKind.CHECK,
        hint="fix the event (see `cdpio explain`), or change the destination's subscriptions",
    )


# ---------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------


def detect_region(settings: Settings, http: keys.ServiceHttp) -> list[Check]:
    """Track credentials -> region (keys.check_track sets settings.detected_region).

    A detected region that differs from customerio.region is used for every
    later request of the run (Settings.customerio_region), and the failed
    region check says so."""
    if not (settings.customerio.site_id and settings.customerio.track_api_key):
        return []
    checks = keys.check_track(settings, http)
    note = diagnosis.region_note(settings)
    for check in checks:
        if note and check.id == "customerio.region" and check.status == Status.FAILED:
            check.message += f"; {note}"
    return checks


def learn_sends(ev: diagnosis.Evidence, route: str, check: Check) -> None:
    """A credential rejected while sending is a fact about that key."""
    if check.status != Status.FAILED or check.failure != FailureKind.CREDENTIAL:
        return
    cause = registry.get(route).send_test.rejected_cause
    if cause is not None:
        ev.add(cause[0], cause[1].format(status=check.http_status))


def _plan_violations(settings: Settings, plans: list[RoutePlan], report: Report) -> bool:
    """Check the test messages against the config's tracking plan (lint.plan);
    True when one breaks it (the checks are on the report, at the format tier)."""
    from cdpio_cli import lint
    from cdpio_cli import plan as plan_mod

    section = settings.config.lint
    path = plan_mod.resolve_plan_path(section.plan, settings.config_path)
    if not path or not plans:
        return False
    checks = plan_mod.send_test_checks(
        plan_mod.load_plan(path),
        ((item.label, item.msg) for item in plans[0].items),
        ignore_keys=(RUN_ID_KEY,),
        severities=lint.Severities(section.disable, dict[str, str](section.severity)),
    )
    report.extend(checks)
    return any(c.status == Status.FAILED for c in checks)


@dataclass
class _Run:
    """One send-test run: what it was asked, what it holds open, what it learned."""

    settings: Settings
    options: SendTestOptions
    report: Report
    http: keys.ServiceHttp
    evidence: diagnosis.Evidence
    plans: list[RoutePlan]
    verify: bool
    timeout: float
    expect: Any
    progress: Callable[[str], None] | None = None
    targets: dict[str, Target] = field(default_factory=dict)  # routes with an accepted send
    accepted: dict[str, list[Check]] = field(default_factory=dict)  # route -> its accepted checks

    def say(self, text: str) -> None:
        if self.progress:
            self.progress(text)


def _check_options(options: SendTestOptions) -> None:
    if options.device_token and options.platform not in PLATFORMS:
        raise UsageError("--device-token needs --platform ios or --platform android")
    if options.platform and not options.device_token:
        raise UsageError("--platform needs --device-token")
    if options.user_id is not None and not options.user_id.strip():
        raise UsageError("--user-id cannot be empty", hint="e.g. --user-id 'qa-{run_id}'")


def _verify_wanted(settings: Settings, options: SendTestOptions) -> bool:
    has_app_key = bool(settings.customerio.app_api_key)
    verify = has_app_key if options.verify is None else options.verify
    if verify and not has_app_key:
        raise UsageError(
            "--verify needs customerio.app_api_key to read people and events from Customer.io",
            hint="set customerio.app_api_key (Account Settings > API Credentials > App API Keys)",
        )
    return verify


def run_send_test(
    settings: Settings,
    options: SendTestOptions,
    *,
    progress: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Report:
    report = Report("send-test", run_id=settings.run_id)
    _check_options(options)
    routes = choose_routes(settings, options.routes)
    verify = _verify_wanted(settings, options)
    timeout = settings.config.verify.timeout if options.timeout is None else options.timeout
    plans = [build_plan(settings, route, options, several=len(routes) > 1) for route in routes]
    for text in mapping_warnings(plans):
        if warn:
            warn(text)
    if _plan_violations(settings, plans, report):
        return report  # a test event the tracking plan forbids: fail before any HTTP call

    expect = campaigns.expectations(settings)
    # The segmented and triggered tiers wait again after delivery.
    http = keys.ServiceHttp.for_settings(settings, timeout, waits=2 if expect and verify else 1)
    run = _Run(settings, options, report, http, diagnosis.Evidence(), plans, verify, timeout, expect, progress)
    for plan in plans:
        diagnosis.learn_plan(run.evidence, plan)
    try:
        app_rejected = _preflight(run)
        for plan in plans:
            _send_plan(run, plan)
        _summarize_sends(run)
        app_key = settings.customerio.app_api_key
        if not verify or not app_key:  # verify is on only with an App API key (_verify_wanted)
            _skip_unverified(run)
        elif app_rejected:
            _skip_delivery(run, "delivery not verified: the App API key was rejected (see customerio.app)")
        else:
            _verify_delivery(run, app_key)
        _explain(report, run.evidence)
    finally:
        http.close()
    return report


def _preflight(run: _Run) -> bool:
    """The checks before sending: Track credentials and region, the App API
    key, Segment's settings lookup.  True when the App API key was rejected."""
    settings, http, evidence = run.settings, run.http, run.evidence
    run.say("checking the Customer.io Track credentials and region")
    track_checks = detect_region(settings, http)
    run.report.extend(track_checks)
    diagnosis.learn_checks(evidence, track_checks, settings)
    if settings.customerio.app_api_key and run.verify:
        app_checks = keys.check_app(settings, http)
        diagnosis.learn_checks(evidence, app_checks, settings)
        run.report.extend(c for c in app_checks if c.status == Status.FAILED)
    if any(p.route == "segment" for p in run.plans) and run.verify:
        # Facts only (doctor and check-keys report these checks): does the
        # settings lookup know the key, at which API host; with a token,
        # is the destination connected, writing to which site id.
        diagnosis.learn_checks(evidence, keys_segment.check_segment(settings, http), settings)
    return any(c.id == "customerio.app" and c.status == Status.FAILED for c in run.report.checks)


def _failed_precheck(run: _Run, route: str) -> Check | None:
    """A skipped `<route>.send` check when the route's precheck failed (the Track route's customerio.track)."""
    precheck = registry.get(route).precheck
    if precheck is None:
        return None
    check_id, service = precheck
    failed = next((c for c in run.report.checks if c.id == check_id and c.status == Status.FAILED), None)
    if failed is None:
        return None
    why = (
        f"{service} rejected the credentials"
        if failed.failure == FailureKind.CREDENTIAL
        else f"{service} could not be reached"
    )
    return Check(
        id=f"{route}.send",
        route=route,
        tier=Tier.ACCEPTED,
        status=Status.SKIPPED,
        message=f"not sent: {why} (see {check_id})",
    )


def _send_plan(run: _Run, plan: RoutePlan) -> None:
    """Send one route's messages; a route with an accepted send gets a target."""
    route, report = plan.route, run.report
    skipped = _failed_precheck(run, route)
    if skipped is not None:
        report.add(skipped)
        return
    title = registry.get(route).title
    run.say(f"sending through {title}")
    target = target_for(plan)
    any_accepted = unreachable = False
    sent: list[Check] = []
    for item in plan.items:
        if unreachable:  # one timeout per route is enough to know
            text = f"not sent: the {title} could not be reached"
            report.add(
                Check(
                    id=f"{route}.{item.check_id}", route=route, tier=Tier.ACCEPTED, status=Status.SKIPPED, message=text
                )
            )
            continue
        outcome = send_one(run.settings, run.http, route, item.msg)
        expect_status = run.settings.config.send_test.expect_status
        check = accepted_check(route, item, outcome, expect_status, verbose=run.options.verbose)
        unreachable = check.status == Status.FAILED and check.failure == FailureKind.UNREACHABLE
        report.add(check)
        learn_sends(run.evidence, route, check)
        any_accepted = any_accepted or check.status == Status.PASSED
        if item.mapped.ok:
            sent.append(check)
        else:
            report.add(mapping_drop_check(route, item))
    run.accepted[route] = sent
    if any_accepted:
        # Time to delivery counts from the route's last send.
        target.sent_at = time.monotonic()
        run.targets[route] = target


def _summarize_sends(run: _Run) -> None:
    summary = run.report.summary
    summary["routes"] = {
        p.route: {"user_id": p.user_id, "email": p.email, "anonymous_id": p.anonymous_id, "messages": len(p.items)}
        for p in run.plans
    }
    summary["sandbox"] = run.settings.using_sandbox
    summary["customerio_region"] = run.settings.customerio_region()


def _skip_unverified(run: _Run) -> None:
    """--no-verify, or no App API key: each route's delivery is skipped, saying why."""
    has_app_key = bool(run.settings.customerio.app_api_key)
    for route in run.targets:
        caveat = registry.get(route).send_test.unverified_caveat
        if has_app_key:
            message = "delivery not verified (--no-verify)" + caveat
            hint = "drop --no-verify to prove delivery"
        else:
            message = "delivery not verified: no App API key, so cdpio cannot look in Customer.io" + caveat
            hint = "set customerio.app_api_key to prove delivery (send-test verifies by default when it is set)"
        run.report.add(
            Check(
                id=f"{route}.delivery",
                route=route,
                tier=Tier.DELIVERED,
                status=Status.SKIPPED,
                message=message,
                hint=hint,
            )
        )
    for route in run.targets:
        if run.expect:
            campaigns.skip_tiers(run.report, route, run.expect, "not checked: delivery was not verified")
    run.report.summary["verified"] = False


def _skip_delivery(run: _Run, message: str) -> None:
    for route in run.targets:
        run.report.add(
            Check(id=f"{route}.delivery", route=route, tier=Tier.DELIVERED, status=Status.SKIPPED, message=message)
        )
    run.report.summary["verified"] = False


def _verify_delivery(run: _Run, app_api_key: str) -> None:
    """Poll Customer.io for every route's test person, then one delivery check
    per route (and the segment and campaign tiers when expected)."""
    settings, options, report = run.settings, run.options, run.report
    capture = None
    if options.capture:
        from cdpio_cli.capture import Capture

        capture = Capture(options.capture, run.http.secrets, run_id=settings.run_id)
    api = AppApi(run.http, settings.endpoint("app"), app_api_key, capture=capture)
    poll = settings.config.verify.poll_interval
    try:
        wait_for(api, list(run.targets.values()), timeout=run.timeout, poll_interval=poll, progress=run.progress)
    finally:
        if capture is not None:
            capture.close()
            report.summary["capture"] = {"directory": options.capture, "responses": len(capture.files)}
    timings = {}
    for route, target in run.targets.items():
        check = _delivery_check(run, route, target)
        took = target.seconds_to_delivery()
        timings[route] = None if took is None else round(took, 3)
        if run.expect and check.status == Status.PASSED and target.person is not None:
            run.say(f"checking segments and campaigns for the {route} test person")
            campaigns.run_tiers(
                report,
                api,
                route=route,
                ref=target.person["_ref"],
                since=target.sent_wall,
                attributes=target.attributes(),
                sent_events=[a.name for a in target.activities if a.type == "event"],
                expect=run.expect,
                settings=settings,
                evidence=run.evidence,
                timeout=run.timeout,
                poll_interval=poll,
                progress=run.progress,
            )
        elif run.expect:
            campaigns.skip_tiers(report, route, run.expect, "not checked: delivery was not proven")
    report.summary["verified"] = True
    report.summary["seconds_to_delivery"] = timings
    report.summary["app_api_polls"] = api.calls


def _delivery_check(run: _Run, route: str, target: Target) -> Check:
    """`<route>.delivery`: did the route's test person and events arrive."""
    spec = registry.get(route)
    head = spec.send_test.nothing_arrived or f"{spec.title} accepted the events but none reached Customer.io"
    diagnosis.learn_target(run.evidence, route, target)
    check = target_check(
        target,
        check_id=f"{route}.delivery",
        route=route,
        timeout=run.timeout,
        nothing_head=head,
        verbose=run.options.verbose,
    )
    run.report.add(check)
    verified = spec.send_test.verified
    if check.status == Status.PASSED and verified:
        # Delivery is proven: the accepted checks need no caveat.
        for sent in run.accepted.get(route, []):
            if sent.status == Status.PASSED:
                sent.message = verified.format(status=sent.http_status) + (
                    sent_detail(sent.details) if run.options.verbose else ""
                )
    plan = next(p for p in run.plans if p.route == route)
    if check.status == Status.PASSED and plan.anonymous_id:
        check.message += "; the anonymous events were merged into this person"
    return check


def _explain(report: Report, evidence: diagnosis.Evidence) -> None:
    """Causes on every failed check (details.causes), from this run's facts."""
    tiers = [c.id for c in report.checks if c.tier in campaigns.TIERS]
    sentence_for = [f"{r}.delivery" for r in registry.route_names()] + tiers
    diagnosis.explain_failures(report.checks, evidence, sentence_for=sentence_for)
    report.summary["diagnosis"] = diagnosis.summary(evidence)

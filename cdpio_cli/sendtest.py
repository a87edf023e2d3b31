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

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdpio_cli import campaigns, diagnosis, keys, mapping
from cdpio_cli.errors import UsageError
from cdpio_cli.keys import unreachable_hint
from cdpio_cli.results import (
    FAILED,
    FAILURE_CHECK,
    FAILURE_CREDENTIAL,
    FAILURE_UNREACHABLE,
    PASSED,
    SKIPPED,
    Check,
    Report,
)
from cdpio_cli.settings import Settings
from cdpio_cli.verify import (
    RUN_ID_KEY,
    AppApi,
    ExpectedActivity,
    Target,
    target_check,
    wait_for,
)

ROUTES = ("segment", "customerio", "pipelines")
ROUTE_TITLES = {
    "segment": "Segment Tracking API",
    "customerio": "Customer.io Track API",
    "pipelines": "Customer.io Pipelines API",
}
PLATFORMS = ("ios", "android")

DEFAULT_EVENTS: list[dict[str, Any]] = [
    {"type": "track", "event": "Signed Up", "properties": {"plan_type": "Pro"}},
    {"type": "page", "name": "Pricing", "properties": {"url": "https://example.com/pricing"}},
    {"type": "screen", "name": "Home"},
]
ANONYMOUS_EVENT = "Viewed Pricing"
SEND_POLICY = dict(max_retries=2, base_delay=0.5, max_delay=4.0)


@dataclass
class SendTestOptions:
    routes: list[str] | None = None  # None: every configured route
    user_id: str | None = None  # overrides send_test.user_id
    events: list[str] = field(default_factory=list)  # track event names replacing the config's
    anonymous_flow: bool = False
    device_token: str | None = None
    platform: str | None = None
    verify: bool | None = None  # None: on when an App API key is configured
    timeout: float | None = None  # overrides verify.timeout
    verbose: bool = False  # messageIds, endpoints, what was found
    capture: str | None = None  # directory for every raw App API response (capture.py)


@dataclass
class Planned:
    """One message to send on one route, and what the destination does with it."""

    label: str  # `track "Signed Up"`
    msg: dict
    mapped: mapping.Mapping
    note: str = ""

    @property
    def check_id(self) -> str:
        return self.label.replace('"', "")


@dataclass
class RoutePlan:
    route: str
    user_id: str
    email: str | None
    anonymous_id: str | None
    traits: dict[str, Any]
    items: list[Planned]
    device_token: str | None = None
    run_id: str | None = None  # the `cdpio_run_id` tag on every message
    new_person: bool = False  # the user id holds {run_id}: a person of this run's own
    # The destination subscriptions Segment's messages were mapped through (None: the defaults).
    subscriptions: list | None = None


# ---------------------------------------------------------------------------
# Building the messages
# ---------------------------------------------------------------------------


def _expand(value: Any, run_id: str) -> Any:
    """`{run_id}` in every string (str.replace: other braces stay as written)."""
    if isinstance(value, str):
        return value.replace("{run_id}", run_id)
    if isinstance(value, dict):
        return {k: _expand(v, run_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, run_id) for v in value]
    return value


def _per_route_email(email: str, route: str) -> str:
    # One email can belong to one person only: tag it per route (plus addressing).
    local, at, domain = email.partition("@")
    return f"{local}+{route}{at}{domain}" if at else f"{email}-{route}"


def configured_routes(settings: Settings) -> dict[str, str | None]:
    """route -> None if it can be used, else what is missing."""
    cio = settings.customerio
    return {
        "segment": None if settings.segment.write_key else "segment.write_key",
        "customerio": None
        if (cio.site_id and cio.track_api_key)
        else ("customerio.site_id" if not cio.site_id else "customerio.track_api_key"),
        "pipelines": None if cio.pipelines_api_key else "customerio.pipelines_api_key",
    }


def choose_routes(settings: Settings, asked: list[str] | None) -> list[str]:
    available = configured_routes(settings)
    wanted = asked or settings.config.send_test.routes
    if wanted:
        out = []
        for route in wanted:
            if route not in ROUTES:
                raise UsageError(f"unknown route {route!r}", hint="use segment, customerio or pipelines")
            if available[route]:
                raise UsageError(
                    f"route {route} needs {available[route]}, which is not configured",
                    hint=f"set {available[route]} in cdpio.yaml",
                )
            if route not in out:
                out.append(route)
        return out
    out = [r for r in ROUTES if available[r] is None]
    if not out:
        raise UsageError(
            "no route is configured: send-test needs segment.write_key, "
            "customerio.site_id + track_api_key, or customerio.pipelines_api_key",
            hint="run `cdpio init`, or try `cdpio send-test --sandbox`",
        )
    return out


def build_plan(
    settings: Settings, route: str, options: SendTestOptions, *, several: bool, subscriptions: list | None = None
) -> RoutePlan:
    """The messages for one route, each with a fixed messageId.  Segment's
    messages are mapped through the destination's `subscriptions` (default:
    the config's customerio.subscriptions, else the destination's defaults)."""
    if route == "segment" and subscriptions is None:
        from cdpio_cli.explain import configured_subscriptions

        subscriptions = configured_subscriptions(settings)
    if route != "segment":
        subscriptions = None  # only Segment runs the destination's subscriptions
    cfg = settings.config.send_test
    run_id = settings.run_id
    # `{run_id}` becomes `<run>-<route>`: each route gets its own person.
    route_run = f"{run_id}-{route}"
    template = options.user_id if options.user_id is not None else cfg.user_id
    user_id = _expand(template, route_run)
    if several and "{run_id}" not in template:
        user_id = f"{user_id}-{route}"
    traits = _expand(copy.deepcopy(cfg.traits), route_run)
    email = traits.get("email") if isinstance(traits.get("email"), str) else None
    if email and several and "{run_id}" not in str(cfg.traits.get("email")):
        email = traits["email"] = _per_route_email(email, route)

    if cfg.events is not None:
        events = copy.deepcopy(cfg.events)
    else:
        events = copy.deepcopy(DEFAULT_EVENTS)
    if options.events:
        events = [e for e in events if e.get("type") != "track"]
        events[0:0] = [{"type": "track", "event": name, "properties": {}} for name in options.events]
    events = _expand(events, route_run)

    context = {"library": {"name": "cdpio", "version": _version()}}
    anonymous_id = f"cdpio-anon-{route_run}" if options.anonymous_flow else None
    raw: list[tuple[str, dict, str]] = []
    if anonymous_id:
        raw.append(
            (
                f'anonymous track "{ANONYMOUS_EVENT}"',
                {
                    "type": "track",
                    "anonymousId": anonymous_id,
                    "event": ANONYMOUS_EVENT,
                    "properties": {"source": "cdpio send-test"},
                },
                "sent anonymously; identify should merge it into the person",
            )
        )
    identify = {"type": "identify", "userId": user_id, "traits": traits}
    if anonymous_id:
        identify["anonymousId"] = anonymous_id
    raw.append(("identify", identify, ""))
    for event in events:
        msg = {k: v for k, v in event.items()}
        msg.setdefault("userId", user_id)
        raw.append((_label(msg), msg, ""))
    if options.device_token:
        raw.append(
            (
                'track "Application Installed"',
                {
                    "type": "track",
                    "userId": user_id,
                    "event": "Application Installed",
                    "properties": {},
                    "context": {"device": {"token": options.device_token, "type": options.platform}},
                },
                "registers the device",
            )
        )
    for _, msg, _ in raw:  # every message carries this run's id
        _tag(msg, run_id)

    items = []
    seen: dict[str, int] = {}
    for index, (label, msg, note) in enumerate(raw):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} #{seen[label]}"
        msg["context"] = {**context, **(msg.get("context") or {})}
        msg["messageId"] = f"cdpio-{route_run}-{index + 1}"
        mapped = mapping.map_message(msg) if subscriptions is None else mapping.map_subscribed(msg, subscriptions)
        items.append(Planned(label, msg, mapped, note))
    return RoutePlan(
        route,
        user_id,
        email,
        anonymous_id,
        traits,
        items,
        options.device_token,
        run_id,
        new_person="{run_id}" in template,
        subscriptions=subscriptions,
    )


def _tag(msg: dict, run_id: str) -> None:
    """Put the run id on a message where the destination keeps it: a trait on
    identify (a person attribute), a property on track/page/screen (the
    activity's event data)."""
    mtype = msg.get("type")
    if mtype == "identify":
        msg["traits"] = {**(msg.get("traits") if isinstance(msg.get("traits"), dict) else {}), RUN_ID_KEY: run_id}
    elif mtype in ("track", "page", "screen"):
        props = msg.get("properties")
        if props is None:
            msg["properties"] = props = {}
        if isinstance(props, dict):
            props[RUN_ID_KEY] = run_id


def _label(msg: dict) -> str:
    mtype = msg.get("type", "?")
    if mtype == "track":
        return f'track "{msg.get("event")}"'
    if mtype in ("page", "screen", "group") and msg.get("name"):
        return f'{mtype} "{msg.get("name")}"'
    return str(mtype)


def _version() -> str:
    from cdpio_cli import __version__

    return __version__


def target_for(plan: RoutePlan) -> Target:
    """What must show up in Customer.io for this route's messages."""
    traits: dict[str, Any] = {}
    activities: list[ExpectedActivity] = []
    for item in plan.items:
        if not item.mapped.ok:
            continue
        for op in item.mapped.operations:
            action = op.get("action")
            if op.get("type") != "person":
                continue
            if action == "identify":
                attrs = dict(op.get("attributes") or {})
                attrs.pop("anonymous_id", None)
                attrs.pop(RUN_ID_KEY, None)  # checked on its own: Target.run_id
                traits.update(attrs)
            elif action in ("event", "page", "screen") and op.get("name"):
                activities.append(ExpectedActivity(action, str(op["name"]), item.label, item.note))
    devices = [plan.device_token] if plan.device_token else []
    return Target(
        plan.route,
        user_id=plan.user_id,
        traits=traits,
        activities=activities,
        devices=devices,
        run_id=plan.run_id,
        new_person=plan.new_person,
    )


# ---------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------


def _send(settings: Settings, http, route: str, msg: dict):
    from cdpio_cli.routes import customerio, pipelines, segment
    from cdpio_cli.transport import RetryPolicy

    policy = RetryPolicy(**SEND_POLICY)
    if route == "segment":
        return segment.send_message(
            http.client,
            settings.endpoint("segment"),
            settings.segment.write_key,
            msg,
            policy=policy,
            deadline=http.deadline,
        )
    if route == "pipelines":
        return pipelines.send_message(
            http.client,
            settings.endpoint("pipelines"),
            settings.customerio.pipelines_api_key,
            msg,
            strict=True,
            policy=policy,
            deadline=http.deadline,
        )
    return customerio.send_message(
        http.client,
        settings.endpoint("track"),
        settings.customerio.site_id,
        settings.customerio.track_api_key,
        msg,
        policy=policy,
        deadline=http.deadline,
    )


def _sent_to(outcome) -> tuple[str, str]:
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


def accepted_check(route: str, item: Planned, outcome, expect_status: list[int], *, verbose: bool = False) -> Check:
    check_id = f"{route}.{item.check_id}"
    title = ROUTE_TITLES[route]
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
            check_id,
            route,
            "accepted",
            SKIPPED,
            f"not sent: the Customer.io (Actions) destination would drop it ({outcome.dropped})",
        )
    status = outcome.http_status
    if status is not None and status in expect_status:
        if route == "segment":
            message = (
                f"{status} accepted by Segment (not proof of delivery: Segment answers "
                f"{status} even for unknown write keys)"
            )
        elif route == "pipelines":
            message = f"{status} accepted by the Pipelines API (strict mode)"
        else:
            message = f"{status} accepted by the Track API"
        if outcome.redirected_to:
            message += " after a redirect (the workspace is in another region)"
        return Check(
            check_id,
            route,
            "accepted",
            PASSED,
            message + sent,
            http_status=status,
            duration_ms=outcome.duration_ms,
            details=details,
        )
    error = outcome.error or (f"HTTP {status}" if status is not None else "no response")
    if status is None or not outcome.reached:
        failure = FAILURE_UNREACHABLE
        hint = unreachable_hint(
            outcome.endpoint.partition(" ")[2] if outcome.endpoint else None,
            "check your network or proxy, or the endpoint override",
        )
    elif status in (401, 403):
        failure = FAILURE_CREDENTIAL
        hint = {
            "segment": "check segment.write_key",
            "pipelines": "check customerio.pipelines_api_key and its region",
            "customerio": "check customerio.site_id and customerio.track_api_key "
            "(Account Settings > API Credentials > Track API Keys)",
        }[route]
    elif status >= 500:
        failure, hint = FAILURE_UNREACHABLE, "the service failed after retries; try again later"
    else:
        failure, hint = FAILURE_CHECK, f"expected {' or '.join(map(str, expect_status))}"
    if outcome.reached:
        text = f"{title} answered {error}"
    elif "timed out waiting for a response" in error:
        text = f"the {title} answered too slowly: {error} (the message may still have arrived)"
    else:
        text = f"could not reach the {title}: {error}"
    return Check(
        check_id,
        route,
        "accepted",
        FAILED,
        text + sent,
        http_status=status,
        duration_ms=outcome.duration_ms,
        failure=failure,
        hint=hint,
        details=details,
    )


def mapping_drop_check(route: str, item: Planned) -> Check:
    return Check(
        f"{route}.{item.check_id}",
        route,
        "delivered",
        FAILED,
        f"will not reach Customer.io: dropped by the destination mapping: {item.mapped.drop_reason}",
        failure=FAILURE_CHECK,
        hint="fix the event (see `cdpio explain`), or change the destination's subscriptions",
    )


def mapping_warnings(plans: list[RoutePlan]) -> list[str]:
    seen: set[str] = set()
    out = []
    for plan in plans:
        for item in plan.items:
            if not item.mapped.ok and item.label not in seen:
                seen.add(item.label)
                out.append(
                    f"{item.label} will be dropped by the Customer.io (Actions) destination "
                    f"mapping: {item.mapped.drop_reason}"
                )
    return out


# ---------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------


@dataclass
class RunState:
    report: Report
    plans: list[RoutePlan]
    targets: dict[str, Target] = field(default_factory=dict)


def detect_region(settings: Settings, http) -> list[Check]:
    """Track credentials -> region (keys.check_track sets settings.detected_region).

    A detected region that differs from customerio.region is used for every
    later request of the run (Settings.customerio_region), and the failed
    region check says so."""
    if not (settings.customerio.site_id and settings.customerio.track_api_key):
        return []
    checks = keys.check_track(settings, http)
    note = diagnosis.region_note(settings)
    for check in checks:
        if note and check.id == "customerio.region" and check.status == FAILED:
            check.message += f"; {note}"
    return checks


def learn_sends(ev: diagnosis.Evidence, route: str, check: Check) -> None:
    """A credential rejected while sending is a fact about that key."""
    if check.status != FAILED or check.failure != FAILURE_CREDENTIAL:
        return
    if route == "pipelines":
        ev.add("pipelines.key.rejected", f"the Pipelines API rejected the key in strict mode ({check.http_status})")
    elif route == "customerio":
        ev.add(
            "customerio.track.rejected", f"the Track API rejected the site id and Track API key ({check.http_status})"
        )


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
        severities=lint.Severities(section.disable, section.severity),
    )
    report.extend(checks)
    return any(c.status == FAILED for c in checks)


def run_send_test(
    settings: Settings,
    options: SendTestOptions,
    *,
    progress: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Report:
    cfg = settings.config
    report = Report("send-test", run_id=settings.run_id)
    if options.device_token and options.platform not in PLATFORMS:
        raise UsageError("--device-token needs --platform ios or --platform android")
    if options.platform and not options.device_token:
        raise UsageError("--platform needs --device-token")
    if options.user_id is not None and not options.user_id.strip():
        raise UsageError("--user-id cannot be empty", hint="e.g. --user-id 'qa-{run_id}'")
    routes = choose_routes(settings, options.routes)
    has_app_key = bool(settings.customerio.app_api_key)
    verify = has_app_key if options.verify is None else options.verify
    if verify and not has_app_key:
        raise UsageError(
            "--verify needs customerio.app_api_key to read people and events from Customer.io",
            hint="set customerio.app_api_key (Account Settings > API Credentials > App API Keys)",
        )
    timeout = cfg.verify.timeout if options.timeout is None else options.timeout
    several = len(routes) > 1
    plans = [build_plan(settings, route, options, several=several) for route in routes]
    for text in mapping_warnings(plans):
        if warn:
            warn(text)
    if _plan_violations(settings, plans, report):
        return report  # a test event the tracking plan forbids: fail before any HTTP call

    expect = campaigns.expectations(settings)
    # The segmented and triggered tiers wait again after delivery.
    http = keys.ServiceHttp.for_settings(settings, timeout, waits=2 if expect and verify else 1)
    evidence = diagnosis.Evidence()
    for plan in plans:
        diagnosis.learn_plan(evidence, plan)
    try:
        if progress:
            progress("checking the Customer.io Track credentials and region")
        track_checks = detect_region(settings, http)
        report.extend(track_checks)
        diagnosis.learn_checks(evidence, track_checks, settings)
        track_failed = next((c for c in track_checks if c.id == "customerio.track" and c.status == FAILED), None)
        if has_app_key and verify:
            app_checks = keys.check_app(settings, http)
            diagnosis.learn_checks(evidence, app_checks, settings)
            report.extend(c for c in app_checks if c.status == FAILED)
        if "segment" in routes and verify:
            # Facts only (doctor and check-keys report these checks): does the
            # settings lookup know the key, at which API host; with a token,
            # is the destination connected, writing to which site id.
            diagnosis.learn_checks(evidence, keys.check_segment(settings, http), settings)
        app_rejected = any(c.id == "customerio.app" and c.status == FAILED for c in report.checks)

        targets: dict[str, Target] = {}
        accepted_by_route: dict[str, list[Check]] = {}
        for plan in plans:
            route = plan.route
            if route == "customerio" and track_failed is not None:
                why = (
                    "the Track API rejected the credentials"
                    if track_failed.failure == FAILURE_CREDENTIAL
                    else "the Track API could not be reached"
                )
                report.add(
                    Check(f"{route}.send", route, "accepted", SKIPPED, f"not sent: {why} (see customerio.track)")
                )
                continue
            if progress:
                progress(f"sending through {ROUTE_TITLES[route]}")
            target = target_for(plan)
            any_accepted = False
            sent: list[Check] = []
            unreachable = False
            for item in plan.items:
                if unreachable:  # one timeout per route is enough to know
                    report.add(
                        Check(
                            f"{route}.{item.check_id}",
                            route,
                            "accepted",
                            SKIPPED,
                            f"not sent: the {ROUTE_TITLES[route]} could not be reached",
                        )
                    )
                    continue
                outcome = _send(settings, http, route, item.msg)
                check = accepted_check(route, item, outcome, cfg.send_test.expect_status, verbose=options.verbose)
                unreachable = check.status == FAILED and check.failure == FAILURE_UNREACHABLE
                report.add(check)
                learn_sends(evidence, route, check)
                any_accepted = any_accepted or check.status == PASSED
                if item.mapped.ok:
                    sent.append(check)
                else:
                    report.add(mapping_drop_check(route, item))
            accepted_by_route[route] = sent
            if any_accepted:
                # Time to delivery counts from the route's last send.
                target.sent_at = time.monotonic()
                targets[route] = target

        report.summary["routes"] = {
            p.route: {"user_id": p.user_id, "email": p.email, "anonymous_id": p.anonymous_id, "messages": len(p.items)}
            for p in plans
        }
        report.summary["sandbox"] = settings.using_sandbox
        report.summary["customerio_region"] = settings.customerio_region()
        if not verify:
            caveat = " (Segment's 200 is not proof of delivery)"
            for route in targets:
                if has_app_key:
                    report.add(
                        Check(
                            f"{route}.delivery",
                            route,
                            "delivered",
                            SKIPPED,
                            "delivery not verified (--no-verify)" + (caveat if route == "segment" else ""),
                            hint="drop --no-verify to prove delivery",
                        )
                    )
                    continue
                report.add(
                    Check(
                        f"{route}.delivery",
                        route,
                        "delivered",
                        SKIPPED,
                        "delivery not verified: no App API key, so cdpio cannot look in Customer.io"
                        + (caveat if route == "segment" else ""),
                        hint="set customerio.app_api_key to prove delivery (send-test verifies "
                        "by default when it is set)",
                    )
                )
            for route in targets:
                if expect:
                    campaigns.skip_tiers(report, route, expect, "not checked: delivery was not verified")
            report.summary["verified"] = False
            _explain(report, evidence)
            return report
        if app_rejected:
            for route in targets:
                report.add(
                    Check(
                        f"{route}.delivery",
                        route,
                        "delivered",
                        SKIPPED,
                        "delivery not verified: the App API key was rejected (see customerio.app)",
                    )
                )
            report.summary["verified"] = False
            _explain(report, evidence)
            return report
        plan_by_route = {p.route: p for p in plans}
        capture = None
        if options.capture:
            from cdpio_cli.capture import Capture

            capture = Capture(options.capture, http.secrets, run_id=settings.run_id)
        api = AppApi(http, settings.endpoint("app"), settings.customerio.app_api_key, capture=capture)
        try:
            wait_for(
                api, list(targets.values()), timeout=timeout, poll_interval=cfg.verify.poll_interval, progress=progress
            )
        finally:
            if capture is not None:
                capture.close()
                report.summary["capture"] = {"directory": options.capture, "responses": len(capture.files)}
        timings = {}
        for route, target in targets.items():
            head = (
                "Segment accepted the events (200) but none reached Customer.io"
                if route == "segment"
                else f"{ROUTE_TITLES[route]} accepted the events but none reached Customer.io"
            )
            diagnosis.learn_target(evidence, route, target)
            check = target_check(
                target,
                check_id=f"{route}.delivery",
                route=route,
                timeout=timeout,
                nothing_head=head,
                verbose=options.verbose,
            )
            report.add(check)
            took = target.seconds_to_delivery()
            timings[route] = None if took is None else round(took, 3)
            if check.status == PASSED and route == "segment":
                # Delivery is proven: the accepted checks need no caveat.
                for sent in accepted_by_route.get(route, []):
                    if sent.status == PASSED:
                        sent.message = f"{sent.http_status} accepted by Segment; delivery verified" + (
                            sent_detail(sent.details) if options.verbose else ""
                        )
            if check.status == PASSED and plan_by_route[route].anonymous_id:
                check.message += "; the anonymous events were merged into this person"
            if expect and check.status == PASSED:
                if progress:
                    progress(f"checking segments and campaigns for the {route} test person")
                campaigns.run_tiers(
                    report,
                    api,
                    route=route,
                    ref=target.person["_ref"],
                    since=target.sent_wall,
                    attributes=target.attributes(),
                    sent_events=[a.name for a in target.activities if a.type == "event"],
                    expect=expect,
                    settings=settings,
                    evidence=evidence,
                    timeout=timeout,
                    poll_interval=cfg.verify.poll_interval,
                    progress=progress,
                )
            elif expect:
                campaigns.skip_tiers(report, route, expect, "not checked: delivery was not proven")

        report.summary["verified"] = True
        report.summary["seconds_to_delivery"] = timings
        report.summary["app_api_polls"] = api.calls
        _explain(report, evidence)
    finally:
        http.close()
    return report


def _explain(report: Report, evidence: diagnosis.Evidence) -> None:
    """Causes on every failed check (details.causes), from this run's facts."""
    tiers = [c.id for c in report.checks if c.tier in campaigns.TIERS]
    diagnosis.explain_failures(report.checks, evidence, sentence_for=[f"{r}.delivery" for r in ROUTES] + tiers)
    report.summary["diagnosis"] = diagnosis.summary(evidence)

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
from cdpio_cli.routes import registry
from cdpio_cli.routes.registry import SendOne
from cdpio_cli.settings import Settings
from cdpio_cli.transport import Outcome, RetryPolicy
from cdpio_cli.verify import (
    RUN_ID_KEY,
    AppApi,
    ExpectedActivity,
    Target,
    target_check,
    unreachable_hint,
    wait_for,
)

PLATFORMS = ("ios", "android")

DEFAULT_EVENTS: list[dict[str, Any]] = [
    {"type": "track", "event": "Signed Up", "properties": {"plan_type": "Pro"}},
    {"type": "page", "name": "Pricing", "properties": {"url": "https://example.com/pricing"}},
    {"type": "screen", "name": "Home"},
]
ANONYMOUS_EVENT = "Viewed Pricing"
SEND_POLICY = RetryPolicy(max_retries=2, base_delay=0.5, max_delay=4.0)


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
    """route -> None if it can be used, else the first credential field it misses."""
    values = settings.credential_values()
    out: dict[str, str | None] = {}
    for spec in registry.specs():
        missing = spec.missing(values)
        out[spec.name] = missing[0].field if missing else None
    return out


def choose_routes(settings: Settings, asked: list[str] | None) -> list[str]:
    available = configured_routes(settings)
    wanted = asked or settings.config.send_test.routes
    if wanted:
        out = []
        for route in wanted:
            registry.get(route)  # an unknown name is a UsageError naming the known ones
            if available[route]:
                raise UsageError(
                    f"route {route} needs {available[route]}, which is not configured",
                    hint=f"set {available[route]} in cdpio.yaml",
                )
            if route not in out:
                out.append(route)
        return out
    out = [r for r in registry.route_names() if available[r] is None]
    if not out:
        needs = [spec.needs() for spec in registry.specs()]
        raise UsageError(
            f"no route is configured: send-test needs {', '.join(needs[:-1])}, or {needs[-1]}",
            hint="run `cdpio init`, or try `cdpio send-test --sandbox`",
        )
    return out


def build_plan(
    settings: Settings, route: str, options: SendTestOptions, *, several: bool, subscriptions: list | None = None
) -> RoutePlan:
    """The messages for one route, each with a fixed messageId.  Segment's
    messages are mapped through the destination's `subscriptions` (default:
    the config's customerio.subscriptions, else the destination's defaults)."""
    through_destination = registry.get(route).capabilities.destination_subscriptions
    if through_destination and subscriptions is None:
        from cdpio_cli.explain import configured_subscriptions

        subscriptions = configured_subscriptions(settings)
    if not through_destination:
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
        traits = msg.get("traits")
        msg["traits"] = {**(traits if isinstance(traits, dict) else {}), RUN_ID_KEY: run_id}
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
            check_id,
            route,
            "accepted",
            SKIPPED,
            f"not sent: the Customer.io (Actions) destination would drop it ({outcome.dropped})",
        )
    status = outcome.http_status
    if status is not None and status in expect_status:
        message = spec.send_test.accepted.format(status=status)
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
        hint = spec.send_test.rejected_fix
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
    return any(c.status == FAILED for c in checks)


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
        run.report.extend(c for c in app_checks if c.status == FAILED)
    if any(p.route == "segment" for p in run.plans) and run.verify:
        # Facts only (doctor and check-keys report these checks): does the
        # settings lookup know the key, at which API host; with a token,
        # is the destination connected, writing to which site id.
        diagnosis.learn_checks(evidence, keys.check_segment(settings, http), settings)
    return any(c.id == "customerio.app" and c.status == FAILED for c in run.report.checks)


def _failed_precheck(run: _Run, route: str) -> Check | None:
    """A skipped `<route>.send` check when the route's precheck failed (the Track route's customerio.track)."""
    precheck = registry.get(route).precheck
    if precheck is None:
        return None
    check_id, service = precheck
    failed = next((c for c in run.report.checks if c.id == check_id and c.status == FAILED), None)
    if failed is None:
        return None
    why = (
        f"{service} rejected the credentials"
        if failed.failure == FAILURE_CREDENTIAL
        else f"{service} could not be reached"
    )
    return Check(f"{route}.send", route, "accepted", SKIPPED, f"not sent: {why} (see {check_id})")


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
            report.add(Check(f"{route}.{item.check_id}", route, "accepted", SKIPPED, text))
            continue
        outcome = send_one(run.settings, run.http, route, item.msg)
        expect_status = run.settings.config.send_test.expect_status
        check = accepted_check(route, item, outcome, expect_status, verbose=run.options.verbose)
        unreachable = check.status == FAILED and check.failure == FAILURE_UNREACHABLE
        report.add(check)
        learn_sends(run.evidence, route, check)
        any_accepted = any_accepted or check.status == PASSED
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
        run.report.add(Check(f"{route}.delivery", route, "delivered", SKIPPED, message, hint=hint))
    for route in run.targets:
        if run.expect:
            campaigns.skip_tiers(run.report, route, run.expect, "not checked: delivery was not verified")
    run.report.summary["verified"] = False


def _skip_delivery(run: _Run, message: str) -> None:
    for route in run.targets:
        run.report.add(Check(f"{route}.delivery", route, "delivered", SKIPPED, message))
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
        if run.expect and check.status == PASSED and target.person is not None:
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
    if check.status == PASSED and verified:
        # Delivery is proven: the accepted checks need no caveat.
        for sent in run.accepted.get(route, []):
            if sent.status == PASSED:
                sent.message = verified.format(status=sent.http_status) + (
                    sent_detail(sent.details) if run.options.verbose else ""
                )
    plan = next(p for p in run.plans if p.route == route)
    if check.status == PASSED and plan.anonymous_id:
        check.message += "; the anonymous events were merged into this person"
    return check


def _explain(report: Report, evidence: diagnosis.Evidence) -> None:
    """Causes on every failed check (details.causes), from this run's facts."""
    tiers = [c.id for c in report.checks if c.tier in campaigns.TIERS]
    sentence_for = [f"{r}.delivery" for r in registry.route_names()] + tiers
    diagnosis.explain_failures(report.checks, evidence, sentence_for=sentence_for)
    report.summary["diagnosis"] = diagnosis.summary(evidence)

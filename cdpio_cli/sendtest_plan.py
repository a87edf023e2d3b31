"""send-test's messages: the test person and events each route sends, with
the run id on every message and a fixed messageId (docs in sendtest.py)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from cdpio_cli import mapping
from cdpio_cli.errors import UsageError
from cdpio_cli.routes import registry
from cdpio_cli.settings import Settings
from cdpio_cli.verify import RUN_ID_KEY, ExpectedActivity, Target

PLATFORMS = ("ios", "android")

DEFAULT_EVENTS: list[dict[str, Any]] = [
    {"type": "track", "event": "Signed Up", "properties": {"plan_type": "Pro"}},
    {"type": "page", "name": "Pricing", "properties": {"url": "https://example.com/pricing"}},
    {"type": "screen", "name": "Home"},
]
ANONYMOUS_EVENT = "Viewed Pricing"


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
    anonymous_id = f"cdpio-anon-{route_run}" if options.anonymous_flow else None
    raw = _messages(settings, options, route_run, user_id, traits, anonymous_id)
    for _, msg, _ in raw:  # every message carries this run's id
        _tag(msg, run_id)
    return RoutePlan(
        route,
        user_id,
        email,
        anonymous_id,
        traits,
        _planned(raw, route_run, subscriptions),
        options.device_token,
        run_id,
        new_person="{run_id}" in template,
        subscriptions=subscriptions,
    )


def _messages(
    settings: Settings,
    options: SendTestOptions,
    route_run: str,
    user_id: str,
    traits: dict[str, Any],
    anonymous_id: str | None,
) -> list[tuple[str, dict, str]]:
    """(label, message, note) in sending order: the anonymous track, the
    identify, the events, the device registration."""
    cfg = settings.config.send_test
    events = copy.deepcopy(cfg.events) if cfg.events is not None else copy.deepcopy(DEFAULT_EVENTS)
    if options.events:
        events = [e for e in events if e.get("type") != "track"]
        events[0:0] = [{"type": "track", "event": name, "properties": {}} for name in options.events]
    events = _expand(events, route_run)
    raw: list[tuple[str, dict, str]] = []
    if anonymous_id:
        anonymous = {
            "type": "track",
            "anonymousId": anonymous_id,
            "event": ANONYMOUS_EVENT,
            "properties": {"source": "cdpio send-test"},
        }
        note = "sent anonymously; identify should merge it into the person"
        raw.append((f'anonymous track "{ANONYMOUS_EVENT}"', anonymous, note))
    identify = {"type": "identify", "userId": user_id, "traits": traits}
    if anonymous_id:
        identify["anonymousId"] = anonymous_id
    raw.append(("identify", identify, ""))
    for event in events:
        msg = {k: v for k, v in event.items()}
        msg.setdefault("userId", user_id)
        raw.append((_label(msg), msg, ""))
    if options.device_token:
        device = {
            "type": "track",
            "userId": user_id,
            "event": "Application Installed",
            "properties": {},
            "context": {"device": {"token": options.device_token, "type": options.platform}},
        }
        raw.append(('track "Application Installed"', device, "registers the device"))
    return raw


def _planned(raw: list[tuple[str, dict, str]], route_run: str, subscriptions: list | None) -> list[Planned]:
    """Unique labels, the library context and a fixed messageId on each
    message, and what the destination maps it to."""
    context = {"library": {"name": "cdpio", "version": _version()}}
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
    return items


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

"""Learning facts: what checks, plans and deliveries tell diagnosis.

Every fact gets a stable id (docs/diagnosis.md lists them).  Regions are
independent: Segment's comes from the settings lookup's API host (or the
Public API, or segment.region); Customer.io's from the Track API's region
endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdpio_cli.credentials import mask
from cdpio_cli.diagnosis.evidence import Evidence, Fact
from cdpio_cli.errors import FailureKind
from cdpio_cli.results import Check, Status

if TYPE_CHECKING:
    from cdpio_cli.mapping import Subscription
    from cdpio_cli.settings import Settings
    from cdpio_cli.verify import Target


def host_region(api_host: str | None) -> str | None:
    """The Segment region an API host names: `events.eu1.segmentapis.com` is EU,
    `api.segment.io` US (https://segment.com/docs/guides/regional-segment/)."""
    if not api_host:
        return None
    host = api_host.split("/")[0].lower()
    if ".eu1." in f".{host}" or host.startswith("eu1."):
        return "eu"
    if host.endswith(("segment.io", "segment.com", "segmentapis.com")):
        return "us"
    return None


# ---------------------------------------------------------------------------
# Service failures: 5xx, 429, too slow, unreachable
# ---------------------------------------------------------------------------


def _names_loopback(message: str) -> bool:
    """Does a transport error ("could not connect to 127.0.0.1:8975 (...)") name a loopback host?"""
    from cdpio_cli.transport import is_loopback

    match = re.search(r"connect(?:ing)? to (\[[^\]]+\]|[^\s:()]+)", message)
    return match is not None and is_loopback(match.group(1).strip("[]"))


def _reason(message: str) -> str:
    for head in ("could not reach ", "cannot read Customer.io: ", "cannot verify delivery: "):
        if head in message:
            message = message.split(head, 1)[1]
    return message.split(". Nothing further")[0]


def learn_service_failure(ev: Evidence, check: Check) -> Fact | None:
    """A check that failed because a service misbehaved: 5xx, 429, too slow, unreachable."""
    if check.status != Status.FAILED:
        return None
    status = check.http_status
    where = check.id
    if status is not None and status == 429:
        return ev.add(
            "service.rate_limited",
            f"{where}: the service answered 429 (too many requests) after retries",
            check=where,
            status=status,
        )
    if status is not None and status >= 500:
        return ev.add(
            "service.error_5xx", f"{where}: the service answered {status} after retries", check=where, status=status
        )
    if check.failure != FailureKind.UNREACHABLE or status is not None:
        return None
    return _learn_unreachable(ev, where, check.message)


def _learn_unreachable(ev: Evidence, where: str, text: str) -> Fact | None:
    """A request that got no answer: not made, too slow, refused on loopback, or unreachable."""
    from cdpio_cli.transport import answered_too_slowly

    lowered = text.lower()
    if "not sent:" in lowered and "deadline passed" in lowered:
        # The command's time ran out before this request was made: nothing was
        # learned about this service (the check that used the time says why).
        return None
    if answered_too_slowly(text) or "answered too slowly" in lowered:
        # It took the connection and then did not answer in time: up, but slow.
        return ev.add(
            "service.timed_out", f"{where}: the service did not answer in time ({_reason(text)})", check=where
        )
    if "could not connect" in lowered and _names_loopback(text):
        return ev.add(
            "service.refused_loopback",
            f"{where}: nothing listens on the loopback address ({_reason(text)})",
            check=where,
        )
    return ev.add("service.unreachable", f"{where}: the service could not be reached ({_reason(text)})", check=where)


# ---------------------------------------------------------------------------
# check-keys' checks (keys.py), whatever command ran them: one learner per check id
# ---------------------------------------------------------------------------


def _segment_write_key(ev: Evidence, c: Check, settings: Settings) -> None:
    if c.status == Status.PASSED:
        _segment_lookup_known(ev, c.details or {}, settings.region_for("segment"))
    elif c.http_status == 404:
        ev.add("segment.lookup.unknown", "Segment's settings lookup does not know this write key (404)")
    else:
        ev.add("segment.lookup.unavailable", "Segment's settings lookup could not be used")


def _segment_lookup_known(ev: Evidence, d: dict[str, Any], configured_region: str) -> None:
    """The settings lookup knows the write key: where the source sends, and whether it lists the destination."""
    host = d.get("api_host")
    region = host_region(host)
    ev.add(
        "segment.lookup.known",
        "Segment's settings lookup knows this write key" + (f" and says the source sends to {host}" if host else ""),
        api_host=host,
        region=region,
    )
    if d.get("lists_destination") is True:
        ev.add("segment.lookup.destination", "the settings lookup lists a Customer.io destination on this source")
    elif d.get("lists_destination") is False:
        ev.add("segment.lookup.no_destination", "the settings lookup lists no Customer.io destination on this source")
    if region and region != configured_region:
        ev.add(
            "segment.region.differs",
            f"the settings lookup says this source sends to {host}, but segment.region is {configured_region}",
            configured=configured_region,
            actual=region,
            source="settings lookup",
        )


def _segment_public_api_token(ev: Evidence, c: Check, settings: Settings) -> None:
    if c.status == Status.PASSED:
        ev.add("segment.public_api.ok", "the Segment Public API accepted the token")
    elif c.failure == "credential":
        region = settings.region_for("segment")  # a running sandbox may name it
        ev.add(
            "segment.public_api.rejected",
            f"the Segment Public API rejected the token on the {region.upper()} host",
            region=region,
        )


def _segment_source(ev: Evidence, c: Check, settings: Settings) -> None:
    if c.status == Status.PASSED:
        ev.add("segment.source.found", c.message)
    elif c.status == Status.FAILED and "disabled" in c.message:
        ev.add("segment.source.disabled", c.message)
    elif c.status == Status.FAILED and c.http_status == 200:
        ev.add("segment.source.missing", c.message)


def _segment_destination(ev: Evidence, c: Check, settings: Settings) -> None:
    d = c.details or {}
    site = d.get("site_id")  # masked by keys.py
    if c.status == Status.PASSED:
        ev.add(
            "segment.destination.enabled",
            "the Public API shows an enabled Customer.io destination" + (f" writing to site id {site}" if site else ""),
            site_id=site,
        )
        configured = settings.customerio.site_id
        if site and configured and d.get("site_id_matches") is False:
            ev.add(
                "segment.destination.site_differs",
                f"the Customer.io destination writes to site id {site}, but customerio.site_id is {mask(configured)}",
                destination=site,
                configured=mask(configured),
            )
    elif c.status == Status.FAILED and c.http_status == 200:
        if "a disabled" in c.message:
            ev.add("segment.destination.disabled", c.message)
        else:
            ev.add("segment.destination.missing", c.message)


def _customerio_track(ev: Evidence, c: Check, settings: Settings) -> None:
    d = c.details or {}
    if c.status == Status.PASSED:
        ev.add("customerio.track.ok", c.message, workspace=d.get("workspace_id"), region=d.get("region"))
    elif c.failure == "credential":
        ev.add("customerio.track.rejected", f"the Track API rejected the site id and Track API key ({c.http_status})")


def _customerio_region(ev: Evidence, c: Check, settings: Settings) -> None:
    detected = settings.detected_region
    if c.status != Status.FAILED or not detected:
        return
    configured = settings.config.customerio.region
    ev.add(
        "customerio.region.differs",
        f"the Track API says the workspace is in {detected.upper()}, but customerio.region is {configured}",
        configured=configured,
        detected=detected,
    )


def _customerio_app(ev: Evidence, c: Check, settings: Settings) -> None:
    if c.status == Status.PASSED:
        ev.add("customerio.app.ok", c.message)
    elif c.status == Status.FAILED and "works only in the" in c.message:
        region = "eu" if "works only in the EU" in c.message else "us"
        ev.add("customerio.app.other_region", c.message, region=region, detected=settings.detected_region)
    elif c.status == Status.FAILED and c.failure == "credential":
        ev.add("customerio.app.rejected", f"the App API rejected the key ({c.http_status})")


def _customerio_pipelines(ev: Evidence, c: Check, settings: Settings) -> None:
    if c.status == Status.PASSED:
        ev.add("pipelines.key.ok", c.message)
    elif c.status == Status.FAILED and c.failure == "credential":
        ev.add("pipelines.key.rejected", f"the Pipelines API rejected the key in strict mode ({c.http_status})")


CHECK_LEARNERS: dict[str, Callable[[Evidence, Check, Settings], None]] = {
    "segment.write_key": _segment_write_key,
    "segment.public_api_token": _segment_public_api_token,
    "segment.source": _segment_source,
    "segment.destination": _segment_destination,
    "customerio.track": _customerio_track,
    "customerio.region": _customerio_region,
    "customerio.app": _customerio_app,
    "customerio.pipelines": _customerio_pipelines,
}


def learn_checks(ev: Evidence, checks: Iterable[Check], settings: Settings) -> None:
    """Facts from check-keys' checks (keys.py), whatever command ran them."""
    for c in checks:
        if c.status == Status.FAILED:
            learn_service_failure(ev, c)
        learner = CHECK_LEARNERS.get(c.id)
        if learner is not None:
            learner(ev, c, settings)


# ---------------------------------------------------------------------------
# send-test's plan, the destination's subscriptions, and the deliveries
# ---------------------------------------------------------------------------


def learn_plan(ev: Evidence, plan: Any) -> None:
    """Facts from what send-test planned (sendtest.RoutePlan): mapping drops, anonymous-only events."""
    route = plan.route
    identified_anon = {
        i.msg.get("anonymousId")
        for i in plan.items
        if i.msg.get("type") == "identify" and i.msg.get("userId") and i.msg.get("anonymousId")
    }
    anonymous = [
        i.label
        for i in plan.items
        if i.msg.get("type") in ("track", "page", "screen")
        and not i.msg.get("userId")
        and i.msg.get("anonymousId")
        and i.msg.get("anonymousId") not in identified_anon
    ]
    if anonymous:
        ev.add(
            f"{route}.event_anonymous",
            f"{', '.join(anonymous)} was sent with only an anonymousId that no identify links to the test person",
            labels=anonymous,
        )
    if plan.subscriptions is not None:
        learn_subscriptions(ev, [(i.label, i.msg, f"{route}.{i.check_id}") for i in plan.items], plan.subscriptions)
    for item in plan.items:
        if not item.mapped.ok:
            ev.add(
                f"{route}.mapping_drop",
                f"the destination mapping drops {item.label}: {item.mapped.drop_reason}",
                label=item.label,
                reason=item.mapped.drop_reason,
            )


@dataclass(frozen=True)
class _Unsubscribed:
    """A message the destination's defaults would send but its subscriptions do not."""

    label: str
    why: str
    check_id: str
    title: str  # the subscription (or, with none for its action, the action) that would take it
    no_subscription: bool  # no subscription has its action


def learn_subscriptions(
    ev: Evidence,
    items: Iterable[tuple[str, Any, str]],
    subscriptions: tuple[Subscription, ...] | list[Subscription],
) -> None:
    """Facts from the destination's subscriptions (the config's or the Public
    API's): which of the (label, message, check id) `items` the destination's
    defaults would send but these subscriptions do not, because the
    subscription that would take it is disabled
    (`destination.subscription_disabled`) or its trigger excludes it, or no
    subscription has its action (`destination.subscription_excludes`)."""
    from cdpio_cli import mapping

    found: dict[str, list[_Unsubscribed]] = {}
    for label, msg, check_id in items:
        default = mapping.map_message(msg, check_limits=False)
        action = default.action
        if not default.ok or action is None:
            continue  # the defaults drop it too: not the subscriptions' doing
        reason = mapping.map_subscribed(msg, subscriptions).drop_reason or ""
        if not reason.startswith(mapping.DROP_NO_MAPPING):
            continue
        mine = [s for s in subscriptions if s.action == action]
        kind = "disabled" if mine and not any(s.enabled for s in mine) else "excludes"
        title = mine[0].title if mine else mapping.ACTIONS[action].title
        found.setdefault(kind, []).append(_Unsubscribed(label, reason.split(": ", 1)[1], check_id, title, not mine))
    for kind, rows in found.items():
        ev.add(
            f"destination.subscription_{kind}",
            "; ".join(dict.fromkeys(r.why for r in rows)),
            labels=[r.label for r in rows],
            checks=[r.check_id for r in rows],
            subscriptions=sorted({r.title for r in rows if not r.no_subscription}),
            missing=sorted({r.title for r in rows if r.no_subscription}),
        )


def learn_target(ev: Evidence, route: str, target: Target) -> None:
    """Facts from polling the App API for one route's test person."""
    if target.error is not None:
        return
    if target.nothing_arrived:
        ev.add(
            f"{route}.person_missing",
            f"the {route} test person ({target.who}) never appeared in Customer.io with this run's data",
        )
        return
    ev.add(f"{route}.person_arrived", f"the {route} test person ({target.who}) arrived in Customer.io")
    missing = [a.label for a in target.activities if a.found_at is None]
    if missing:
        ev.add(
            f"{route}.event_missing",
            f"the {route} test person arrived but {', '.join(missing)} did not",
            labels=missing,
        )
    if target.failed_attributes:
        ev.add(
            f"{route}.attribute_failed",
            "Customer.io logged an Attribute Update Failure "
            f"(failed_attribute_change) for {', '.join(target.failed_attributes)}",
            attributes=list(target.failed_attributes),
        )
    elif target.trait_mismatches():
        ev.add(
            f"{route}.traits_missing",
            f"the {route} test person arrived without {', '.join(sorted(target.trait_mismatches()))}",
            traits=sorted(target.trait_mismatches()),
        )

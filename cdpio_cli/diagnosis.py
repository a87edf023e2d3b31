"""Diagnosis: from what a run learned (facts) to why it failed (causes).

Every run of send-test and doctor collects what it found out into one
`Evidence`: the settings lookup knows the write key and names the source's API
host; the Public API shows the destination enabled with a siteId; the Track
credentials belong to a workspace in a region; the person arrived but not the
event; a service answered 503; and so on.  Each fact has a stable id.

Causes are rules over those facts, each with a stable id (docs/diagnosis.md
lists them with their fixes).  A rule returns nothing when the facts rule its
cause out, so a ruled-out cause is never printed; the causes that remain are
ordered by strength, and each names the fact it rests on.  send-test and
doctor both ask this module, so they cannot disagree.

Regions are independent: Segment's comes from the settings lookup's API host
(or the Public API, or segment.region); Customer.io's from the Track API's
region endpoint.  No rule ever compares the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cdpio_cli.credentials import mask
from cdpio_cli.results import FAILED, FAILURE_UNREACHABLE, PASSED, Check

# How strongly the facts point at a cause.
DIRECT = 3  # a fact shows it (a service said so)
LIKELY = 2  # the facts fit it and rule out the usual alternatives
POSSIBLE = 1  # not ruled out, but nothing points at it

ROUTES = ("segment", "customerio", "pipelines")
SANDBOX_FIX = "is the sandbox still running? (`cdpio sandbox`)"


@dataclass
class Fact:
    id: str
    text: str  # plain words: what the run saw
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, **({"data": self.data} if self.data else {})}


@dataclass
class Cause:
    id: str
    fact: str  # the id of the fact it rests on
    words: str  # the cause in plain words
    because: str  # that fact's text
    fix: str
    strength: int
    config: dict[str, str] = field(default_factory=dict)  # a cdpio.yaml change that fixes it

    @property
    def text(self) -> str:
        return f"{self.words} ({self.because})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "fact": self.fact,
            "text": self.text,
            "fix": self.fix,
            "strength": self.strength,
        }
        if self.config:
            out["config"] = self.config
        return out


class Evidence:
    """Everything one run learned, by fact id (the first sighting of a fact wins)."""

    def __init__(self) -> None:
        self.facts: dict[str, Fact] = {}

    def add(self, fact_id: str, text: str, **data: Any) -> Fact:
        # A service failure is a fact about one check: keep one per check.
        key = f"{fact_id}#{data['check']}" if fact_id.startswith("service.") and "check" in data else fact_id
        if key not in self.facts:
            self.facts[key] = Fact(fact_id, text, data)
        return self.facts[key]

    def has(self, *ids: str) -> bool:
        return any(i in self.facts for i in ids)

    def get(self, fact_id: str) -> Fact | None:
        return self.facts.get(fact_id)

    def to_list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.facts.values()]


# ---------------------------------------------------------------------------
# Learning facts
# ---------------------------------------------------------------------------


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


def _names_loopback(message: str) -> bool:
    """Does a transport error ("could not connect to 127.0.0.1:8975 (...)") name a loopback host?"""
    import re

    from cdpio_cli.transport import is_loopback

    match = re.search(r"connect(?:ing)? to (\[[^\]]+\]|[^\s:()]+)", message)
    return bool(match) and is_loopback(match.group(1).strip("[]"))


def learn_service_failure(ev: Evidence, check: Check) -> Fact | None:
    """A check that failed because a service misbehaved: 5xx, 429, too slow, unreachable."""
    if check.status != FAILED:
        return None
    status = check.http_status
    text = check.message
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
    if check.failure != FAILURE_UNREACHABLE or status is not None:
        return None
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


def _reason(message: str) -> str:
    for head in ("could not reach ", "cannot read Customer.io: ", "cannot verify delivery: "):
        if head in message:
            message = message.split(head, 1)[1]
    return message.split(". Nothing further")[0]


def learn_checks(ev: Evidence, checks: Iterable[Check], settings) -> None:
    """Facts from check-keys' checks (keys.py), whatever command ran them."""
    cfg_seg_region = settings.region_for("segment")  # a running sandbox may name it
    for c in checks:
        d = c.details or {}
        if c.status == FAILED:
            learn_service_failure(ev, c)
        if c.id == "segment.write_key":
            if c.status == PASSED:
                host = d.get("api_host")
                region = host_region(host)
                ev.add(
                    "segment.lookup.known",
                    "Segment's settings lookup knows this write key"
                    + (f" and says the source sends to {host}" if host else ""),
                    api_host=host,
                    region=region,
                )
                if d.get("lists_destination") is True:
                    ev.add(
                        "segment.lookup.destination",
                        "the settings lookup lists a Customer.io destination on this source",
                    )
                elif d.get("lists_destination") is False:
                    ev.add(
                        "segment.lookup.no_destination",
                        "the settings lookup lists no Customer.io destination on this source",
                    )
                if region and region != cfg_seg_region:
                    ev.add(
                        "segment.region.differs",
                        f"the settings lookup says this source sends to {host}, but segment.region is {cfg_seg_region}",
                        configured=cfg_seg_region,
                        actual=region,
                        source="settings lookup",
                    )
            elif c.http_status == 404:
                ev.add("segment.lookup.unknown", "Segment's settings lookup does not know this write key (404)")
            else:
                ev.add("segment.lookup.unavailable", "Segment's settings lookup could not be used")
        elif c.id == "segment.public_api_token":
            if c.status == PASSED:
                ev.add("segment.public_api.ok", "the Segment Public API accepted the token")
            elif c.failure == "credential":
                ev.add(
                    "segment.public_api.rejected",
                    f"the Segment Public API rejected the token on the {cfg_seg_region.upper()} host",
                    region=cfg_seg_region,
                )
        elif c.id == "segment.source":
            if c.status == PASSED:
                ev.add("segment.source.found", c.message)
            elif c.status == FAILED and "disabled" in c.message:
                ev.add("segment.source.disabled", c.message)
            elif c.status == FAILED and c.http_status == 200:
                ev.add("segment.source.missing", c.message)
        elif c.id == "segment.destination":
            site = d.get("site_id")  # masked by keys.py
            if c.status == PASSED:
                ev.add(
                    "segment.destination.enabled",
                    "the Public API shows an enabled Customer.io destination"
                    + (f" writing to site id {site}" if site else ""),
                    site_id=site,
                )
                configured = settings.customerio.site_id
                if site and configured and d.get("site_id_matches") is False:
                    ev.add(
                        "segment.destination.site_differs",
                        f"the Customer.io destination writes to site id {site}, but customerio.site_id "
                        f"is {mask(configured)}",
                        destination=site,
                        configured=mask(configured),
                    )
            elif c.status == FAILED and c.http_status == 200:
                if "a disabled" in c.message:
                    ev.add("segment.destination.disabled", c.message)
                else:
                    ev.add("segment.destination.missing", c.message)
        elif c.id == "customerio.track":
            if c.status == PASSED:
                ev.add("customerio.track.ok", c.message, workspace=d.get("workspace_id"), region=d.get("region"))
            elif c.failure == "credential":
                ev.add(
                    "customerio.track.rejected",
                    f"the Track API rejected the site id and Track API key ({c.http_status})",
                )
        elif c.id == "customerio.region" and c.status == FAILED and settings.detected_region:
            configured = settings.config.customerio.region
            ev.add(
                "customerio.region.differs",
                f"the Track API says the workspace is in {settings.detected_region.upper()}, but "
                f"customerio.region is {configured}",
                configured=configured,
                detected=settings.detected_region,
            )
        elif c.id == "customerio.app":
            if c.status == PASSED:
                ev.add("customerio.app.ok", c.message)
            elif c.status == FAILED and "works only in the" in c.message:
                region = "eu" if "works only in the EU" in c.message else "us"
                ev.add("customerio.app.other_region", c.message, region=region, detected=settings.detected_region)
            elif c.status == FAILED and c.failure == "credential":
                ev.add("customerio.app.rejected", f"the App API rejected the key ({c.http_status})")
        elif c.id == "customerio.pipelines":
            if c.status == PASSED:
                ev.add("pipelines.key.ok", c.message)
            elif c.status == FAILED and c.failure == "credential":
                ev.add("pipelines.key.rejected", f"the Pipelines API rejected the key in strict mode ({c.http_status})")


def learn_plan(ev: Evidence, plan) -> None:
    """Facts from what send-test planned: mapping drops, anonymous-only events."""
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


def learn_subscriptions(ev: Evidence, items: Iterable[tuple[str, Any, str]], subscriptions) -> None:
    """Facts from the destination's subscriptions (the config's or the Public
    API's): which of the (label, message, check id) `items` the destination's
    defaults would send but these subscriptions do not, because the
    subscription that would take it is disabled
    (`destination.subscription_disabled`) or its trigger excludes it, or no
    subscription has its action (`destination.subscription_excludes`)."""
    from cdpio_cli import mapping

    found: dict[str, list[tuple[str, str, str, str | None]]] = {}
    for label, msg, check_id in items:
        default = mapping.map_message(msg, check_limits=False)
        if not default.ok:
            continue  # the defaults drop it too: not the subscriptions' doing
        mapped = mapping.map_subscribed(msg, subscriptions)
        if mapped.ok or not (mapped.drop_reason or "").startswith(mapping.DROP_NO_MAPPING):
            continue
        why = mapped.drop_reason.split(": ", 1)[1]
        mine = [s for s in subscriptions if s.action == default.action]
        kind = "disabled" if mine and not any(s.enabled for s in mine) else "excludes"
        title = mine[0].title if mine else mapping.ACTIONS[default.action].title
        found.setdefault(kind, []).append((label, why, check_id, title, not mine))
    for kind, rows in found.items():
        ev.add(
            f"destination.subscription_{kind}",
            "; ".join(dict.fromkeys(r[1] for r in rows)),
            labels=[r[0] for r in rows],
            checks=[r[2] for r in rows],
            subscriptions=sorted({r[3] for r in rows if not r[4]}),
            missing=sorted({r[3] for r in rows if r[4]}),
        )


def learn_target(ev: Evidence, route: str, target) -> None:
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


# ---------------------------------------------------------------------------
# Rules: cause id -> the fact it rests on, or None when ruled out
# ---------------------------------------------------------------------------

Rule = Callable[[Evidence, str, Any], Cause | None]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def _c(cause_id: str, fact: Fact, text: str, fix: str, strength: int, **config: str) -> Cause:
    return Cause(
        cause_id, fact.id, text, fact.text, fix, strength, {k.replace("__", "."): v for k, v in config.items()}
    )


# --- services ---------------------------------------------------------------


@rule
def _service(ev: Evidence, route: str, check) -> Cause | None:
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
            return _c(cause_id, fact, text, fix, DIRECT + 2)
    return None


# --- Customer.io --------------------------------------------------------------


@rule
def _track_rejected(ev, route, check):
    fact = ev.get("customerio.track.rejected")
    if fact is None or ev.has(f"{route}.person_arrived"):
        return None
    return _c(
        "customerio.track_rejected",
        fact,
        "Customer.io rejected the Track API credentials (a wrong key): the site id or the Track API key is "
        "wrong, from another workspace, or an App API key was used",
        "copy the site id and Track API key as a pair from Customer.io > Account Settings > API Credentials "
        "> Track API Keys into customerio.site_id / customerio.track_api_key",
        DIRECT + 1,
    )


@rule
def _cio_region(ev, route, check):
    if route not in ("customerio", "doctor"):
        return None  # the Pipelines route already uses the detected region
    fact = ev.get("customerio.app.other_region")
    if fact is not None and fact.data.get("detected") is None:
        # No Track credentials said where the workspace is: the App key's region is the evidence.
        region = fact.data["region"]
        return _c(
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
    return _c(
        "customerio.region_mismatch",
        fact,
        f"wrong region: the Customer.io workspace is in {detected.upper()}; the App API answers 401 on the "
        "other region's host (this run used the detected region)",
        f"set customerio.region: {detected} (or auto) in cdpio.yaml",
        DIRECT + 1,
        customerio__region=detected,
    )


@rule
def _app_rejected(ev, route, check):
    fact = ev.get("customerio.app.rejected")
    if fact is None:
        return None
    return _c(
        "customerio.app_rejected",
        fact,
        "Customer.io rejected the App API key (a wrong key, or a Track API key used as an App key)",
        "create an App API key under Account Settings > API Credentials > App API Keys and set customerio.app_api_key",
        DIRECT + 1,
    )


@rule
def _app_other_workspace(ev, route, check):
    fact = ev.get("customerio.app.other_region")
    if fact is not None and fact.data.get("detected") is not None:
        return _c(
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
        or route not in ("customerio", "doctor")
        or not ev.has("customerio.track.ok")
        or ev.has("customerio.region.differs")
    ):
        return None
    return _c(
        "customerio.app_other_workspace",
        fact,
        "the App API key and the Track credentials belong to different workspaces: the Track API accepted "
        "the test person, but the App API cannot see it",
        "use an App API key from the same workspace as the Track API key (Account Settings > API Credentials)",
        LIKELY + 1,
    )


@rule
def _pipelines_rejected(ev, route, check):
    fact = ev.get("pipelines.key.rejected")
    if fact is None or route not in ("pipelines", "doctor"):
        return None
    return _c(
        "pipelines.key_rejected",
        fact,
        "the Pipelines API rejected the key in strict mode (a wrong key, or one from the other region)",
        "copy the API key of your Customer.io API source (Data & Integrations > Integrations) into "
        "customerio.pipelines_api_key",
        DIRECT + 1,
    )


@rule
def _pipelines_other_workspace(ev, route, check):
    fact = ev.get("pipelines.person_missing")
    if fact is None or route != "pipelines" or ev.has("pipelines.key.rejected"):
        return None
    return _c(
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
def _write_key_unknown(ev, route, check):
    if route not in ("segment", "doctor") or _segment_arrived(ev):
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
            return _c("segment.write_key_unknown", fact, text, fix, strength)
    fact = ev.get("segment.person_missing")
    if fact is None:
        return None
    return _c(
        "segment.write_key_unknown",
        fact,
        "the write key may be unknown to Segment (it answers 200 anyway and drops the events; the settings "
        "lookup could not confirm it)",
        fix,
        LIKELY,
    )


@rule
def _segment_region(ev, route, check):
    if route not in ("segment", "doctor") or _segment_arrived(ev):
        return None
    fact = ev.get("segment.region.differs")
    if fact is not None:
        actual = fact.data["actual"]
        return _c(
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
    return _c(
        "segment.region_mismatch",
        fact,
        "the Segment workspace may be in the other region than segment.region (nothing could confirm the region)",
        "check segment.region: it must be the region of your Segment workspace (not of Customer.io)",
        POSSIBLE,
    )


@rule
def _public_api_rejected(ev, route, check):
    fact = ev.get("segment.public_api.rejected")
    if fact is None or ev.has("segment.region.differs"):
        return None  # the token was asked on the wrong region's host
    return _c(
        "segment.public_api_token_rejected",
        fact,
        "the Segment Public API rejected segment.public_api_token",
        "create a Public API token (Settings > Workspace settings > Access Management > Tokens), or remove "
        "segment.public_api_token to skip the source/destination checks",
        DIRECT,
    )


@rule
def _source_disabled(ev, route, check):
    fact = ev.get("segment.source.disabled")
    if fact is None or _segment_arrived(ev):
        return None
    return _c(
        "segment.source_disabled",
        fact,
        "the Segment source is disabled",
        "enable the source in Segment (Connections > Sources > your source > Settings)",
        DIRECT + 1,
    )


@rule
def _destination_not_connected(ev, route, check):
    if route not in ("segment", "doctor") or _segment_arrived(ev):
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
            return _c(
                "segment.destination_not_connected",
                fact,
                f"{text}: Segment accepts the events with 200 and sends them nowhere",
                fix,
                strength,
            )
    fact = ev.get("segment.person_missing")
    if fact is None:
        return None
    return _c(
        "segment.destination_not_connected",
        fact,
        "the destination is not connected: the Customer.io (Actions) destination may not be connected to "
        "this source or may be disabled",
        fix + "; set segment.public_api_token so cdpio can check it",
        LIKELY,
    )


@rule
def _destination_other_workspace(ev, route, check):
    if route not in ("segment", "doctor") or _segment_arrived(ev):
        return None
    fact = ev.get("segment.destination.site_differs")
    if fact is not None:
        return _c(
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
    return _c(
        "segment.destination_other_workspace",
        fact,
        "the destination's Customer.io credentials may point at another workspace",
        "check the site id in the Customer.io (Actions) destination's settings; set "
        "segment.public_api_token so cdpio can compare it",
        POSSIBLE,
    )


@rule
def _destination_drops(ev, route, check):
    # What remains when the key, region, destination and its site id all check out.
    fact = ev.get("segment.person_missing")
    if (
        fact is None
        or route not in ("segment", "doctor")
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
    return _c(
        "segment.destination_drops",
        fact,
        "the destination's Track API key may be wrong (the Public API does not show it), or its "
        "subscriptions or filters drop every event",
        "in the Customer.io (Actions) destination, paste this workspace's Track API key and check its "
        "Mappings and Filters; Segment's Delivery Overview shows the destination's errors",
        POSSIBLE,
    )


# --- data -------------------------------------------------------------------


def _subscription_fact(ev: Evidence, route: str, check) -> Fact | None:
    """The subscription fact that explains this check: the check of a message the
    subscriptions do not send, or Segment's delivery check missing that message."""
    if route not in ("segment", "doctor") or check is None:
        return None
    missing = ev.get("segment.event_missing")
    for kind in ("disabled", "excludes"):
        fact = ev.get(f"destination.subscription_{kind}")
        if fact is None:
            continue
        if check.id in fact.data["checks"] or (
            check.id == "segment.delivery"
            and missing is not None
            and set(missing.data["labels"]) & set(fact.data["labels"])
        ):
            return fact
    return None


@rule
def _subscription_disabled(ev, route, check):
    fact = _subscription_fact(ev, route, check)
    if fact is None or fact.id != "destination.subscription_disabled":
        return None
    names = " and ".join(fact.data["subscriptions"]) or "the"
    return _c(
        "destination.subscription_disabled",
        fact,
        f"the destination's {names} subscription is disabled",
        f"in Segment, open the Customer.io (Actions) destination > Mappings and enable {names} "
        "(and customerio.subscriptions, if it lists them)",
        DIRECT + 1,
    )


@rule
def _subscription_excludes(ev, route, check):
    fact = _subscription_fact(ev, route, check)
    if fact is None or fact.id != "destination.subscription_excludes":
        return None
    steps = []
    if fact.data["subscriptions"]:
        whose = " and ".join(f"{name}'s" for name in fact.data["subscriptions"])
        steps.append(f"widen {whose} trigger")
    if fact.data["missing"]:
        steps.append(f"add a {' and a '.join(fact.data['missing'])} mapping")
    return _c(
        "destination.subscription_excludes_event",
        fact,
        "the destination's subscriptions drop it before it reaches Customer.io",
        f"in Segment, open the Customer.io (Actions) destination > Mappings and {' and '.join(steps)} "
        f"so that it takes {', '.join(fact.data['labels'])} (and customerio.subscriptions, if it "
        "lists them)",
        DIRECT + 1,
    )


@rule
def _mapping_drop(ev, route, check):
    fact = ev.get(f"{route}.mapping_drop")
    if (
        fact is None
        or check is None
        or not check.message.startswith("will not reach Customer.io")
        or _subscription_fact(ev, route, check) is not None
    ):
        return None
    return _c(
        "mapping.dropped",
        fact,
        "the Customer.io (Actions) destination's mapping drops the message",
        "fix the event (see `cdpio explain`), or change the destination's subscriptions",
        DIRECT + 1,
    )


@rule
def _anonymous(ev, route, check):
    fact = ev.get(f"{route}.event_anonymous")
    if fact is None or not ev.has(f"{route}.event_missing"):
        return None
    return _c(
        "plan.anonymous_never_identified",
        fact,
        "anonymous events never identified: the event carried only an anonymousId that no identify links "
        "to the person, so it stays on an anonymous profile",
        "send identify with the userId and the same anonymousId the earlier events carried (or send the "
        "event with the userId)",
        DIRECT + 1,
    )


@rule
def _event_dropped(ev, route, check):
    fact = ev.get(f"{route}.event_missing")
    if fact is None or ev.has(f"{route}.event_anonymous"):
        return None
    if route == "segment":
        return _c(
            "destination.event_subscription",
            fact,
            "the person arrived, so the key, destination and region are fine; the destination's Track "
            "Event subscription is disabled or filtered",
            "in Segment, open the Customer.io (Actions) destination > Mappings and enable Track Event "
            "(check its filters)",
            LIKELY,
        )
    return _c(
        "delivery.event_missing",
        fact,
        "the person arrived but Customer.io did not record the event",
        "check the event name and that it is sent with the person's userId; look at the person's "
        "activity log in Customer.io",
        LIKELY,
    )


@rule
def _attribute_failed(ev, route, check):
    fact = ev.get(f"{route}.attribute_failed")
    if fact is None:
        return None
    return _c(
        "customerio.attribute_update_failed",
        fact,
        "Customer.io accepted the identify but could not update the attributes (for example an email "
        "already on another person)",
        "use an email no other person has (send_test.traits.email with {run_id}), or merge the duplicate "
        "people in Customer.io",
        DIRECT + 1,
    )


@rule
def _traits_missing(ev, route, check):
    fact = ev.get(f"{route}.traits_missing")
    if fact is None or ev.has(f"{route}.attribute_failed"):
        return None
    return _c(
        "destination.identify_subscription",
        fact,
        "traits never sent: identify calls are not reaching Customer.io",
        "enable the Create or Update Person subscription in the Customer.io (Actions) destination",
        LIKELY,
    )


# --- segments and campaigns (the segmented and triggered tiers; campaigns.py) ---

CAMPAIGN_TIERS = ("segmented", "triggered")
CAMPAIGN_CAUSES = (
    "segment.still_building",
    "segment.trait_never_sent",
    "segment.condition_unmet",
    "segment.conditions_unmet",
    "campaign.trigger_event_differs",
    "campaign.trigger_event_not_sent",
    "campaign.not_running",
    "campaign.filter_segment_excludes",
    "campaign.trigger_segment_not_member",
    "campaign.actions_not_sending",
)


def _tier_fact(ev: Evidence, check, kind: str, name: str) -> Fact | None:
    """The fact `{kind}.{id}.{name}` about the segment or campaign this check is about."""
    if check is None or check.tier not in CAMPAIGN_TIERS:
        return None
    ident = (check.details or {}).get(f"{kind}_id")
    return None if ident is None else ev.get(f"{kind}.{ident}.{name}")


@rule
def _segment_building(ev, route, check):
    fact = _tier_fact(ev, check, "segment", "building")
    return fact and _c(
        "segment.still_building",
        fact,
        "the segment has not finished building, so membership is not known yet",
        "wait until the segment's state is finished, or raise verify.timeout",
        DIRECT,
    )


@rule
def _segment_trait(ev, route, check):
    fact = _tier_fact(ev, check, "segment", "trait_never_sent")
    return fact and _c(
        "segment.trait_never_sent",
        fact,
        "a trait the segment needs was never sent",
        f"send `{fact.data.get('attribute')}` in identify (send_test.traits, or your app's identify call)",
        DIRECT,
    )


@rule
def _segment_condition(ev, route, check):
    fact = _tier_fact(ev, check, "segment", "condition_unmet")
    return fact and _c(
        "segment.condition_unmet",
        fact,
        "the person does not meet the segment's conditions",
        "send the trait value or event the segment asks for, or fix the condition",
        LIKELY,
    )


@rule
def _segment_not_member(ev, route, check):
    fact = _tier_fact(ev, check, "segment", "not_member")
    return fact and _c(
        "segment.conditions_unmet",
        fact,
        "the person does not meet the segment's conditions (the App API does not show them)",
        "open the segment in Customer.io and compare its conditions with the traits and events this run sent",
        POSSIBLE,
    )


@rule
def _campaign_trigger_differs(ev, route, check):
    fact = _tier_fact(ev, check, "campaign", "trigger_differs")
    return fact and _c(
        "campaign.trigger_event_differs",
        fact,
        "the trigger event name differs from what was sent",
        f"make the campaign's trigger `{fact.data.get('sent')}`, or send `{fact.data.get('trigger')}` "
        "(names are case- and space-sensitive)",
        DIRECT,
    )


@rule
def _campaign_trigger_not_sent(ev, route, check):
    fact = _tier_fact(ev, check, "campaign", "trigger_not_sent")
    return fact and _c(
        "campaign.trigger_event_not_sent",
        fact,
        "the trigger event was not sent",
        f"send `{fact.data.get('trigger')}` (add it to send_test.events)",
        LIKELY,
    )


@rule
def _campaign_not_sending(ev, route, check):
    fact = _tier_fact(ev, check, "campaign", "not_sending")
    return fact and _c(
        "campaign.not_running",
        fact,
        "the campaign is not running or not active",
        "start the campaign in Customer.io (state running, active)",
        DIRECT + 1,
    )


@rule
def _campaign_filter(ev, route, check):
    fact = _tier_fact(ev, check, "campaign", "filter_excludes")
    return fact and _c(
        "campaign.filter_segment_excludes",
        fact,
        "a filter segment excludes the person",
        "make the test person match the filter segment (its traits and events), or change the filter",
        LIKELY,
    )


@rule
def _campaign_trigger_segment(ev, route, check):
    fact = _tier_fact(ev, check, "campaign", "trigger_segment")
    return fact and _c(
        "campaign.trigger_segment_not_member",
        fact,
        "the person never entered the trigger segment",
        "make the test person match the trigger segment's conditions",
        LIKELY,
    )


@rule
def _campaign_drafts(ev, route, check):
    fact = _tier_fact(ev, check, "campaign", "actions_not_sending")
    return fact and _c(
        "campaign.actions_not_sending",
        fact,
        "every action of the campaign is in draft or off",
        "set the actions' sending to automatic (Send automatically) in the campaign workflow",
        DIRECT,
    )


# ---------------------------------------------------------------------------
# Asking
# ---------------------------------------------------------------------------


def causes(ev: Evidence, route: str, check: Check | None = None) -> list[Cause]:
    """The causes the facts leave for a failure on `route` ("doctor": any), strongest first.

    A service failure of this very check explains it alone: nothing about keys
    or destinations follows from a 503."""
    found = [c for c in (r(ev, route, check) for r in RULES) if c is not None]
    if check is not None and check.tier in CAMPAIGN_TIERS:
        # The person arrived: only facts about this segment or campaign (or
        # this check's own service failure) can explain it.
        found = [c for c in found if c.id in CAMPAIGN_CAUSES or c.strength > DIRECT + 1]
    service = [c for c in found if c.strength > DIRECT + 1]
    if service:
        return service[:1]
    by_id: dict[str, Cause] = {}
    for c in sorted(found, key=lambda c: -c.strength):
        by_id.setdefault(c.id, c)
    return list(by_id.values())


def attach(check: Check, found: list[Cause], *, fix_prefix: str = "") -> None:
    """Put the causes on a failed check: details.causes, and the top one's fix as its hint."""
    if not found:
        return
    check.details = {**(check.details or {}), "causes": [c.to_dict() for c in found]}
    check.hint = fix_prefix + found[0].fix


def cause_sentence(found: list[Cause], message: str = "") -> str:
    """`Cause: A (fact). Also possible: B; C` for a check message (a fact the
    message already states is not repeated)."""
    if not found:
        return ""

    def said(c: Cause) -> str:
        return c.words if c.because.lower() in message.lower() else c.text

    text = f"Cause: {said(found[0])}"
    rest = [said(c) for c in found[1:]]
    if rest:
        text += ". Also possible: " + "; ".join(rest)
    return text


def diagnose(ev: Evidence, check: Check, *, route: str | None = None, fix_prefix: str = "") -> list[Cause]:
    """Learn from a failed check, then attach its causes."""
    learn_service_failure(ev, check)
    found = causes(ev, route or check.route, check)
    attach(check, found, fix_prefix=fix_prefix)
    return found


def summary(ev: Evidence) -> dict[str, Any]:
    return {"facts": ev.to_list()}


def region_note(settings) -> str | None:
    """The words for "this run used the detected Customer.io region", or None."""
    detected = settings.detected_region
    configured = settings.config.customerio.region
    if detected and configured not in ("auto", detected):
        return (
            f"this run used the detected {detected.upper()} region for every later Customer.io request "
            "(sends and App API reads)"
        )
    return None


def explain_failures(
    checks: Iterable[Check],
    ev: Evidence,
    *,
    fix_prefix: str = "",
    route: str | None = None,
    sentence_for: Iterable[str] = (),
) -> None:
    """Attach causes to every failed check not diagnosed yet; the checks named in
    `sentence_for` (the delivery checks, whose text alone cannot say why) also
    get the causes in their message."""
    sentence_for = set(sentence_for)
    for check in checks:
        if check.status != FAILED or "causes" in (check.details or {}):
            continue
        found = diagnose(ev, check, route=route, fix_prefix=fix_prefix)
        if found and check.id in sentence_for:
            check.message = check.message.rstrip(". ") + ". " + cause_sentence(found, check.message)


def segment_region_check(settings, checks: list[Check], ev: Evidence | None = None) -> list[Check]:
    """check_segment's checks, plus a failed `segment.region` right after the
    write key when the settings lookup names a source in the other Segment
    region (the Public API's 401 on the wrong host follows from it)."""
    ev = ev or Evidence()
    learn_checks(ev, checks, settings)
    differs = ev.get("segment.region.differs")
    if differs is None:
        return checks
    at = next(i for i, c in enumerate(checks) if c.id == "segment.write_key") + 1
    actual = differs.data["actual"]
    region = Check(
        "segment.region",
        "segment",
        "authenticated",
        FAILED,
        differs.text,
        failure="check",
        hint=f"set segment.region: {actual} in cdpio.yaml",
        file=str(settings.config_path) if settings.config_path else None,
        line=settings.loaded.line_of("segment.region"),
        details={"configured": differs.data["configured"], "detected": actual},
    )
    return [*checks[:at], region, *checks[at:]]

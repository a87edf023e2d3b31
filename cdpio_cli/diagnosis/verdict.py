"""Asking diagnosis: the causes of one failed check, and putting them on it.

`causes` asks every registered rule (rules_setup.py, rules_data.py) and keeps
what the facts leave, strongest first; `attach`, `cause_sentence` and
`explain_failures` put the causes on a check as details, hint and message.
send-test and doctor both ask here, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cdpio_cli.diagnosis import rules_data, rules_setup
from cdpio_cli.diagnosis.evidence import SERVICE, Cause, Evidence, Rule
from cdpio_cli.diagnosis.learn import learn_checks, learn_service_failure
from cdpio_cli.diagnosis.routes import SEGMENT
from cdpio_cli.errors import FailureKind
from cdpio_cli.results import Check, Status, Tier

if TYPE_CHECKING:
    from cdpio_cli.settings import Settings

# Every cause rule; the setup's come first, and this order breaks ties between causes of equal strength.
RULES: tuple[Rule, ...] = (*rules_setup.RULES, *rules_data.RULES)


def causes(ev: Evidence, route: str, check: Check | None = None) -> list[Cause]:
    """The causes the facts leave for a failure on `route` ("doctor": any), strongest first.

    A service failure of this very check explains it alone: nothing about keys
    or destinations follows from a 503."""
    found = [c for c in (r(ev, route, check) for r in RULES) if c is not None]
    if check is not None and check.tier in rules_data.CAMPAIGN_TIERS:
        # The person arrived: only facts about this segment or campaign (or
        # this check's own service failure) can explain it.
        found = [c for c in found if c.id in rules_data.CAMPAIGN_CAUSES or c.strength >= SERVICE]
    service = [c for c in found if c.strength >= SERVICE]
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


def region_note(settings: Settings) -> str | None:
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
        if check.status != Status.FAILED or "causes" in (check.details or {}):
            continue
        found = diagnose(ev, check, route=route, fix_prefix=fix_prefix)
        if found and check.id in sentence_for:
            check.message = check.message.rstrip(". ") + ". " + cause_sentence(found, check.message)


def segment_region_check(settings: Settings, checks: list[Check], ev: Evidence | None = None) -> list[Check]:
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
        id="segment.region",
        route=SEGMENT,
        tier=Tier.AUTHENTICATED,
        status=Status.FAILED,
        message=differs.text,
        failure=FailureKind.CHECK,
        hint=f"set segment.region: {actual} in cdpio.yaml",
        file=str(settings.config_path) if settings.config_path else None,
        line=settings.loaded.line_of("segment.region"),
        details={"configured": differs.data["configured"], "detected": actual},
    )
    return [*checks[:at], region, *checks[at:]]

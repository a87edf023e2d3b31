"""Cause rules about the data: subscriptions, mapping, events, traits, segments and campaigns.

Each rule returns the cause its facts point at, or None when the facts rule it
out.  Registered with `@rule` after rules_setup.py's, in the order of this
file; verdict.causes asks them all.
"""

from __future__ import annotations

from cdpio_cli.diagnosis.evidence import DIRECT, LIKELY, POSSIBLE, Cause, Evidence, Fact, Rule, make_cause, registry
from cdpio_cli.diagnosis.routes import SEGMENT, asks_about
from cdpio_cli.results import Check

RULES: list[Rule] = []  # in the order of this file
rule = registry(RULES)


def _subscription_fact(ev: Evidence, route: str, check: Check | None) -> Fact | None:
    """The subscription fact that explains this check: the check of a message the
    subscriptions do not send, or Segment's delivery check missing that message."""
    if not asks_about(route, SEGMENT) or check is None:
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
def _subscription_disabled(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _subscription_fact(ev, route, check)
    if fact is None or fact.id != "destination.subscription_disabled":
        return None
    names = " and ".join(fact.data["subscriptions"]) or "the"
    return make_cause(
        "destination.subscription_disabled",
        fact,
        f"the destination's {names} subscription is disabled",
        f"in Segment, open the Customer.io (Actions) destination > Mappings and enable {names} "
        "(and customerio.subscriptions, if it lists them)",
        DIRECT + 1,
    )


@rule
def _subscription_excludes(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _subscription_fact(ev, route, check)
    if fact is None or fact.id != "destination.subscription_excludes":
        return None
    steps = []
    if fact.data["subscriptions"]:
        whose = " and ".join(f"{name}'s" for name in fact.data["subscriptions"])
        steps.append(f"widen {whose} trigger")
    if fact.data["missing"]:
        steps.append(f"add a {' and a '.join(fact.data['missing'])} mapping")
    return make_cause(
        "destination.subscription_excludes_event",
        fact,
        "the destination's subscriptions drop it before it reaches Customer.io",
        f"in Segment, open the Customer.io (Actions) destination > Mappings and {' and '.join(steps)} "
        f"so that it takes {', '.join(fact.data['labels'])} (and customerio.subscriptions, if it "
        "lists them)",
        DIRECT + 1,
    )


@rule
def _mapping_drop(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get(f"{route}.mapping_drop")
    if (
        fact is None
        or check is None
        or not check.message.startswith("will not reach Customer.io")
        or _subscription_fact(ev, route, check) is not None
    ):
        return None
    return make_cause(
        "mapping.dropped",
        fact,
        "the Customer.io (Actions) destination's mapping drops the message",
        "fix the event (see `cdpio explain`), or change the destination's subscriptions",
        DIRECT + 1,
    )


@rule
def _anonymous(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get(f"{route}.event_anonymous")
    if fact is None or not ev.has(f"{route}.event_missing"):
        return None
    return make_cause(
        "plan.anonymous_never_identified",
        fact,
        "anonymous events never identified: the event carried only an anonymousId that no identify links "
        "to the person, so it stays on an anonymous profile",
        "send identify with the userId and the same anonymousId the earlier events carried (or send the "
        "event with the userId)",
        DIRECT + 1,
    )


@rule
def _event_dropped(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get(f"{route}.event_missing")
    if fact is None or ev.has(f"{route}.event_anonymous"):
        return None
    if route == SEGMENT:
        return make_cause(
            "destination.event_subscription",
            fact,
            "the person arrived, so the key, destination and region are fine; the destination's Track "
            "Event subscription is disabled or filtered",
            "in Segment, open the Customer.io (Actions) destination > Mappings and enable Track Event "
            "(check its filters)",
            LIKELY,
        )
    return make_cause(
        "delivery.event_missing",
        fact,
        "the person arrived but Customer.io did not record the event",
        "check the event name and that it is sent with the person's userId; look at the person's "
        "activity log in Customer.io",
        LIKELY,
    )


@rule
def _attribute_failed(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get(f"{route}.attribute_failed")
    if fact is None:
        return None
    return make_cause(
        "customerio.attribute_update_failed",
        fact,
        "Customer.io accepted the identify but could not update the attributes (for example an email "
        "already on another person)",
        "use an email no other person has (send_test.traits.email with {run_id}), or merge the duplicate "
        "people in Customer.io",
        DIRECT + 1,
    )


@rule
def _traits_missing(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = ev.get(f"{route}.traits_missing")
    if fact is None or ev.has(f"{route}.attribute_failed"):
        return None
    return make_cause(
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


def _tier_fact(ev: Evidence, check: Check | None, kind: str, name: str) -> Fact | None:
    """The fact `{kind}.{id}.{name}` about the segment or campaign this check is about."""
    if check is None or check.tier not in CAMPAIGN_TIERS:
        return None
    ident = (check.details or {}).get(f"{kind}_id")
    return None if ident is None else ev.get(f"{kind}.{ident}.{name}")


@rule
def _segment_building(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _tier_fact(ev, check, "segment", "building")
    if fact is None:
        return None
    return make_cause(
        "segment.still_building",
        fact,
        "the segment has not finished building, so membership is not known yet",
        "wait until the segment's state is finished, or raise verify.timeout",
        DIRECT,
    )


@rule
def _segment_trait(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _tier_fact(ev, check, "segment", "trait_never_sent")
    if fact is None:
        return None
    return make_cause(
        "segment.trait_never_sent",
        fact,
        "a trait the segment needs was never sent",
        f"send `{fact.data.get('attribute')}` in identify (send_test.traits, or your app's identify call)",
        DIRECT,
    )


@rule
def _segment_condition(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _tier_fact(ev, check, "segment", "condition_unmet")
    if fact is None:
        return None
    return make_cause(
        "segment.condition_unmet",
        fact,
        "the person does not meet the segment's conditions",
        "send the trait value or event the segment asks for, or fix the condition",
        LIKELY,
    )


@rule
def _segment_not_member(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _tier_fact(ev, check, "segment", "not_member")
    if fact is None:
        return None
    return make_cause(
        "segment.conditions_unmet",
        fact,
        "the person does not meet the segment's conditions (the App API does not show them)",
        "open the segment in Customer.io and compare its conditions with the traits and events this run sent",
        POSSIBLE,
    )


@rule
def _campaign_trigger_differs(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _tier_fact(ev, check, "campaign", "trigger_differs")
    if fact is None:
        return None
    return make_cause(
        "campaign.trigger_event_differs",
        fact,
        "the trigger event name differs from what was sent",
        f"make the campaign's trigger `{fact.data.get('sent')}`, or send `{fact.data.get('trigger')}` "
        "(names are case- and space-sensitive)",
        DIRECT,
    )


@rule
def _campaign_trigger_not_sent(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _tier_fact(ev, check, "campaign", "trigger_not_sent")
    if fact is None:
        return None
    return make_cause(
        "campaign.trigger_event_not_sent",
        fact,
        "the trigger event was not sent",
        f"send `{fact.data.get('trigger')}` (add it to send_test.events)",
        LIKELY,
    )


@rule
def _campaign_not_sending(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _tier_fact(ev, check, "campaign", "not_sending")
    if fact is None:
        return None
    return make_cause(
        "campaign.not_running",
        fact,
        "the campaign is not running or not active",
        "start the campaign in Customer.io (state running, active)",
        DIRECT + 1,
    )


@rule
def _campaign_filter(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _tier_fact(ev, check, "campaign", "filter_excludes")
    if fact is None:
        return None
    return make_cause(
        "campaign.filter_segment_excludes",
        fact,
        "a filter segment excludes the person",
        "make the test person match the filter segment (its traits and events), or change the filter",
        LIKELY,
    )


@rule
def _campaign_trigger_segment(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _tier_fact(ev, check, "campaign", "trigger_segment")
    if fact is None:
        return None
    return make_cause(
        "campaign.trigger_segment_not_member",
        fact,
        "the person never entered the trigger segment",
        "make the test person match the trigger segment's conditions",
        LIKELY,
    )


@rule
def _campaign_drafts(ev: Evidence, route: str, check: Check | None) -> Cause | None:
    fact = _tier_fact(ev, check, "campaign", "actions_not_sending")
    if fact is None:
        return None
    return make_cause(
        "campaign.actions_not_sending",
        fact,
        "every action of the campaign is in draft or off",
        "set the actions' sending to automatic (Send automatically) in the campaign workflow",
        DIRECT,
    )

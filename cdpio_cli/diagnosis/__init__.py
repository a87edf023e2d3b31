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
doctor both ask this package, so they cannot disagree.

Regions are independent: Segment's comes from the settings lookup's API host
(or the Public API, or segment.region); Customer.io's from the Track API's
region endpoint.  No rule ever compares the two.

The modules: evidence (facts, causes, strengths, the rule decorator), learn
(facts from checks, plans, deliveries), rules_setup and rules_data (the cause
rules), verdict (asking the rules, and putting causes on checks), routes (the
route names diagnosis knows).
"""

from cdpio_cli.diagnosis.evidence import Cause, Evidence, Fact
from cdpio_cli.diagnosis.learn import learn_checks, learn_plan, learn_subscriptions, learn_target
from cdpio_cli.diagnosis.verdict import (
    cause_sentence,
    causes,
    diagnose,
    explain_failures,
    region_note,
    segment_region_check,
    summary,
)

__all__ = [
    "Cause",
    "Evidence",
    "Fact",
    "cause_sentence",
    "causes",
    "diagnose",
    "explain_failures",
    "learn_checks",
    "learn_plan",
    "learn_subscriptions",
    "learn_target",
    "region_note",
    "segment_region_check",
    "summary",
]

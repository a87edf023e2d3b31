"""One table of Customer.io's limits (cdpio_cli/limits.py): lint, explain and
the sandbox give the same verdict on the same message, and every lint rule
id is exercised.

The corpus below triggers every lint rule.  Each entry is a message, the
rules lint must report on its line, and what happens to it: None (delivered
to Customer.io) or the drop reason.  lint (an error-severity finding on the
line), explain (`dropped`, `drop_reason`) and the sandbox (Segment Tracking
API -> destination -> Customer.io workspace, on a real socket) must all agree
with it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from cdpio_cli import explain, limits, lint, mapping, messages
from cdpio_cli.messages import Severity
from cdpio_cli.sandbox import defaults

NOW = datetime(2026, 1, 11, tzinfo=timezone.utc)
TS = "2026-01-10T12:00:00.000Z"
HTTP = httpx.Client(timeout=30)


def m(type_: str, **fields) -> dict:
    return {"type": type_, "timestamp": TS, **fields}


def ident(user_id, **traits):
    return m("identify", userId=user_id, traits={"email": f"{user_id}@example.com", **traits})


def track(user_id, event, **props):
    return m("track", userId=user_id, event=event, properties=props)


LONG_EVENT = "Order" + " Completed" * 11  # 115 bytes
LONG_URL = "https://example.com/" + "a" * 200  # a page's name is its URL: not limited
CIO_400 = limits.rejection_reason

# (message, rules lint reports on its line, drop reason or None)
CORPUS: list[tuple[object, set[str], str | None]] = [
    (ident("usr_1", plan_type="pro", created_at="2026-01-10T12:00:00Z"), set(), None),
    (track("usr_1", "Signed Up", plan_type="pro"), set(), None),
    (track("usr_1", "signed_up"), {"naming/event-title-case"}, None),
    (track("usr_1", "signed up"), {"naming/event-variants"}, None),
    (track("usr_1", "Signed Up 2026-01-09"), {"naming/dynamic-event-name"}, None),
    (track("usr_1", "Pricing"), {"naming/event-object-action"}, None),
    (track("usr_1", "Plan Changed", planName="pro"), {"naming/property-key-style"}, None),
    (track("usr_1", "Plan Changed", plan_name="pro"), {"naming/key-variants"}, None),
    (track("usr_1", "Plan Changed", plan_2026_01="pro"), {"naming/dynamic-property-key"}, None),
    (track(" usr_2", "Signed Up"), {"identity/user-id-whitespace"}, None),
    (track("USR_1", "Signed Up"), {"identity/user-id-variants"}, None),
    (m("identify", userId="ada@example.com", traits={"email": "ada@example.com"}), {"identity/mixed-id-kinds"}, None),
    (
        m("page", anonymousId="anon-7", properties={"url": "https://example.com/"}),
        {"identity/unlinked-anonymous"},
        None,
    ),
    (m("identify", userId="usr_3", traits={"plan_type": "pro"}), {"identity/identify-without-email"}, None),
    # Customer.io's limits: one rule each, Customer.io's own 400 message as the drop reason.
    (
        track("usr_1", LONG_EVENT),
        {"customerio/event-name-too-long"},
        CIO_400(limits.Violation(limits.EVENT_NAME, "too_long", "name", limits.EVENT_NAME.error)),
    ),
    # Over 100,000 bytes of event data is over Segment's 32 KB message limit
    # too: Segment answers 400 first (the Track API's own check is in
    # tests/test_sandbox_customerio.py).
    (
        track("usr_1", "Report Exported", blob="x" * 100_001),
        {"customerio/event-data-too-large", "spec/message-too-large"},
        "message_too_large",
    ),
    (
        ident("usr_1", **{f"attr_{i}": i for i in range(300)}),
        {"customerio/too-many-attributes"},
        "CUSTOMERIO_400: " + limits.ATTRIBUTE_COUNT.error,
    ),
    (
        ident("usr_1", **{"n" * 151: 1}),
        {"customerio/attribute-name-too-long"},
        "CUSTOMERIO_400: " + limits.ATTRIBUTE_NAME.error,
    ),
    (
        ident("usr_1", bio="é" * 501),
        {"customerio/attribute-value-too-long"},
        "CUSTOMERIO_400: value for attribute 'bio' cannot be longer than 1000 bytes",
    ),
    (track("u" * 151, "Signed Up"), {"customerio/id-too-long"}, "CUSTOMERIO_400: " + limits.PERSON_ID.error),
    # Under a limit by a byte: delivered everywhere.
    (track("usr_1", "E" * 100), set(), None),
    (ident("usr_1", bio="z" * 1000, **{"n" * 150: 1}), set(), None),
    (m("page", userId="usr_1", name="Long", properties={"url": LONG_URL}), set(), None),
    # The destination's drops.
    (
        m("page", userId="usr_1", name="Pricing", properties={}),
        {"customerio/page-without-url"},
        "MESSAGE_REJECTED: trackPageView requires properties.url",
    ),
    (
        m("screen", userId="usr_1", properties={}),
        {"customerio/screen-without-name"},
        "MESSAGE_REJECTED: trackScreenView requires name",
    ),
    (
        m(
            "track",
            anonymousId="anon-2",
            event="Application Installed",
            context={"device": {"type": "ios", "token": "abc"}},
        ),
        {"customerio/device-without-user-id"},
        "MESSAGE_REJECTED: createUpdateDevice requires userId",
    ),
    (
        m("track", userId="usr_1", event="Application Opened", context={"device": {"type": "ios"}}),
        {"customerio/device-without-token"},
        "MESSAGE_REJECTED: createUpdateDevice requires context.device.token",
    ),
    (
        m("track", userId="usr_1", event="Application Opened", context={"device": {"token": "abc"}}),
        {"customerio/device-without-type"},
        "MESSAGE_REJECTED: createUpdateDevice requires context.device.type",
    ),
    (
        m("track", userId="usr_1", event="Report Delivery Event", properties={}),
        {"customerio/dropped"},
        "MESSAGE_REJECTED: reportDeliveryEvent requires",
    ),
    # Hygiene that never drops.
    (track("usr_1", "Trial Started", trial_ends_at=1768046400000), {"customerio/millisecond-timestamp"}, None),
    ({**track("usr_1", "Signed Up"), "timestamp": "2025-01-01T00:00:00.000Z"}, {"customerio/old-event"}, None),
    (ident("usr_1", plan_type=3), {"traits/type-drift"}, None),
    (track("usr_1", "Signed Up", plan_type=2), {"properties/type-drift"}, None),
    # Segment's own spec: dropped on ingest with Segment's discard code.
    (m("track", event="Signed Up"), {"spec/no-identity"}, "no_user_anon_id"),
    (m("track", userId="usr_1"), {"spec/track-without-event"}, "event_not_defined"),
    (m("track", userId="usr_1", event=7), {"spec/event-not-string"}, "event_not_string"),
    (m("group", userId="usr_1"), {"spec/group-without-group-id"}, "id_required"),
    (m("alias", userId="usr_1"), {"spec/alias-without-previous-id"}, "id_required"),
    (m("alias", previousId="anon-1", anonymousId="anon-1"), {"spec/alias-without-user-id"}, "id_required"),
    (
        m("page", userId="usr_1", name=5, properties={"url": "https://example.com/"}),
        {"spec/name-not-string"},
        "name_not_string",
    ),
    (
        m("track", userId="usr_1", event="Signed Up", properties="x"),
        {"spec/properties-not-object"},
        "properties_not_object",
    ),
    (m("identify", userId="usr_1", traits="x"), {"spec/traits-not-object"}, "traits_not_object"),
    (m("track", userId="usr_1", event="Signed Up", context="x"), {"spec/context-not-object"}, "bad_request"),
    ({"userId": "usr_1", "event": "Signed Up"}, {"spec/missing-type"}, "bad_request"),
    (m("visit", userId="usr_1"), {"spec/unknown-type"}, "bad_request"),
    ("not an object", {"spec/not-an-object"}, "bad_request"),
]

# Spec findings about fields Segment fills in or rejects per request rather than
# per message: lint reports them, explain and the sandbox do not drop for them.
REQUEST_LEVEL = [
    ({**track("usr_1", "Signed Up"), "timestamp": "yesterday"}, "spec/bad-timestamp"),
    ({**track("usr_1", "Signed Up"), "messageId": 7}, "spec/message-id-not-string"),
    ({**track("usr_1", "Signed Up"), "messageId": "m" * 101}, "spec/message-id-too-long"),
]

ALL_RULES = set(lint.RULES) | set(messages.SPEC_RULES)
# input/unreadable needs a file that cannot be parsed: tests/test_lint.py (bad_lines.ndjson);
# the plan/* rules need a tracking plan: tests/test_plan.py fires each of them.
NOT_A_MESSAGE = {lint.INPUT_RULE} | {rule for rule in ALL_RULES if rule.startswith("plan/")}


@pytest.fixture(scope="module")
def linted():
    msgs = [c[0] for c in CORPUS] + [r[0] for r in REQUEST_LEVEL]
    return lint.lint_messages(
        msgs, now=NOW, max_per_rule=None, severity_overrides={"naming/event-object-action": "warning"}
    )


def test_the_corpus_triggers_every_lint_rule(linted):
    fired = {f.rule for f in linted.findings}
    assert ALL_RULES - NOT_A_MESSAGE <= fired, sorted(ALL_RULES - NOT_A_MESSAGE - fired)
    expected = set().union(*(c[1] for c in CORPUS)) | {r[1] for r in REQUEST_LEVEL}
    assert expected | NOT_A_MESSAGE == ALL_RULES


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=lambda i: ",".join(sorted(CORPUS[i][1])) or "clean")
def test_lint_reports_the_rule_on_its_line_and_errors_exactly_when_dropped(linted, index):
    _, rules, dropped = CORPUS[index]
    line = index + 1
    here = [f for f in linted.findings if f.line == line]
    assert rules <= {f.rule for f in here}, [(f.rule, f.message) for f in here]
    errors = [f for f in here if f.severity == Severity.ERROR]
    assert bool(errors) == (dropped is not None), [(f.rule, f.message) for f in here]


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=lambda i: ",".join(sorted(CORPUS[i][1])) or "clean")
def test_explain_gives_the_same_verdict(index):
    msg, _, dropped = CORPUS[index]
    exp = explain.explain_message(msg)
    if dropped is None:
        assert not exp.dropped, exp.verdict()
    else:
        assert exp.dropped and exp.drop_reason.startswith(dropped), exp.verdict()


def test_the_sandbox_gives_the_same_verdict(sandbox):
    # One message per request, as a batch of one (a non-object message too).
    accepted = []
    for msg, rules, dropped in CORPUS:
        r = HTTP.post(sandbox.url + "/segment/v1/batch", json={"batch": [msg]}, auth=(defaults.WRITE_KEY, ""))
        if dropped == "message_too_large":  # Segment refuses the request itself
            assert r.status_code == 400 and r.json()["code"] == "request_too_large", r.text
            continue
        assert r.status_code == 200, r.text
        accepted.append((msg, rules, dropped))
    rows = HTTP.get(sandbox.url + "/_sandbox/deliveries").json()["deliveries"]
    assert len(rows) == len(accepted)
    for (_msg, rules, dropped), row in zip(accepted, rows, strict=False):
        if dropped is None:
            assert row["status"] == "delivered", (rules, row)
        else:
            assert row["status"] != "delivered" and row["reason"].startswith(dropped), (rules, row)


def test_an_event_name_over_100_bytes_is_one_verdict_everywhere(sandbox):
    """The bug: explain said sent, lint said error, the sandbox dropped it."""
    msg = track("usr_9", LONG_EVENT)
    assert len(LONG_EVENT.encode()) > limits.EVENT_NAME.maximum
    exp = explain.explain_message(msg)
    assert exp.dropped and exp.drop_reason == "CUSTOMERIO_400: event name cannot be longer than 100 bytes"
    [finding] = [f for f in lint.lint_messages([msg], now=NOW).findings if f.severity == Severity.ERROR]
    assert finding.rule == "customerio/event-name-too-long" and f"{len(LONG_EVENT)} bytes" in finding.message
    HTTP.post(sandbox.url + "/segment/v1/track", json=msg, auth=(defaults.WRITE_KEY, ""))
    [row] = HTTP.get(sandbox.url + "/_sandbox/deliveries").json()["deliveries"]
    assert row["reason"] == exp.drop_reason


def test_lint_reports_every_limit_a_message_breaks():
    msg = ident("usr_1", **{"n" * 151: "v" * 1001})
    rules = [f.rule for f in lint.lint_messages([msg], now=NOW).findings]
    assert rules.count("customerio/attribute-name-too-long") == 1
    assert rules.count("customerio/attribute-value-too-long") == 1
    # explain and the sandbox name the first, as Customer.io answers with one error.
    assert mapping.map_message(msg).drop_reason == "CUSTOMERIO_400: " + limits.ATTRIBUTE_NAME.error


def test_lint_rules_for_limits_come_from_the_table():
    for limit in limits.TABLE:
        rule = lint.RULES[limit.rule]
        assert f"{limit.maximum:,}" in rule.summary and rule.severity == Severity.ERROR


def test_docs_show_the_table_and_every_rule_id():
    from pathlib import Path

    docs = Path(__file__).resolve().parent.parent / "docs"
    text = (docs / "lint.md").read_text() + (docs / "tracking-plans.md").read_text()
    for limit in limits.TABLE:
        row = next(
            (
                line
                for line in text.splitlines()
                if f"`{limit.rule}`" in line and line.startswith("| ") and f"{limit.maximum:,} {limit.unit}" in line
            ),
            None,
        )
        assert row is not None and limit.error.format(name="NAME") in row, limit.rule
    for rule in ALL_RULES:
        assert f"`{rule}`" in text, rule

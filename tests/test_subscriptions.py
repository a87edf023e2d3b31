"""The workspace's subscriptions: FQL triggers, the config's list, the Public API's."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpio_cli import explain, mapping
from tests.cli_helpers import run_cli, write_config

PRESETS = json.loads((Path(__file__).parent / "data" / "destination" / "presets.json").read_text())["presets"]


def test_default_subscriptions_are_the_destination_presets():
    """Same action, name and trigger (whitespace aside) as the destination's index.ts."""
    ours = {s.action: (s.name, s.trigger, s.enabled) for s in mapping.DEFAULT_SUBSCRIPTIONS}
    theirs = {p["partnerAction"]: (p["name"], p["subscribe"], True) for p in PRESETS}
    assert ours == theirs


EVENTS = list(mapping.SEMANTIC_EVENTS) + ["Signed Up", ""]
MESSAGES = st.fixed_dictionaries(
    {"type": st.sampled_from(["identify", "track", "page", "screen", "group", "alias", "flush"])},
    optional={
        "userId": st.sampled_from(["u1", "a@b.co", ""]),
        "anonymousId": st.just("an1"),
        "event": st.sampled_from(EVENTS),
        "groupId": st.just("g1"),
        "previousId": st.just("p1"),
        "name": st.just("Home"),
        "properties": st.fixed_dictionaries(
            {},
            optional={
                "url": st.just("https://x.io/"),
                "objectId": st.just("o1"),
                "deliveryId": st.just("d1"),
                "metric": st.just("opened"),
                "actionType": st.just("viewed_content"),
            },
        ),
        "context": st.just({"device": {"token": "t", "type": "ios"}}),
    },
)


@settings(max_examples=100, deadline=None)
@given(MESSAGES)
def test_default_subscriptions_evaluated_as_fql_route_like_map_message(msg):
    if msg["type"] != "track" and msg.get("event") in mapping.SEMANTIC_EVENTS:
        # `event = "User Deleted"` matches any message with that event field;
        # map_message's shortcut looks at track events only.
        return
    by_fql = mapping.map_subscribed(msg, mapping.DEFAULT_SUBSCRIPTIONS)
    direct = mapping.map_message(msg)
    assert (by_fql.action, by_fql.operations, by_fql.ok) == (direct.action, direct.operations, direct.ok)


@pytest.mark.parametrize(
    "trigger,msg,expected",
    [
        ('type = "track" and event = "Order Completed"', {"type": "track", "event": "Order Completed"}, True),
        ('type = "track" and event = "Order Completed"', {"type": "track", "event": "Signed Up"}, False),
        ('type = "track" and (event = "A" or event = "B")', {"type": "track", "event": "B"}, True),
        ('!contains(event, "Cart")', {"event": "Cart Viewed"}, False),
        ('type = "track" and event = "A" or event = "B"', {"type": "page", "event": "B"}, True),
        ('properties.total > 10 and properties.plan != "free"', {"properties": {"total": 12, "plan": "pro"}}, True),
        ("properties.total > 10", {"properties": {"total": "12"}}, False),
        ("properties.coupon = null", {"properties": {}}, True),
        ('match(event, "Order *")', {"event": "Order Shipped"}, True),
        ('contains(event, "Cart")', {"event": "Cart Viewed"}, True),
        ('context.device.type = "ios"', {"context": {"device": {"type": "ios"}}}, True),
    ],
)
def test_fql_triggers(trigger, msg, expected):
    assert mapping.trigger_matches(trigger, msg) is expected


@pytest.mark.parametrize("trigger", ['type ~ "track"', "type", "typo", '(type = "track"', ""])
def test_triggers_segment_cannot_parse_are_refused(trigger):
    with pytest.raises(mapping.TriggerError):
        mapping.check_trigger(trigger)


def _api_doc(subs) -> dict:
    return {
        "data": {
            "subscriptions": [
                {
                    "id": f"s{i}",
                    "name": s.name,
                    "actionId": "x",
                    "actionSlug": s.action,
                    "destinationId": "d",
                    "modelId": "",
                    "enabled": s.enabled,
                    "trigger": s.trigger,
                    "settings": {},
                }
                for i, s in enumerate(subs)
            ],
            "pagination": {"current": "MA==", "totalEntries": len(subs)},
        }
    }


def test_an_edited_workspace_names_the_cause():
    edited = [
        replace(s, enabled=False)
        if s.action == "trackPageView"
        else replace(s, trigger='type = "track" and event = "Order Completed"')
        if s.action == "trackEvent"
        else s
        for s in mapping.DEFAULT_SUBSCRIPTIONS
    ]
    subs = explain.subscriptions_from_api(_api_doc(edited))
    signed_up = explain.explain_message({"type": "track", "userId": "u1", "event": "Signed Up"}, subscriptions=subs)
    assert signed_up.dropped_by == explain.DESTINATION
    assert signed_up.drop_reason == (
        "NO_MATCHING_MAPPING: your Track Event subscription's trigger excludes `Signed Up`"
    )
    page = explain.explain_message(
        {"type": "page", "userId": "u1", "properties": {"url": "https://x.io/"}}, subscriptions=subs
    )
    assert page.drop_reason == (
        "NO_MATCHING_MAPPING: your Track Page View subscription is disabled, so it does not send page messages"
    )
    order = explain.explain_message({"type": "track", "userId": "u1", "event": "Order Completed"}, subscriptions=subs)
    assert order.action == "trackEvent" and order.operations[0]["name"] == "Order Completed"


def test_two_matching_subscriptions_both_send():
    subs = list(mapping.DEFAULT_SUBSCRIPTIONS) + [
        mapping.Subscription("createUpdatePerson", 'type = "track" and event = "Signed Up"', True, "Signup person")
    ]
    m = mapping.map_subscribed({"type": "track", "userId": "u1", "event": "Signed Up"}, subs)
    assert m.action == "trackEvent+createUpdatePerson"
    assert [(op["type"], op["action"]) for op in m.operations] == [("person", "event"), ("person", "identify")]


def test_unknown_api_action_is_refused_not_guessed():
    doc = _api_doc([mapping.Subscription("sendEmail", 'type = "track"', True, "Send Email")])
    with pytest.raises(ValueError, match="uses action 'sendEmail'"):
        explain.subscriptions_from_api(doc)


# --- CLI ------------------------------------------------------------------------


def _messages(tmp_path) -> str:
    path = tmp_path / "m.ndjson"
    path.write_text(
        json.dumps({"type": "track", "userId": "u1", "event": "Signed Up"})
        + "\n"
        + json.dumps({"type": "page", "userId": "u1", "properties": {"url": "https://x.io/"}})
        + "\n"
    )
    return str(path)


def test_cli_explain_uses_the_configured_subscriptions(tmp_path):
    write_config(
        tmp_path,
        """customerio:
  subscriptions:
    - action: trackEvent
      name: Track Event
      trigger: 'type = "track" and event = "Order Completed"'
    - action: trackPageView
      trigger: 'type = "page"'
""",
    )
    res = run_cli("explain", "--json", _messages(tmp_path), cwd=tmp_path)
    assert res.code == 0, res.output
    doc = res.json
    assert doc["summary"]["subscriptions"] == "config"
    first, second = doc["checks"]
    assert first["details"]["drop_reason"].endswith("your Track Event subscription's trigger excludes `Signed Up`")
    assert second["status"] == "passed" and second["id"] == "trackPageView"


def test_cli_explain_bad_configured_trigger_is_a_config_error(tmp_path):
    write_config(tmp_path, "customerio:\n  subscriptions:\n    - action: trackEvent\n      trigger: type ~ x\n")
    res = run_cli("explain", "--json", _messages(tmp_path), cwd=tmp_path)
    assert res.code == 2 and "Traceback" not in res.stderr
    message = res.json["error"]["message"]
    assert "customerio.subscriptions[0]" in message and "cdpio.yaml:2" in message


def test_cli_explain_reads_subscriptions_through_the_public_api(sandbox, tmp_path):
    res = run_cli("--sandbox-url", sandbox.url, "explain", "--json", _messages(tmp_path), cwd=tmp_path)
    assert res.code == 0, res.output
    doc = res.json
    assert doc["summary"]["subscriptions"] == "segment-api"
    assert [c["id"] for c in doc["checks"]] == ["trackEvent", "trackPageView"]
    assert "15 subscription(s) of destination" in res.stderr


# --- Segment's own trigger tests (packages/destination-subscriptions) ----------

DATA = Path(__file__).parent / "data" / "destination"
FQL_PARSE = json.loads((DATA / "fql-parse.json").read_text())["cases"]
FQL_VALIDATE = json.loads((DATA / "fql-validate.json").read_text())["cases"]


def _subset(actual, wanted) -> bool:
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(k in actual and _subset(actual[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(actual, list) and len(actual) == len(wanted) and all(map(_subset, actual, wanted))
    return actual == wanted


@pytest.mark.parametrize("case", FQL_PARSE, ids=[f"{i}: {c['fql']}" for i, c in enumerate(FQL_PARSE)])
def test_triggers_parse_like_segment(case):
    ast = mapping.parse_trigger(case["fql"])
    expect = case["expect"]
    if "error" in expect:
        assert "error" in ast
        if expect["error"]:
            assert ast["error"] == expect["error"]
    elif expect["compare"] == "subset":
        assert _subset(ast, expect["ast"])
    else:
        assert ast == expect["ast"]


@pytest.mark.parametrize("case", FQL_VALIDATE, ids=[f"{i}: {c['test']}" for i, c in enumerate(FQL_VALIDATE)])
def test_triggers_match_like_segment(case):
    data = None if case.get("data_undefined") else case["data"]
    assert mapping.condition_matches(case["ast"], data) is case["expect"]


def test_cli_explain_does_not_need_the_configs_secrets(tmp_path):
    """A config whose ${SECRETS} are unset (a laptop, a fork's CI) still explains, with the defaults."""
    write_config(
        tmp_path, "segment:\n  write_key: ${CDPIO_TEST_UNSET_WK}\n  public_api_token: ${CDPIO_TEST_UNSET_TOKEN}\n"
    )
    res = run_cli("explain", "--json", _messages(tmp_path), cwd=tmp_path)
    assert res.code == 0, res.output
    assert res.json["summary"]["subscriptions"] == "default"
    assert [c["id"] for c in res.json["checks"]] == ["trackEvent", "trackPageView"]


# --- the sandbox runs the workspace's subscriptions ---------------------------------

EDITED_YAML = """sandbox: true
customerio:
  subscriptions:
    - action: createUpdatePerson
      name: Create or Update Person
      trigger: 'type = "identify"'
    - action: trackEvent
      name: Track Event
      trigger: 'type = "track" and event = "Order Completed"'
    - action: trackPageView
      name: Track Page View
      trigger: 'type = "page"'
      enabled: false
"""


def test_embedded_sandbox_maps_segment_messages_through_the_configured_subscriptions(tmp_path):
    """A rehearsal drops what the real destination would drop, and its Public API serves the same list."""
    from types import SimpleNamespace

    import httpx

    from cdpio_cli.sandbox import defaults
    from cdpio_cli.settings import open_settings

    write_config(tmp_path, EDITED_YAML)
    with open_settings(SimpleNamespace(config=str(tmp_path / "cdpio.yaml"))) as settings:
        url = settings.sandbox_url
        auth = (defaults.WRITE_KEY, "")
        for event in ("Signed Up", "Order Completed"):
            r = httpx.post(
                url + "/segment/v1/track", auth=auth, json={"userId": "u1", "event": event, "messageId": event}
            )
            assert r.status_code == 200
        httpx.post(
            url + "/segment/v1/page",
            auth=auth,
            json={"userId": "u1", "properties": {"url": "https://x.io/"}, "messageId": "p"},
        )
        # Pipelines runs no Segment subscriptions.
        r = httpx.post(
            url + "/pipelines/v1/track",
            auth=(settings.customerio.pipelines_api_key, ""),
            json={"userId": "u1", "event": "Signed Up", "messageId": "direct"},
        )
        assert r.status_code == 200
        rows = {d["messageId"]: d for d in httpx.get(url + "/_sandbox/deliveries").json()["deliveries"]}
        subs = httpx.get(
            f"{settings.endpoint('segment_api')}/destinations/{defaults.SEGMENT_DESTINATION_ID}/subscriptions",
            headers={"Authorization": f"Bearer {settings.segment.public_api_token}"},
        ).json()
    assert rows["Order Completed"]["status"] == "delivered"
    assert rows["Signed Up"]["reason"] == (
        "NO_MATCHING_MAPPING: your Track Event subscription's trigger excludes `Signed Up`"
    )
    assert rows["p"]["reason"].endswith(
        "your Track Page View subscription is disabled, so it does not send page messages"
    )
    assert rows["direct"]["status"] == "delivered"
    served = [(s["actionSlug"], s["trigger"], s["enabled"]) for s in subs["data"]["subscriptions"]]
    assert served == [
        ("createUpdatePerson", 'type = "identify"', True),
        ("trackEvent", 'type = "track" and event = "Order Completed"', True),
        ("trackPageView", 'type = "page"', False),
    ]


def test_cli_send_test_names_the_excluding_subscription(tmp_path):
    """send-test on the embedded sandbox: the excluded event fails with its cause; nothing else is blamed."""
    write_config(
        tmp_path,
        EDITED_YAML
        + """send_test:
  events:
    - {type: track, event: Order Completed}
    - {type: track, event: Signed Up}
verify: {timeout: 5s, poll_interval: 50ms}
""",
    )
    res = run_cli("send-test", "--route", "segment", "--json", cwd=tmp_path)
    assert res.code == 1, res.output
    doc = res.json
    failed = [c for c in doc["checks"] if c["status"] == "failed"]
    assert [c["id"] for c in failed] == ["segment.track Signed Up"]
    [cause] = failed[0]["details"]["causes"]
    assert cause["id"] == "destination.subscription_excludes_event"
    assert cause["fact"] == "destination.subscription_excludes"
    assert "excludes `Signed Up`" in cause["text"]
    facts = {f["id"]: f for f in doc["summary"]["diagnosis"]["facts"]}
    assert facts["destination.subscription_excludes"]["data"]["labels"] == ['track "Signed Up"']
    # What the subscriptions send is delivered.
    assert next(c for c in doc["checks"] if c["id"] == "segment.delivery")["status"] == "passed"


def test_cli_doctor_names_the_subscription_that_excludes_your_event(tmp_path):
    """doctor --event NAME: the configured Track Event trigger excludes it, so that is the broken link."""
    write_config(
        tmp_path,
        """sandbox: true
customerio:
  subscriptions:
    - action: createUpdatePerson
      trigger: 'type = "identify"'
    - action: trackEvent
      name: Track Event
      trigger: 'type = "track" and event = "Signed Up"'
    - action: trackPageView
      trigger: 'type = "page"'
    - action: trackScreenView
      trigger: 'type = "screen"'
""",
    )
    res = run_cli("doctor", "--json", "--user-id", "u1", "--event", "Order Completed", cwd=tmp_path)
    assert res.code == 1, res.output
    doc = res.json
    failed = [c for c in doc["checks"] if c["status"] == "failed"]
    assert [c["id"] for c in failed] == ["segment.subscriptions"]
    assert doc["summary"]["broken_link"] == {"link": "destination subscriptions", "check": "segment.subscriptions"}
    causes = failed[0]["details"]["causes"]
    assert [(c["id"], c["fact"]) for c in causes] == [
        ("destination.subscription_excludes_event", "destination.subscription_excludes")
    ]
    assert "your Track Event subscription's trigger excludes `Order Completed`" in causes[0]["text"]
    facts = {f["id"]: f for f in doc["summary"]["diagnosis"]["facts"]}
    assert facts["destination.subscription_excludes"]["data"]["labels"] == ['track "Order Completed"']
    assert "destination.subscription_disabled" not in facts  # every subscription is enabled
    # The test events themselves are sent: the Segment send was not blamed.
    assert not any(c["status"] == "passed" and c["tier"] == "delivered" for c in doc["checks"])


def test_cli_doctor_passes_the_subscription_link_when_they_send_everything(tmp_path):
    write_config(
        tmp_path,
        "sandbox: true\nverify: {timeout: 5s, poll_interval: 50ms}\n"
        + "\n".join(EDITED_YAML.splitlines()[1:])
        .replace("enabled: false", "enabled: true")
        .replace('event = "Order Completed"', 'event = "Signed Up"')
        + "\n    - action: trackScreenView\n"
        "      trigger: 'type = \"screen\"'\n",
    )
    res = run_cli("doctor", "--json", cwd=tmp_path)
    assert res.code == 0, res.output
    link = next(c for c in res.json["checks"] if c["id"] == "segment.subscriptions")
    assert link["status"] == "passed" and "send every test event" in link["message"]

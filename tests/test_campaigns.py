"""Does my campaign fire?  The segmented and triggered tiers, end to end on
examples/campaigns (the embedded sandbox serving its workspace file), the
workspace file's checks and conditions, and the App API rate limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdpio_cli.errors import InputError
from cdpio_cli.workspace_file import load_workspace
from tests.cli_helpers import run_cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "campaigns"
GOOD = EXAMPLES / "cdpio.yaml"
BROKEN = EXAMPLES / "broken"


def _checks(result) -> dict[str, dict]:
    return {c["id"]: c for c in result.json["checks"]}


def _cause_ids(check: dict) -> list[str]:
    return [c["id"] for c in check.get("details", {}).get("causes", [])]


# ---------------------------------------------------------------------------
# The example, good and broken
# ---------------------------------------------------------------------------


def test_the_example_proves_delivered_then_segmented_then_triggered():
    r = run_cli("-c", str(GOOD), "send-test", "--json")
    assert r.code == 0, r.output
    checks = _checks(r)
    tiers = [c["tier"] for c in r.json["checks"] if c["status"] == "passed"]
    assert tiers.index("delivered") < tiers.index("segmented") < tiers.index("triggered")
    segment = checks["customerio.segment.Trial users"]
    assert segment["status"] == "passed" and segment["details"]["segment_id"] == 1
    campaign = checks["customerio.campaign.Onboarding"]
    assert campaign["status"] == "passed" and campaign["details"]["verdict"] == "delivered"
    assert campaign["details"]["campaign_id"] == 10


@pytest.mark.parametrize(
    "config, check_id, verdict, cause, words",
    [
        (
            "trigger-typo.cdpio.yaml",
            "customerio.campaign.Onboarding",
            "none",
            "campaign.trigger_event_differs",
            ["`Signed up`", "`Signed Up`", "case differs"],
        ),
        (
            "draft-action.cdpio.yaml",
            "customerio.campaign.Onboarding",
            "drafted",
            "campaign.actions_not_sending",
            ["sending_state draft", "100 Welcome email"],
        ),
        (
            "no-trial.cdpio.yaml",
            "customerio.segment.Trial users",
            "not_member",
            "segment.trait_never_sent",
            ["is_trial", "workspace.yaml:9"],
        ),
    ],
)
def test_each_broken_copy_fails_at_its_tier_with_its_cause(config, check_id, verdict, cause, words):
    r = run_cli("-c", str(BROKEN / config), "send-test", "--json", "--timeout", "1s")
    assert r.code == 1, r.output
    checks = _checks(r)
    assert checks["customerio.delivery"]["status"] == "passed"
    failed = [c["id"] for c in r.json["checks"] if c["status"] == "failed"]
    assert failed == [check_id]
    check = checks[check_id]
    assert check["details"]["verdict"] == verdict
    assert _cause_ids(check)[0] == cause
    text = check["message"] + " " + check["details"]["causes"][0]["text"]
    for word in words:
        assert word in text, text


@pytest.mark.slow
def test_a_campaign_that_is_stopped_names_that_cause_and_a_filter_segment_that_excludes(tmp_path):
    ws = tmp_path / "workspace.yaml"
    ws.write_text("""\
segments:
  - {id: 1, name: Trial users, conditions: [{attribute: is_trial, eq: "true"}]}
  - {id: 2, name: Enterprise, conditions: [{attribute: plan_type, eq: Enterprise}]}
campaigns:
  - {id: 10, name: Onboarding, state: stopped, trigger: {event: Signed Up},
     actions: [{id: 100, type: email}]}
  - {id: 11, name: Enterprise welcome, trigger: {event: Signed Up}, filter_segments: [2],
     actions: [{id: 110, type: email}]}
""")
    cfg = tmp_path / "cdpio.yaml"
    cfg.write_text(
        GOOD.read_text()
        .replace("workspace: workspace.yaml", f"workspace: {ws}")
        .replace("campaigns: [Onboarding]", "campaigns: [Onboarding, 11]")
    )
    r = run_cli("-c", str(cfg), "send-test", "--json", "--timeout", "2s")
    assert r.code == 1, r.output
    checks = _checks(r)
    assert checks["customerio.segment.Trial users"]["status"] == "passed"
    assert _cause_ids(checks["customerio.campaign.Onboarding"])[0] == "campaign.not_running"
    assert "campaign.filter_segment_excludes" in _cause_ids(checks["customerio.campaign.11"])


@pytest.mark.slow
def test_a_segment_still_building_is_not_a_verdict(tmp_path):
    ws = tmp_path / "workspace.yaml"
    ws.write_text(
        'segments:\n  - {id: 1, name: Trial users, state: build, conditions: [{attribute: is_trial, eq: "true"}]}\n'
    )
    cfg = tmp_path / "cdpio.yaml"
    cfg.write_text(
        GOOD.read_text()
        .replace("workspace: workspace.yaml", f"workspace: {ws}")
        .replace("campaigns: [Onboarding]", "campaigns: []")
    )
    r = run_cli("-c", str(cfg), "send-test", "--json", "--timeout", "1s")
    assert r.code == 1, r.output
    check = _checks(r)["customerio.segment.Trial users"]
    assert check["details"]["verdict"] == "building"
    assert check["message"].startswith("segment still building")
    assert _cause_ids(check) == ["segment.still_building"]


@pytest.mark.slow
def test_an_unknown_segment_or_campaign_name_fails_its_tier_and_says_so(tmp_path):
    cfg = tmp_path / "cdpio.yaml"
    cfg.write_text(
        GOOD.read_text()
        .replace("workspace: workspace.yaml", f"workspace: {EXAMPLES / 'workspace.yaml'}")
        .replace("segments: [Trial users]", "segments: [Trial userz]")
    )
    r = run_cli("-c", str(cfg), "send-test", "--json", "--timeout", "2s")
    assert r.code == 1, r.output
    check = _checks(r)["customerio.segment.Trial userz"]
    assert check["details"]["verdict"] == "unknown_segment" and "Trial userz" in check["message"]
    assert _checks(r)["customerio.campaign.Onboarding"]["status"] == "passed"


# ---------------------------------------------------------------------------
# The workspace file
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("segments:\n  - {id: 1, name: A, colour: red}\n", 2, "unknown key 'colour'"),
        ("campaigns:\n  - {id: 1, name: A,\n     trigger: {segment: 7}}\n", 3, "refers to segment 7"),
        ("segments:\n  - {id: 1, name: A, conditions: [{attribute: x, eq: 1, ne: 2}]}\n", 2, "exactly one of eq, ne"),
        (
            "campaigns:\n  - {id: 1, name: A, trigger: {event: X}, actions: [{id: 2, sending_state: paused}]}\n",
            2,
            "sending_state must be one of automatic, draft, off",
        ),
    ],
)
def test_a_bad_workspace_file_names_its_line(tmp_path, text, line, words):
    path = tmp_path / "ws.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_workspace(path)
    assert caught.value.line == line and words in caught.value.message


def test_cdpio_sandbox_and_the_config_refuse_a_bad_workspace_file_with_exit_2(tmp_path):
    bad = tmp_path / "ws.yaml"
    bad.write_text("segments:\n  - {id: 1, name: A}\ncampaigns:\n  - {id: 2, name: B, trigger: {segment: 9}}\n")
    r = run_cli("sandbox", "--port", "0", "--workspace", str(bad))
    assert r.code == 2 and f"{bad}:4" in r.stderr and "Traceback" not in r.output
    cfg = tmp_path / "cdpio.yaml"
    cfg.write_text(f"version: 1\nsandbox: {{enabled: true, workspace: {bad}}}\n")
    r = run_cli("-c", str(cfg), "send-test", "--json")
    assert r.code == 2 and r.json["exit_code"] == 2 and "refers to segment 9" in r.stdout


def test_conditions_compare_as_customerio_stores_attributes():
    from cdpio_cli.sandbox.people import stringify
    from cdpio_cli.workspace_file import Condition

    attrs = {"is_trial": stringify(True), "seats": stringify(5)}
    assert Condition(attribute="is_trial", op="eq", value="true").matches(attrs, [])
    assert not Condition(attribute="is_trial", op="eq", value="True").matches(attrs, [])
    assert Condition(attribute="seats", op="ne", value="6").matches(attrs, [])
    assert Condition(attribute="plan", op="ne", value="Pro").matches(attrs, [])  # absent: not equal
    assert Condition(attribute="plan", op="exists", value=False).matches(attrs, [])
    assert not Condition(attribute="plan", op="exists", value=True).matches(attrs, [])
    assert Condition(event="Signed Up").matches(attrs, ["Signed Up"])
    assert not Condition(event="Signed Up").matches(attrs, ["Signed up"])


# ---------------------------------------------------------------------------
# The App API's 10 requests/s, counted at the sandbox
# ---------------------------------------------------------------------------


@pytest.mark.slow  # a sweep: .ci/run runs it with -m slow
def test_no_command_exceeds_ten_app_api_requests_a_second(sandbox_factory, tmp_path):
    from cdpio_cli.limits import APP_API_RATE
    from cdpio_cli.sandbox.campaigns import AppRateLimit

    # 20 campaigns: `audit` reads 22 App API pages in a row, enough to need pacing.
    campaigns = "".join(
        f"  - {{id: {100 + i}, name: C{i}, trigger: {{event: Signed Up}}, "
        f"actions: [{{id: {1000 + i}, type: email}}]}}\n"
        for i in range(20)
    )
    ws = tmp_path / "workspace.yaml"
    ws.write_text((EXAMPLES / "workspace.yaml").read_text().split("campaigns:")[0] + "campaigns:\n" + campaigns)
    sb = sandbox_factory(workspace=str(ws))  # the default limit: 10 requests/s
    cfg = tmp_path / "cdpio.yaml"
    cfg.write_text(GOOD.read_text().replace("campaigns: [Onboarding]", "campaigns: [C0, C19]"))
    url = ["-c", str(cfg), "--sandbox-url", sb.url]
    commands = {
        "audit": ["audit", str(EXAMPLES / "events.ndjson")],
        "send-test": ["send-test", "--user-id", "rate-user"],
        "verify": ["verify", "--user-id", "rate-user", "--event", "Signed Up"],
    }
    for name, args in commands.items():
        # Each command's own requests, counted at the sandbox in any one second.
        sb.state.app_rate_limit = counter = AppRateLimit(APP_API_RATE)
        r = run_cli(*url, *args, "--json")
        assert r.code == 0, r.output
        assert counter.peak <= APP_API_RATE, f"{name}: {counter.peak} App API requests in one second"
        assert counter.refused == 0, f"{name} was answered 429"
        if name == "audit":
            assert r.json["summary"]["app_api_calls"] == 22
        if name == "verify":
            assert {c["tier"] for c in r.json["checks"]} >= {"segmented", "triggered"}


@pytest.mark.slow
def test_a_failed_send_quotes_the_failure_message(tmp_path):
    ws = tmp_path / "workspace.yaml"
    ws.write_text(
        (EXAMPLES / "workspace.yaml")
        .read_text()
        .replace(
            "sending_state: automatic}", 'sending_state: automatic, failure_message: "sending domain not verified"}', 1
        )
    )
    cfg = tmp_path / "cdpio.yaml"
    cfg.write_text(GOOD.read_text())
    r = run_cli("-c", str(cfg), "send-test", "--json", "--timeout", "5s")
    assert r.code == 1, r.output
    check = _checks(r)["customerio.campaign.Onboarding"]
    assert check["details"]["verdict"] == "failed"
    assert '"sending domain not verified"' in check["message"]
    assert check["details"]["messages"][0]["failure_message"] == "sending domain not verified"


def test_near_misses_are_the_same_words_spelled_differently():
    from cdpio_cli.near_miss import difference, near_miss

    sent = ["Order Completed", "Signed Up", "signed_up"]
    assert near_miss("Signed up", sent) == "Signed Up"
    assert near_miss("Signed  Up", ["Signed Up"]) == "Signed Up"
    assert near_miss("SignedUp", ["signed_up"]) == "signed_up"
    assert near_miss("Signed In", sent) is None
    assert difference("Signed up", "Signed Up").startswith("case differs")
    assert difference("Signed  Up", "Signed Up").startswith("spacing differs")
    assert difference("Signed Up", "signed_up").startswith("case and snake_case vs spaced words differ")


def test_a_429_from_the_app_api_is_waited_out_after_retry_after(sandbox_factory, tmp_path):
    # A sandbox stricter than Customer.io (1 request/s): audit's back-to-back reads
    # meet 429s, wait the Retry-After second, and still read the whole workspace.
    sb = sandbox_factory(workspace=str(EXAMPLES / "workspace.yaml"), app_api_rate=1)
    events = EXAMPLES / "events.ndjson"
    r = run_cli("-c", str(GOOD), "--sandbox-url", sb.url, "audit", str(events), "--json")
    assert r.code == 0, r.output
    assert r.json["summary"]["campaigns"] == 2 and r.json["summary"]["segments"] == 2
    assert sb.state.app_rate_limit.refused >= 1, "the sandbox never answered 429: the test proves nothing"
    assert r.json["summary"]["events"]["Signed Up"] == 2


@pytest.mark.slow
def test_verify_checks_the_tiers_for_a_person_the_app_sent(sandbox_factory):
    import httpx

    from cdpio_cli.sandbox import defaults

    sb = sandbox_factory(workspace=str(BROKEN / "trigger-typo.workspace.yaml"))
    auth = (defaults.SITE_ID, defaults.TRACK_API_KEY)
    assert httpx.put(f"{sb.url}/track/api/v1/customers/app-user", json={"is_trial": True}, auth=auth).status_code == 200
    assert (
        httpx.post(
            f"{sb.url}/track/api/v1/customers/app-user/events", json={"name": "Signed Up"}, auth=auth
        ).status_code
        == 200
    )
    r = run_cli(
        "-c",
        str(BROKEN / "trigger-typo.cdpio.yaml"),
        "--sandbox-url",
        sb.url,
        "verify",
        "--user-id",
        "app-user",
        "--event",
        "Signed Up",
        "--within",
        "2s",
        "--json",
    )
    assert r.code == 1, r.output
    checks = _checks(r)
    assert checks["customerio.segment.Trial users"]["status"] == "passed"
    campaign = checks["customerio.campaign.Onboarding"]
    assert campaign["status"] == "failed" and _cause_ids(campaign)[0] == "campaign.trigger_event_differs"

"""`cdpio audit`: the workspace's campaigns and segments against the data the app sends."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from cdpio_cli.sandbox import defaults
from tests.cli_helpers import run_cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "campaigns"
BROKEN_WS = EXAMPLES / "broken" / "audit.workspace.yaml"
EVENTS = EXAMPLES / "events.ndjson"


def _rules(result) -> dict[str, dict]:
    return {c["details"]["rule"]: c for c in result.json["checks"] if "rule" in c.get("details", {})}


def test_audit_reports_the_near_miss_the_all_draft_campaign_and_the_missing_segment():
    r = run_cli("audit", "--workspace", str(BROKEN_WS), str(EVENTS), "--json")
    assert r.code == 1, r.output
    rules = _rules(r)
    assert set(rules) == {"audit.trigger_event_near_miss", "audit.actions_not_sending", "audit.segment_missing"}
    near = rules["audit.trigger_event_near_miss"]
    assert near["message"].startswith(
        f"`Signed up` (campaign 10 Onboarding) vs `Signed Up` (2 messages in {EVENTS}:3…)"
    )
    assert near["details"] | {"severity": "error"} == near["details"]
    assert (near["file"], near["line"]) == (str(BROKEN_WS), 13)
    assert rules["audit.actions_not_sending"]["details"]["actions"] == {"110": "draft"}
    assert (
        rules["audit.segment_missing"]["details"] | {"segment_id": 3, "role": "filter"}
        == rules["audit.segment_missing"]["details"]
    )
    assert r.json["summary"]["findings"] == {"error": 3, "warning": 0}


@pytest.mark.slow
def test_audit_of_the_good_example_has_no_findings():
    r = run_cli("audit", "--workspace", str(EXAMPLES / "workspace.yaml"), str(EVENTS), "--json")
    assert r.code == 0, r.output
    assert _rules(r) == {}
    assert r.json["summary"]["events"]["Signed Up"] == 2


def test_audit_reads_the_workspace_from_the_app_api_with_junit_and_github_annotations(tmp_path):
    # The embedded sandbox serves the broken copy's workspace (sandbox.workspace).
    junit = tmp_path / "audit.xml"
    r = run_cli(
        "-c",
        str(EXAMPLES / "broken" / "trigger-typo.cdpio.yaml"),
        "audit",
        str(EVENTS),
        "--json",
        "--junit",
        str(junit),
        env={"GITHUB_ACTIONS": "true"},
    )
    assert r.code == 1, r.output
    assert set(_rules(r)) == {"audit.trigger_event_near_miss"}
    assert r.json["summary"]["workspace"] == "the App API"
    failures = ET.parse(junit).getroot().iter("failure")
    assert any("Signed up" in (f.get("message") or "") + (f.text or "") for f in failures)
    assert "::error file=" in r.stderr and "trigger-typo.workspace.yaml" in r.stderr


def test_a_trigger_nothing_sends_and_a_trait_no_identify_sends(tmp_path):
    data = tmp_path / "events.ndjson"
    data.write_text(
        json.dumps({"type": "identify", "userId": "u1", "traits": {"plan_type": "Pro"}})
        + "\n"
        + json.dumps({"type": "track", "userId": "u1", "event": "Order Completed"})
        + "\n"
    )
    r = run_cli("audit", "--workspace", str(EXAMPLES / "workspace.yaml"), str(data), "--json")
    assert r.code == 1, r.output
    rules = _rules(r)
    assert rules["audit.trigger_event_never_sent"]["details"]["trigger"] == "Signed Up"
    trait = rules["audit.segment_trait_never_sent"]
    assert trait["status"] == "warning" and trait["details"]["attribute"] == "is_trial"


@pytest.mark.slow
def test_warnings_for_a_building_segment_and_an_inactive_campaign_do_not_fail(tmp_path):
    ws = tmp_path / "ws.yaml"
    ws.write_text(
        "segments:\n  - {id: 1, name: Big, state: build}\n"
        "campaigns:\n  - {id: 2, name: Old, state: stopped, active: false, trigger: {event: Signed Up},\n"
        "     actions: [{id: 3, type: email}]}\n"
    )
    r = run_cli("audit", "--workspace", str(ws), str(EVENTS), "--json")
    assert r.code == 0, r.output
    rules = _rules(r)
    assert set(rules) == {"audit.segment_building", "audit.campaign_inactive"}
    assert {c["status"] for c in rules.values()} == {"warning"}
    assert rules["audit.campaign_inactive"]["line"] == 4


@pytest.mark.slow
def test_audit_reads_a_sandbox_record_file(sandbox_factory, tmp_path):
    record = tmp_path / "accepted.ndjson"
    sb = sandbox_factory(record=str(record))
    r = httpx.post(
        f"{sb.url}/segment/v1/batch",
        auth=(defaults.WRITE_KEY, ""),
        json={
            "batch": [
                {"type": "identify", "userId": "u1", "traits": {"is_trial": True}},
                {"type": "track", "userId": "u1", "event": "signed_up"},
            ]
        },
    )
    assert r.status_code == 200
    sb.stop()
    r = run_cli("audit", "--workspace", str(EXAMPLES / "workspace.yaml"), "--record", str(record), "--json")
    assert r.code == 1, r.output
    near = _rules(r)["audit.trigger_event_near_miss"]
    assert near["details"]["sent"] == "signed_up" and "snake_case" in near["message"]


def test_bad_input_exits_2_with_a_json_document(tmp_path):
    ws = tmp_path / "ws.yaml"
    ws.write_text("campaigns:\n  - {id: 1, name: A, trigger: {event: X}, colour: red}\n")
    r = run_cli("audit", "--workspace", str(ws), "--json")
    assert r.code == 2 and r.json["exit_code"] == 2
    assert f"{ws}:2" in r.stdout + r.stderr and "colour" in r.stdout
    r = run_cli("audit", "--workspace", str(EXAMPLES / "workspace.yaml"), str(tmp_path / "missing.ndjson"))
    assert r.code == 2 and "Traceback" not in r.output

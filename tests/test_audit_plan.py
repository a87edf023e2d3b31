"""`cdpio audit --plan`: the workspace's campaigns and segments held to the tracking plan."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cdpio_cli.plan import attribute_fit
from tests.cli_helpers import run_cli, write_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "campaigns"
PLAN = ROOT / "examples" / "tracking-plan.yaml"
PLAN_WS = EXAMPLES / "broken" / "plan.workspace.yaml"
EVENTS = EXAMPLES / "events.ndjson"


def _findings(result) -> dict[tuple[str, str], dict]:
    """(rule, subject) -> check, e.g. ("audit.segment_attribute_type", "segment 1")."""
    out = {}
    for check in result.json["checks"]:
        rule = check.get("details", {}).get("rule")
        if rule:
            out[(rule, check["id"].split(" ", 1)[1])] = check
    return out


def _plan_line(text: str) -> int:
    return next(i for i, line in enumerate(PLAN.read_text().splitlines(), 1) if line.strip().startswith(text))


def test_the_plan_alone_finds_each_disagreement_of_the_broken_workspace_at_its_line():
    r = run_cli("audit", "--workspace", str(PLAN_WS), "--plan", str(PLAN), "--json")
    assert r.code == 1, r.output
    found = _findings(r)
    assert {k: (c["line"], c["details"]["severity"]) for k, c in found.items()} == {
        ("audit.trigger_event_near_miss", "campaign 10"): (19, "error"),
        ("audit.trigger_event_unplanned", "campaign 12"): (28, "error"),
        ("audit.segment_attribute_type", "segment 1"): (13, "error"),
        ("audit.segment_attribute_value", "segment 3"): (15, "error"),
        ("audit.segment_attribute_unplanned", "segment 4"): (16, "error"),
        ("audit.segment_attribute_type", "segment 5"): (17, "warning"),  # `ne`: always true, not empty
    }
    assert all(c["file"] == str(PLAN_WS) and c["hint"] for c in found.values())
    near = found[("audit.trigger_event_near_miss", "campaign 10")]
    assert near["message"].startswith(
        f"`Signed up` (campaign 10 Onboarding) vs `Signed Up` (planned at {PLAN}:{_plan_line('Signed Up:')})"
    )
    assert near["details"]["source"] == "plan" and "case differs" in near["message"]
    assert found[("audit.trigger_event_unplanned", "campaign 12")]["details"]["trigger"] == "Upgrade Clicked"
    trial = found[("audit.segment_attribute_type", "segment 1")]
    assert trial["status"] == "failed" and trial["details"]["value"] == "yes"
    assert trial["details"]["expected"].startswith("boolean") and '"true" or "false"' in trial["message"]
    assert trial["details"]["plan_line"] == _plan_line("is_trial:")
    pro = found[("audit.segment_attribute_value", "segment 3")]
    assert '"pro"' in pro["details"]["expected"] and pro["details"]["value"] == "Pro"
    assert found[("audit.segment_attribute_type", "segment 5")]["status"] == "warning"
    assert r.json["summary"]["plan"] == str(PLAN)
    assert r.json["summary"]["findings"] == {"error": 5, "warning": 1}


def test_the_good_example_agrees_with_the_plan_a_boolean_trait_fits_eq_true():
    # Trial users is `is_trial eq "true"` and the plan's is_trial is a boolean: compatible.
    r = run_cli("audit", "--workspace", str(EXAMPLES / "workspace.yaml"), "--plan", str(PLAN), str(EVENTS), "--json")
    assert r.code == 0, r.output
    assert _findings(r) == {}
    assert r.json["summary"]["plan"] == str(PLAN) and r.json["summary"]["planned_events"] > 0


def test_data_and_plan_together_report_a_shared_near_miss_once(tmp_path):
    r = run_cli(
        "audit",
        "--workspace",
        str(EXAMPLES / "broken" / "audit.workspace.yaml"),
        "--plan",
        str(PLAN),
        str(EVENTS),
        "--json",
    )
    assert r.code == 1, r.output
    found = _findings(r)
    near = [c for c in r.json["checks"] if c.get("details", {}).get("rule") == "audit.trigger_event_near_miss"]
    assert [c["id"] for c in near] == ["audit.trigger_event_near_miss campaign 10"]
    # Trial Started is sent (events.ndjson) but not planned: only the plan finds it.
    assert found[("audit.trigger_event_unplanned", "campaign 12")]["details"]["trigger"] == "Trial Started"
    assert ("audit.trigger_event_never_sent", "campaign 12") not in found


def test_the_plan_comes_from_the_configs_lint_plan_relative_to_the_config(tmp_path):
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "plan.yaml").write_text(
        'events:\n  Signed Up: {}\nidentify:\n  traits:\n    is_trial: {type: string, enum: ["yes", "no"]}\n'
    )
    cfg = write_config(tmp_path, "version: 1\nlint:\n  plan: plans/plan.yaml\n")
    r = run_cli("-c", str(cfg), "audit", "--workspace", str(EXAMPLES / "workspace.yaml"), "--json")
    assert r.code == 1, r.output
    found = _findings(r)
    assert set(found) == {("audit.segment_attribute_value", "segment 1")}
    # A string enum of yes/no: "true" is a string, but not one the plan allows.
    assert found[("audit.segment_attribute_value", "segment 1")]["details"]["expected"] == 'one of "yes", "no"'
    assert r.json["summary"]["plan"] == str(tmp_path / "plans" / "plan.yaml")
    # --plan wins over the config's lint.plan.
    r = run_cli("-c", str(cfg), "audit", "--workspace", str(EXAMPLES / "workspace.yaml"), "--plan", str(PLAN), "--json")
    assert r.code == 0, r.output


def test_against_the_app_api_conditions_come_from_sandbox_workspace_with_junit(tmp_path):
    cfg = write_config(
        tmp_path, f"version: 1\nsandbox: {{enabled: true, workspace: {PLAN_WS}}}\nlint: {{plan: {PLAN}}}\n"
    )
    junit = tmp_path / "audit.xml"
    r = run_cli("-c", str(cfg), "audit", "--json", "--junit", str(junit))
    assert r.code == 1, r.output
    assert r.json["summary"]["workspace"] == "the App API"
    found = _findings(r)
    assert {
        ("audit.trigger_event_unplanned", "campaign 12"),
        ("audit.segment_attribute_type", "segment 1"),
        ("audit.segment_attribute_unplanned", "segment 4"),
    } <= set(found)
    text = ET.tostring(ET.parse(junit).getroot(), encoding="unicode")
    assert "Upgrade Clicked" in text and "lifetime_value" in text


def test_a_trait_whose_rule_refers_to_a_sibling_is_checked_like_lint_checks_it(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "events:\n  Signed Up: {}\nidentify:\n  traits:\n"
        "    trial_flag: {type: boolean}\n    is_trial: {$ref: '#/properties/trial_flag'}\n"
    )
    r = run_cli("audit", "--workspace", str(PLAN_WS), "--plan", str(plan), "--json")
    assert r.code == 1, r.output
    found = _findings(r)
    trial = found[("audit.segment_attribute_type", "segment 1")]  # "yes" against the referenced boolean
    assert trial["details"]["expected"].startswith("boolean, which Customer.io stores as")
    assert "Traceback" not in r.output


def test_a_bad_plan_exits_2_naming_its_line_under_json(tmp_path):
    bad = tmp_path / "plan.yaml"
    bad.write_text("events:\n  Signed Up: {}\nidentify:\n  traits:\n    is_trial: {type: bool}\n")
    r = run_cli("audit", "--workspace", str(EXAMPLES / "workspace.yaml"), "--plan", str(bad), "--json")
    assert r.code == 2 and r.json["exit_code"] == 2, r.output
    assert f"{bad}:5" in r.stdout and "Traceback" not in r.output


@pytest.mark.parametrize(
    "schema, value, fit",
    [
        ({"type": "boolean"}, "true", None),
        ({"type": "boolean"}, "false", None),
        ({"type": "boolean"}, "yes", "type"),
        ({"type": "boolean"}, "True", "type"),  # stored as lower-case "true"
        ({"type": "number"}, "30", None),
        ({"type": "number"}, "1.5", None),
        ({"type": "number"}, "yes", "type"),
        ({"type": "integer"}, "1.5", "type"),
        ({"type": "number", "minimum": 0}, "-1", "value"),
        ({"type": "string"}, "true", None),  # a string trait can hold the text "true"
        ({"type": "string", "enum": ["free", "pro"]}, "Pro", "value"),
        ({"type": "string", "format": "email"}, "nobody", "value"),
        ({"type": ["string", "null"]}, "null", None),
        ({}, "anything", None),
    ],
)
def test_what_is_compatible_when_customerio_compares_as_strings(schema, value, fit):
    result = attribute_fit({"trait": schema}, "trait", value)
    assert (result.problem if not result.ok else None) == fit

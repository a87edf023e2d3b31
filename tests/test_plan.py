"""Tracking plans: plan files, `lint --plan`, `plan infer/pull/diff`, send-test and explain
following the plan, and the example plan (docs/tracking-plans.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cdpio_cli import plan as plan_mod
from cdpio_cli.errors import ConfigError
from cdpio_cli.fixtures import Record
from cdpio_cli.sandbox import protocols
from tests.cli_helpers import run_cli, write_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = EXAMPLES / "fixtures"
EXAMPLE_PLAN = EXAMPLES / "tracking-plan.yaml"
CLEAN_SETS = [str(FIXTURES / n) for n in ("onboarding.ndjson", "ecommerce.ndjson", "mobile.yaml")]
ALL_SETS = [str(p) for p in sorted(FIXTURES.glob("*.ndjson"))] + [str(p) for p in sorted(FIXTURES.glob("*.yaml"))]

# The plan of issue 15 / docs/tracking-plans.md.
ISSUE_PLAN = """\
events:
  Signed Up:
    properties:
      plan_type: {type: string, enum: [Free, Pro, Enterprise]}
    required: [plan_type]
  Checkout Started:
    properties: {cart_value: {type: number, minimum: 0}}
    required: [cart_value]
identify:
  traits:
    email: {type: string, format: email}
    is_trial: {type: boolean}
    plan_type: {type: string, enum: [Free, Pro, Enterprise]}
  required: [email]
page: {properties: {url: {type: string}}, required: [url]}
unplanned_events: error        # error | warning | allow
unplanned_properties: warning  # error | warning | allow
"""

MESSAGES = [
    # 1: clean
    {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com", "is_trial": True, "plan_type": "Pro"}},
    # 2: not in enum (case)
    {"type": "track", "userId": "u1", "event": "Signed Up", "properties": {"plan_type": "pro"}},
    # 3: missing required
    {"type": "track", "userId": "u1", "event": "Checkout Started", "properties": {}},
    # 4: wrong type
    {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com", "is_trial": "true"}},
    # 5: format
    {"type": "identify", "userId": "u1", "traits": {"email": "not an email"}},
    # 6: unplanned event
    {"type": "track", "userId": "u1", "event": "Signed up", "properties": {}},
    # 7: unplanned property
    {"type": "track", "userId": "u1", "event": "Signed Up", "properties": {"plan_type": "Free", "coupon": "X"}},
    # 8: a constraint (minimum)
    {"type": "track", "userId": "u1", "event": "Checkout Started", "properties": {"cart_value": -5}},
]


def write_fixture(directory: Path, msgs=MESSAGES, name="events.ndjson") -> Path:
    path = directory / name
    path.write_text("".join(json.dumps(m) + "\n" for m in msgs), encoding="utf-8")
    return path


def plan_checks(result) -> list[dict]:
    return [c for c in result.json["checks"] if c["id"].startswith("plan/")]


# --- plan files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("events:\n  Signed Up:\n    properties:\n      plan_type: {type: strin}\n", 4, "not a valid JSON Schema"),
        ("events: {}\nidentfy:\n  traits: {}\n", 2, "did you mean identify"),
        ("events: {}\nunplanned_events: sometimes\n", 2, "use error, warning or allow"),
        ("events:\n  Signed Up:\n    properties: {a: {type: string}}\n    required: a\n", 4, "required must be a list"),
        ("events:\n  Signed Up:\n    propertes: {}\n", 3, "unknown key 'propertes'"),
        ("events:\n  Signed Up: {properties: {a: {type: string}\n", 2, "invalid YAML"),
    ],
)
def test_a_bad_plan_file_is_a_config_error_naming_file_and_line(tmp_path, text, line, words):
    plan = tmp_path / "plan.yaml"
    plan.write_text(text, encoding="utf-8")
    fixture = write_fixture(tmp_path)
    res = run_cli("--json", "lint", str(fixture), "--plan", str(plan), cwd=tmp_path)
    assert res.code == 2, res.output
    error = res.json["error"]["message"]
    assert f"{plan}:{line}:" in error and words in error, error
    assert "Traceback" not in res.stderr


def test_a_plan_that_is_not_utf8_names_the_line(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(b'events:\n  A: {}\n  "\xff": {}\n')
    res = run_cli("--json", "lint", str(write_fixture(tmp_path)), "--plan", str(plan), cwd=tmp_path)
    assert res.code == 2 and f"{plan}:3: the plan is not valid UTF-8" in res.json["error"]["message"]


def test_a_missing_plan_file_is_exit_2_with_the_way_to_start_one(tmp_path):
    res = run_cli("lint", str(write_fixture(tmp_path)), "--plan", "nope.yaml", cwd=tmp_path)
    assert res.code == 2
    assert "nope.yaml does not exist" in res.stderr and "cdpio plan infer" in res.stderr


# --- lint --plan ------------------------------------------------------------------------


def test_lint_plan_reports_each_rule_at_its_line_with_expected_and_actual(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(ISSUE_PLAN, encoding="utf-8")
    fixture = write_fixture(tmp_path)
    res = run_cli("--json", "lint", str(fixture), "--plan", str(plan), cwd=tmp_path)
    assert res.code == 1, res.stderr
    found = {(c["line"], c["id"]): c for c in plan_checks(res)}
    assert set(found) == {
        (2, "plan/not-in-enum"),
        (3, "plan/missing-required"),
        (4, "plan/wrong-type"),
        (5, "plan/format"),
        (6, "plan/unplanned-event"),
        (7, "plan/unplanned-property"),
        (8, "plan/constraint"),
    }
    assert all(c["file"] == str(fixture) for c in found.values())
    enum = found[(2, "plan/not-in-enum")]
    assert enum["details"]["actual"] == "pro" and '"Free", "Pro", "Enterprise"' in enum["details"]["expected"]
    assert 'the message had string "pro"' in enum["message"]
    wrong = found[(4, "plan/wrong-type")]
    assert (wrong["details"]["key"], wrong["details"]["expected"], wrong["details"]["actual"]) == (
        "is_trial",
        "boolean",
        "true",
    )
    assert found[(3, "plan/missing-required")]["details"]["key"] == "cart_value"
    assert found[(5, "plan/format")]["details"]["expected"] == "in email format"
    # The grading follows the plan: unplanned properties are warnings, the rest errors.
    assert found[(7, "plan/unplanned-property")]["status"] == "warning"
    assert found[(6, "plan/unplanned-event")]["status"] == "failed"
    assert found[(6, "plan/unplanned-event")]["hint"].startswith('did you mean "Signed Up"?')
    assert res.json["summary"]["plan"] == str(plan)


def test_keys_that_are_not_strings_are_judged_as_sent_not_a_crash(tmp_path):
    # YAML allows keys that are not strings; on the wire they are strings ("1"), so the
    # plan judges them that way (it used to stop with an internal error).
    plan = tmp_path / "plan.yaml"
    plan.write_text("events:\n  A B:\n    properties:\n      x: {type: object}\n    required: [x]\n", encoding="utf-8")
    fixture = tmp_path / "events.yaml"
    fixture.write_text(
        "- {type: track, userId: u1, event: A B, properties: {x: {1: 2}}}\n"
        "- {type: track, userId: u1, event: A B, properties: {1: 2}}\n"
        "- {type: track, userId: u1, event: A B, properties: {x: 3}}\n"
        "- {type: track, userId: u1, event: A B, properties: {y: {1: 2}}}\n",
        encoding="utf-8",
    )
    res = run_cli("--json", "lint", str(fixture), "--plan", str(plan), cwd=tmp_path)
    assert res.code == 1, res.stderr
    found = {(c["line"], c["id"]): c for c in plan_checks(res)}
    assert set(found) == {
        (2, "plan/unplanned-property"),
        (2, "plan/missing-required"),
        (3, "plan/wrong-type"),
        (4, "plan/missing-required"),
        (4, "plan/unplanned-property"),
    }
    assert found[(2, "plan/unplanned-property")]["details"]["key"] == "1"


def test_lint_without_a_plan_has_no_plan_findings(tmp_path):
    res = run_cli("--json", "lint", str(write_fixture(tmp_path)), cwd=tmp_path)
    assert plan_checks(res) == []


def test_the_config_names_the_plan_and_grades_plan_rules_like_any_rule(tmp_path):
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "tp.yaml").write_text(ISSUE_PLAN, encoding="utf-8")
    write_config(
        tmp_path,
        "version: 1\nlint:\n  plan: plans/tp.yaml\n  disable: [plan/unplanned-property]\n"
        "  severity: {plan/not-in-enum: warning, plan/unplanned-event: info}\n",
    )
    res = run_cli("--json", "lint", str(write_fixture(tmp_path)), cwd=tmp_path)
    by_id = {c["id"]: c["status"] for c in plan_checks(res)}
    assert "plan/unplanned-property" not in by_id
    assert by_id["plan/not-in-enum"] == "warning"
    assert by_id["plan/unplanned-event"] == "info"
    assert by_id["plan/wrong-type"] == "failed"
    assert res.json["summary"]["plan"] == str(tmp_path / "plans" / "tp.yaml")


@pytest.mark.parametrize("level, status", [("allow", None), ("warning", "warning"), ("error", "failed")])
def test_unplanned_events_level_comes_from_the_plan(tmp_path, level, status):
    plan = tmp_path / "plan.yaml"
    plan.write_text(ISSUE_PLAN.replace("unplanned_events: error", f"unplanned_events: {level}"), encoding="utf-8")
    res = run_cli("--json", "lint", str(write_fixture(tmp_path)), "--plan", str(plan), cwd=tmp_path)
    got = [c["status"] for c in plan_checks(res) if c["id"] == "plan/unplanned-event"]
    assert got == ([] if status is None else [status])


def test_a_wrong_type_is_not_also_reported_as_out_of_enum():
    plan = plan_mod.parse_plan(
        {"events": {"Signed Up": {"properties": {"plan_type": {"type": "string", "enum": ["Free", "Pro"]}}}}}, "p.yaml"
    )
    findings = plan_mod.PlanChecker(plan).findings(
        {"type": "track", "event": "Signed Up", "properties": {"plan_type": 3}}
    )
    assert [f[0] for f in findings] == ["plan/wrong-type"]


# --- the example plan ---------------------------------------------------------------------


def test_the_clean_example_sets_lint_clean_against_the_example_plan():
    res = run_cli("--json", "lint", *CLEAN_SETS, "--plan", str(EXAMPLE_PLAN), "--strict", cwd=ROOT)
    assert res.code == 0, res.stderr
    assert plan_checks(res) == []


def documented_plan_findings() -> dict[tuple[int, str], str]:
    text = (FIXTURES / "broken.README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*`(plan/[^`]+)`\s*\|\s*(\d+)\s*\|\s*(\w+)\s*\|", text, re.M)
    assert rows, "the README's plan table is gone"
    return {(int(line), rule): severity for rule, line, severity in rows}


def test_broken_set_reports_each_documented_plan_violation_at_its_line():
    res = run_cli(
        "--json", "lint", str(FIXTURES / "broken.ndjson"), "--plan", str(EXAMPLE_PLAN), "--max-per-rule", "0", cwd=ROOT
    )
    status_to_severity = {"failed": "error", "warning": "warning", "passed": "info"}
    fired = {(c["line"], c["id"]): status_to_severity[c["status"]] for c in plan_checks(res)}
    assert fired == documented_plan_findings()
    # Every plan rule of the issue shows up in the broken set.
    assert {rule for _, rule in fired} == {
        "plan/unplanned-event",
        "plan/unplanned-property",
        "plan/missing-required",
        "plan/wrong-type",
        "plan/not-in-enum",
        "plan/format",
    }


# --- plan infer ---------------------------------------------------------------------------


def test_infer_round_trips_on_the_example_fixtures(tmp_path):
    out = tmp_path / "plan.yaml"
    res = run_cli("--json", "plan", "infer", *ALL_SETS, "-o", str(out), cwd=ROOT)
    assert res.code == 0, res.stderr
    assert res.json["summary"]["unreadable"] == 1  # broken.ndjson:5, left out
    lint = run_cli("--json", "lint", *ALL_SETS, "--plan", str(out), "--max-per-rule", "0", cwd=ROOT)
    assert plan_checks(lint) == [], [c["message"] for c in plan_checks(lint)]
    assert lint.json["summary"]["messages"] == res.json["summary"]["messages"]
    # Stable: the same input gives the same bytes; sorted and commented.
    again = tmp_path / "again.yaml"
    run_cli("plan", "infer", *ALL_SETS, "-o", str(again), cwd=ROOT)
    text = out.read_text(encoding="utf-8")
    assert text == again.read_text(encoding="utf-8")
    events = re.findall(r"^  (\S.*):$", text[text.index("\nevents:") : text.index("\nidentify:")], re.M)
    assert events == sorted(events) and "Signed Up" in events
    assert text.startswith("# Tracking plan inferred by `cdpio plan infer`")
    assert "# 8 message(s); first at" in text


def test_infer_finds_types_required_keys_enums_and_formats():
    inferrer = plan_mod.Inferrer()
    msgs = [
        {
            "type": "track",
            "event": "Signed Up",
            "properties": {
                "plan_type": ["Free", "Pro"][i % 2],
                "seats": i,
                "coupon_id": "c1",
                "when": "2026-03-01T10:00:00Z",
                "contact": f"u{i}@example.com",
                **({"note": "x"} if i == 0 else {}),
            },
        }
        for i in range(6)
    ]
    msgs.append({"type": "identify", "userId": "u", "traits": {"is_trial": True, "age": None}})
    for i, m in enumerate(msgs, 1):
        inferrer.add(Record("f.ndjson", i, m))
    data = inferrer.plan_data()
    props = data["events"]["Signed Up"]["properties"]
    assert props["plan_type"] == {"type": "string", "enum": ["Free", "Pro"]}
    assert props["seats"] == {"type": "number"}
    assert props["coupon_id"] == {"type": "string"}  # an id is never an enum
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert props["contact"] == {"type": "string", "format": "email"}
    assert data["events"]["Signed Up"]["required"] == ["contact", "coupon_id", "plan_type", "seats", "when"]
    assert data["identify"] == {
        "traits": {"age": {"type": "null"}, "is_trial": {"type": "boolean"}},
        "required": ["is_trial"],
    }


def test_infer_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "plan.yaml"
    out.write_text("# mine\n", encoding="utf-8")
    res = run_cli("--json", "plan", "infer", CLEAN_SETS[0], "-o", str(out), cwd=tmp_path)
    assert res.code == 2 and "--force" in res.json["error"]["message"]
    assert out.read_text(encoding="utf-8") == "# mine\n"
    res = run_cli("plan", "infer", CLEAN_SETS[0], "-o", str(out), "--force", cwd=tmp_path)
    assert res.code == 0 and "Signed Up" in out.read_text(encoding="utf-8")


# --- plan pull (Segment Public API, sandbox) ------------------------------------------------


def test_plan_pull_reads_every_page_of_rules_and_converts_them(sandbox, tmp_path):
    out = tmp_path / "pulled.yaml"
    res = run_cli(
        "--sandbox-url", sandbox.url, "--json", "plan", "pull", "--page-size", "2", "-o", str(out), cwd=tmp_path
    )
    assert res.code == 0, res.stderr
    assert res.json["summary"]["tracking_plan_id"] == protocols.PLAN_ID  # the only LIVE plan
    assert res.json["summary"]["rules"] == len(protocols.RULES)
    rule_pages = [r for r in sandbox.state.requests if r["route"] == "segment_api.tracking_plan_rules"]
    assert len(rule_pages) == 3  # 6 rules, 2 per page
    pulled = plan_mod.load_plan(out)
    assert sorted(pulled.events) == ["Checkout Started", "Order Completed", "Signed Up"]  # deprecated left out
    assert pulled.data["events"]["Signed Up"]["properties"]["plan_type"]["enum"] == ["Free", "Pro", "Enterprise"]
    assert pulled.sections["identify"].required == ["email"]
    # The pulled plan is the issue's plan for these events: the diff shows only the extra event.
    issue = tmp_path / "issue.yaml"
    issue.write_text(ISSUE_PLAN, encoding="utf-8")
    diff = run_cli("--json", "plan", "diff", str(issue), str(out), cwd=tmp_path)
    assert [(c["kind"], c["where"]) for c in diff.json["summary"]["changes"]] == [("added", 'event "Order Completed"')]


def test_plan_pull_with_a_rejected_token_is_exit_3(sandbox, tmp_path):
    write_config(tmp_path, "version: 1\nsegment: {public_api_token: sgp_wrongwrongwrong}\n")
    res = run_cli("--sandbox-url", sandbox.url, "--json", "plan", "pull", cwd=tmp_path)
    assert res.code == 3, res.output
    assert "sgp_wrongwrongwrong" not in res.output


def test_plan_pull_of_an_unknown_plan_is_exit_2(sandbox, tmp_path):
    res = run_cli("--sandbox-url", sandbox.url, "--json", "plan", "pull", "--id", "tp_nope", cwd=tmp_path)
    assert res.code == 2 and "/tracking-plans/tp_nope" in res.json["error"]["message"]


# --- plan diff -------------------------------------------------------------------------------


def test_plan_diff_lists_added_removed_and_changed(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(ISSUE_PLAN, encoding="utf-8")
    b.write_text(
        ISSUE_PLAN.replace("Checkout Started", "Checkout Begun")
        .replace("enum: [Free, Pro, Enterprise]}\n    required", "enum: [Free, Pro]}\n    required")
        .replace("unplanned_properties: warning", "unplanned_properties: error")
        .replace("required: [email]", "required: [email, is_trial]"),
        encoding="utf-8",
    )
    res = run_cli("--json", "plan", "diff", str(a), str(b), cwd=tmp_path)
    assert res.code == 0
    changes = {(c["kind"], c["where"]) for c in res.json["summary"]["changes"]}
    assert changes == {
        ("added", 'event "Checkout Begun"'),
        ("removed", 'event "Checkout Started"'),
        ("changed", 'event "Signed Up" property plan_type'),
        ("changed", "identify required"),
        ("changed", "unplanned_properties"),
    }
    assert run_cli("plan", "diff", str(a), str(b), "--exit-code", cwd=tmp_path).code == 1
    assert run_cli("plan", "diff", str(a), str(a), "--exit-code", cwd=tmp_path).code == 0


# --- send-test and explain follow the plan ----------------------------------------------------


def test_send_test_fails_at_the_format_tier_before_any_http_call(sandbox, tmp_path):
    (tmp_path / "tp.yaml").write_text(ISSUE_PLAN.replace("{type: boolean}", "{type: string}"), encoding="utf-8")
    write_config(tmp_path, "version: 1\nlint: {plan: tp.yaml}\n")
    res = run_cli("--sandbox-url", sandbox.url, "--json", "send-test", "--no-verify", cwd=tmp_path)
    assert res.code == 1, res.stderr
    failed = [c for c in res.json["checks"] if c["status"] == "failed"]
    assert failed and all(c["tier"] == "format" for c in failed)
    assert any("is_trial" in c["message"] and c["details"]["rule"] == "plan/wrong-type" for c in failed)
    assert sandbox.state.request_count == 0  # nothing was sent, not even a key check


def test_send_test_plan_check_follows_lint_severity(sandbox, tmp_path):
    (tmp_path / "tp.yaml").write_text(ISSUE_PLAN.replace("{type: boolean}", "{type: string}"), encoding="utf-8")
    write_config(tmp_path, "version: 1\nlint: {plan: tp.yaml, severity: {plan/wrong-type: warning}}\n")
    res = run_cli(
        "--sandbox-url", sandbox.url, "--json", "send-test", "--no-verify", "--route", "segment", cwd=tmp_path
    )
    assert res.code == 0, res.stderr
    graded = [c for c in res.json["checks"] if c["tier"] == "format"]
    assert [c["status"] for c in graded] == ["warning"] and "is_trial" in graded[0]["message"]
    assert sandbox.state.request_count > 0


def test_send_test_defaults_that_follow_the_plan_are_sent(sandbox, tmp_path):
    (tmp_path / "tp.yaml").write_text(ISSUE_PLAN, encoding="utf-8")
    write_config(tmp_path, "version: 1\nlint: {plan: tp.yaml}\n")
    res = run_cli(
        "--sandbox-url", sandbox.url, "--json", "send-test", "--no-verify", "--route", "segment", cwd=tmp_path
    )
    assert res.code == 0, res.stderr
    assert not [c for c in res.json["checks"] if c["tier"] == "format" and c["status"] == "failed"]
    assert sandbox.state.request_count > 0


def test_explain_shows_the_plan_violation_next_to_the_mapping(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(ISSUE_PLAN, encoding="utf-8")
    fixture = write_fixture(tmp_path, MESSAGES[:2])
    res = run_cli("--json", "explain", str(fixture), "--plan", str(plan), cwd=tmp_path)
    first, second = res.json["checks"]
    assert first["status"] == "passed" and "plan" not in first["details"]
    assert second["details"]["action"] == "trackEvent" and second["details"]["operations"]
    assert second["details"]["plan"][0]["rule"] == "plan/not-in-enum"
    assert second["status"] == "warning"


def test_plan_rules_are_listed_with_the_other_lint_rules():
    from cdpio_cli import lint

    ids = {rid for rid, _, _ in lint.rules_table()}
    assert {
        "plan/unplanned-event",
        "plan/unplanned-property",
        "plan/missing-required",
        "plan/wrong-type",
        "plan/not-in-enum",
        "plan/format",
    } <= ids
    with pytest.raises(ConfigError):
        plan_mod.parse_plan({"events": {"A": {"properties": {"x": 3}}}}, "p.yaml")


def test_docs_name_every_plan_flag():
    import typer.main

    from cdpio_cli.cli.app import app

    docs = (ROOT / "docs" / "tracking-plans.md").read_text(encoding="utf-8")
    group = typer.main.get_command(app)
    flags = {
        opt
        for sub in group.commands["plan"].commands.values()
        for p in sub.params
        for opt in p.opts
        if opt.startswith("--") and opt != "--help"
    }
    assert flags >= {"--output", "--force", "--id", "--page-size", "--exit-code"}
    assert "## `cdpio plan`" in docs and "`cdpio lint --plan`" in docs
    assert not [f for f in flags if f not in docs]

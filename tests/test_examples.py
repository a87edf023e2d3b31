"""examples/ stays true: the configs load, the clean fixture sets lint clean
and replay with everything delivered, the broken set fires exactly the rules
its README documents, and the CI recipes only run commands and flags that
exist -- and, run for real against the sandbox, pass."""

from __future__ import annotations

import re
import shlex
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import yaml

from cdpio_cli.config import load_config, secret_fields
from cdpio_cli.errors import ConfigError
from cdpio_cli.fixtures import iter_records
from cdpio_cli.sandbox import defaults
from tests.cli_helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = EXAMPLES / "fixtures"
CLEAN_SETS = ["onboarding.ndjson", "ecommerce.ndjson", "mobile.yaml"]
CI_RECIPES = [EXAMPLES / "ci" / "github-actions.yml", EXAMPLES / "ci" / "gitlab-ci.yml"]

# What the real-account template reads, set to the sandbox's keys so the
# recipes' real-account job can run against a local sandbox.
REAL_ENV = {
    "SEGMENT_WRITE_KEY": defaults.WRITE_KEY,
    "SEGMENT_PUBLIC_API_TOKEN": defaults.PUBLIC_API_TOKEN,
    "CUSTOMERIO_SITE_ID": defaults.SITE_ID,
    "CUSTOMERIO_TRACK_API_KEY": defaults.TRACK_API_KEY,
    "CUSTOMERIO_APP_API_KEY": defaults.APP_API_KEY,
    "CUSTOMERIO_PIPELINES_API_KEY": defaults.PIPELINES_API_KEY,
}


def message_ids(name: str) -> list[str]:
    return [r.message["messageId"] for r in iter_records([str(FIXTURES / name)])]


# --- configs ----------------------------------------------------------------------------


def test_real_account_template_reads_every_credential_from_the_environment():
    loaded = load_config(EXAMPLES / "cdpio.yaml", env=REAL_ENV)
    cfg = loaded.config
    assert cfg.segment.write_key == defaults.WRITE_KEY
    assert cfg.customerio.track_api_key == defaults.TRACK_API_KEY
    assert (cfg.segment.region, cfg.customerio.region) == ("us", "auto")
    assert not cfg.sandbox.enabled
    # Every credential comes from an env var: the file itself holds no secret.
    for dotted in secret_fields():
        assert loaded.env_vars.get(tuple(dotted.split("."))), f"{dotted} is not read from an env var"


def test_real_account_template_names_a_missing_secret():
    env = {k: v for k, v in REAL_ENV.items() if k != "CUSTOMERIO_TRACK_API_KEY"}
    with pytest.raises(ConfigError, match="CUSTOMERIO_TRACK_API_KEY") as err:
        load_config(EXAMPLES / "cdpio.yaml", env=env)
    assert err.value.line is not None
    # The optional ones may be unset.
    required = {"SEGMENT_WRITE_KEY", "CUSTOMERIO_SITE_ID", "CUSTOMERIO_TRACK_API_KEY"}
    load_config(EXAMPLES / "cdpio.yaml", env={k: REAL_ENV[k] for k in required})


def test_sandbox_config_loads_with_no_environment():
    cfg = load_config(EXAMPLES / "sandbox.cdpio.yaml", env={}).config
    assert cfg.sandbox.enabled
    assert cfg.segment.write_key is None  # the sandbox supplies its own local keys


# --- fixture sets: lint ------------------------------------------------------------------


def test_clean_fixture_sets_lint_with_no_errors_or_warnings():
    files = [str(FIXTURES / n) for n in CLEAN_SETS]
    res = run_cli("--json", "lint", *files, "--strict", cwd=ROOT)
    assert res.code == 0, res.stderr
    s = res.json["summary"]
    assert (s["findings"]["error"], s["findings"]["warning"]) == (0, 0), res.stderr
    assert s["messages"] == sum(len(message_ids(n)) for n in CLEAN_SETS)
    # The only finding allowed is the clock-dependent "older than 72 hours" info.
    assert {c["id"] for c in res.json["checks"] if c["id"] != "lint"} <= {"customerio/old-event"}


def documented_findings() -> dict[tuple[int, str], str]:
    text = (FIXTURES / "broken.README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|", text, re.M)
    assert rows, "the README's table is gone"
    return {(int(line), rule): severity for line, rule, severity in rows}


def test_broken_set_fires_exactly_the_documented_rules_at_the_documented_lines():
    res = run_cli("--json", "lint", str(FIXTURES / "broken.ndjson"), "--max-per-rule", "0", cwd=ROOT)
    assert res.code == 2, res.stderr  # line 5 is unreadable; the rest is still reported
    status_to_severity = {"failed": "error", "warning": "warning", "info": "info"}
    fired = {}
    for c in res.json["checks"]:
        if c["id"] == "customerio/old-event":  # depends on today's date (documented)
            continue
        assert c["file"] == str(FIXTURES / "broken.ndjson")
        fired[(c["line"], c["id"])] = status_to_severity[c["status"]]
    assert fired == documented_findings()
    # The documented table covers every line of the file (line 1 is the clean reference).
    lines = len((FIXTURES / "broken.ndjson").read_text().splitlines())
    assert {line for line, _ in fired} == set(range(2, lines + 1))


# --- fixture sets: replay ------------------------------------------------------------------


@pytest.mark.slow  # a sweep over every clean example and route: .ci/run runs it with -m slow
@pytest.mark.parametrize("name", CLEAN_SETS)
@pytest.mark.parametrize("route", ["segment", "pipelines"])
def test_clean_sets_replay_with_every_message_delivered(sandbox, name, route, tmp_path):
    res = run_cli(
        "--sandbox-url",
        sandbox.url,
        "--json",
        "replay",
        str(FIXTURES / name),
        "--route",
        route,
        "--rate",
        "0",
        "--dead-letter",
        str(tmp_path / "dl.ndjson"),
        cwd=tmp_path,
    )
    assert res.code == 0, res.stderr
    ids = message_ids(name)
    s = res.json["summary"]
    assert (s["read"], s["accepted"], s["failed"], s["invalid"], s["dropped_by_mapping"]) == (
        len(ids),
        len(ids),
        0,
        0,
        0,
    )
    deliveries = httpx.get(sandbox.url + "/_sandbox/deliveries").json()["deliveries"]
    assert sorted(d["messageId"] for d in deliveries) == sorted(ids)
    assert {d["status"] for d in deliveries} == {"delivered"}, [d for d in deliveries if d["status"] != "delivered"]
    assert not (tmp_path / "dl.ndjson").exists()


@pytest.mark.parametrize("name", CLEAN_SETS)
def test_clean_sets_replay_straight_to_customerio(sandbox, name, tmp_path):
    res = run_cli(
        "--sandbox-url",
        sandbox.url,
        "--json",
        "replay",
        str(FIXTURES / name),
        "--route",
        "customerio",
        "--rate",
        "0",
        "--dead-letter",
        str(tmp_path / "dl.ndjson"),
        cwd=tmp_path,
    )
    assert res.code == 0, res.stderr
    s = res.json["summary"]
    assert s["accepted"] == s["read"] == len(message_ids(name)) and s["dropped_by_mapping"] == 0
    ws = sandbox.state.workspace
    user_ids = {r.message["userId"] for r in iter_records([str(FIXTURES / name)]) if r.message.get("userId")}
    for uid in user_ids:
        assert ws.find("id", uid) is not None, uid
    if name == "mobile.yaml":  # both push tokens registered on the one person
        assert len(ws.find("id", "usr_5001").devices) == 2


def test_mobile_set_registers_both_devices_through_segment(sandbox, tmp_path):
    res = run_cli("--sandbox-url", sandbox.url, "replay", str(FIXTURES / "mobile.yaml"), "--rate", "0", cwd=tmp_path)
    assert res.code == 0, res.stderr
    person = sandbox.state.workspace.find("id", "usr_5001")
    assert person is not None and len(person.devices) == 2
    assert person.email == "katherine@example.com"


# --- CI recipes ----------------------------------------------------------------------------


def load_recipe(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def recipe_jobs(path: Path) -> dict[str, tuple[dict, list[str]]]:
    """job name -> (the job's variables/env, its shell command lines)."""
    data = load_recipe(path)
    jobs: dict[str, tuple[dict, list[str]]] = {}
    if "jobs" in data:  # GitHub Actions
        for name, job in data["jobs"].items():
            scripts = [step["run"] for step in job["steps"] if "run" in step]
            jobs[name] = (job.get("env", {}), scripts)
    else:  # GitLab CI
        for name, job in data.items():
            if name.startswith(".") or not isinstance(job, dict) or "script" not in job:
                continue
            base = data.get(job.get("extends", ""), {})
            scripts = list(base.get("before_script", [])) + list(job["script"])
            jobs[name] = (job.get("variables", {}), scripts)
    return jobs


def cdpio_commands(scripts: list[str]) -> list[list[str]]:
    """Each `cdpio ...` command as argv (CI placeholders filled in)."""
    out = []
    for script in scripts:
        script = script.replace("${{ github.run_id }}", "4242").replace("${CI_PIPELINE_ID}", "4242")
        for line in script.splitlines():
            line = line.strip()
            if line.startswith("cdpio "):
                out.append(shlex.split(line)[1:])
    return out


def _all_commands():
    return [
        (path.name, job, argv)
        for path in CI_RECIPES
        for job, (_, scripts) in recipe_jobs(path).items()
        for argv in cdpio_commands(scripts)
    ]


def test_recipes_run_check_keys_send_test_verify_and_replay_with_junit_reports():
    for path in CI_RECIPES:
        jobs = recipe_jobs(path)
        assert len(jobs) == 2, (path, list(jobs))
        for job, (_, scripts) in jobs.items():
            cmds = cdpio_commands(scripts)
            assert [c[0] for c in cmds] == ["check-keys", "send-test", "replay"], (path.name, job)
            assert "--verify" in cmds[1]
            assert {"--new-message-ids", "--shift-timestamps"} <= set(cmds[2])
            assert "examples/fixtures/onboarding.ndjson" in cmds[2]
            for argv in cmds:
                assert "--junit" in argv, argv


def test_recipes_use_only_commands_and_flags_that_exist():
    import typer

    from cdpio_cli.cli.app import app

    root = typer.main.get_command(app)
    global_opts = {o for p in root.params for o in p.opts}
    for recipe, job, argv in _all_commands():
        command = root.commands.get(argv[0])
        assert command is not None, f"{recipe} {job}: no command {argv[0]!r}"
        known = global_opts | {o for p in command.params for o in getattr(p, "opts", [])}
        flags = {a.split("=", 1)[0] for a in argv[1:] if a.startswith("-")}
        assert flags <= known, f"{recipe} {job}: unknown flags {flags - known} for {argv[0]}"


def test_github_recipe_maps_every_secret_the_template_needs_and_publishes_junit_always():
    data = load_recipe(CI_RECIPES[0])
    needed = set(load_config(EXAMPLES / "cdpio.yaml", env=REAL_ENV).env_vars.values())
    smoke = data["jobs"]["smoke"]
    assert smoke["env"]["CDPIO_CONFIG"] == "examples/cdpio.yaml"
    secrets = {k for k, v in smoke["env"].items() if "secrets." in str(v)}
    assert needed - {"SEGMENT_REGION", "CUSTOMERIO_REGION"} <= secrets
    for k in secrets:  # straight from the secret store, under its own name
        assert smoke["env"][k] == "${{ secrets.%s }}" % k
    for job in data["jobs"].values():
        reporters = [s for s in job["steps"] if str(s.get("uses", "")).startswith("mikepenz/action-junit-report")]
        assert len(reporters) == 1 and reporters[0]["if"] == "always()"
        assert reporters[0]["with"]["report_paths"] == "reports/*.xml"
    assert data["permissions"]["checks"] == "write"


def test_gitlab_recipe_keeps_junit_reports_when_a_job_fails():
    data = load_recipe(CI_RECIPES[1])
    artifacts = data[".cdpio"]["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"]["junit"] == "reports/*.xml"
    assert data["cdpio-smoke"]["variables"]["CDPIO_CONFIG"] == "examples/cdpio.yaml"
    assert data["cdpio-sandbox"]["variables"]["CDPIO_CONFIG"] == "examples/sandbox.cdpio.yaml"


def _run_job(commands: list[list[str]], workdir: Path, env: dict, global_args: list[str]) -> None:
    shutil.copytree(EXAMPLES, workdir / "examples")
    (workdir / "reports").mkdir()
    for argv in commands:
        res = run_cli(*global_args, *argv, cwd=workdir, env=env)
        assert res.code == 0, f"cdpio {' '.join(argv)}: exit {res.code}\n{res.stderr}"
    reports = sorted((workdir / "reports").glob("*.xml"))
    assert [p.name for p in reports] == ["check-keys.xml", "replay.xml", "send-test.xml"]
    for report in reports:
        suite = ET.parse(report).getroot().find("testsuite")
        assert int(suite.get("tests")) > 0 and suite.get("failures") == "0", report.name
    assert not (workdir / "reports" / "onboarding.dead-letter.ndjson").exists()


@pytest.mark.slow  # a sweep: .ci/run runs it with -m slow
@pytest.mark.parametrize("recipe", CI_RECIPES, ids=lambda p: p.name)
def test_recipe_sandbox_job_passes_when_run(recipe, tmp_path):
    name = "sandbox" if recipe.name.startswith("github") else "cdpio-sandbox"
    env_vars, scripts = recipe_jobs(recipe)[name]
    _run_job(cdpio_commands(scripts), tmp_path, {k: str(v) for k, v in env_vars.items()}, [])


@pytest.mark.slow  # a sweep: .ci/run runs it with -m slow
@pytest.mark.parametrize("recipe", CI_RECIPES, ids=lambda p: p.name)
def test_recipe_real_account_job_passes_against_a_sandbox(recipe, sandbox, tmp_path):
    # The real-account job as written, with the secret store replaced by the
    # sandbox's keys and every service pointed at the sandbox.
    name = "smoke" if recipe.name.startswith("github") else "cdpio-smoke"
    env_vars, scripts = recipe_jobs(recipe)[name]
    env = {k: str(v) for k, v in env_vars.items() if "secrets." not in str(v)}
    env.update(REAL_ENV)
    _run_job(cdpio_commands(scripts), tmp_path, env, ["--sandbox-url", sandbox.url])
    # The replay's people carry the run's prefix.
    people = {
        d["userId"]
        for d in httpx.get(sandbox.url + "/_sandbox/deliveries?route=segment").json()["deliveries"]
        if d["userId"] and d["userId"].startswith("ci-4242-")
    }
    assert "ci-4242-usr_3001" in people

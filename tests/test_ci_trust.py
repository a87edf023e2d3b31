"""A smoke test you can trust in CI (issue 11): no silent sandbox, pasted keys
that cannot be sent, a sandbox that says what it accepts, output CI logs can read."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from cdpio_cli.cli.app import COMMANDS
from cdpio_cli.sandbox import defaults
from tests.cli_helpers import clean_env, run_cli, write_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FIXTURE = str(EXAMPLES / "fixtures" / "onboarding.ndjson")
LINT_DATA = Path(__file__).resolve().parent / "data" / "lint"

# One invocation per command that talks to a service.
SERVICE_COMMANDS = {
    "check-keys": ["check-keys"],
    "send-test": ["send-test"],
    "verify": ["verify", "--user-id", "u1"],
    "replay": ["replay", FIXTURE],
    "doctor": ["doctor"],
}


def _no_traceback(res) -> None:
    assert "Traceback" not in res.output and "internal error" not in res.output, res.stderr


def _requests_seen(sandbox) -> int:
    return httpx.get(f"{sandbox.url}/_sandbox/health").json()["requests"]


# ---------------------------------------------------------------------------
# 1. No silent sandbox in CI
# ---------------------------------------------------------------------------


@pytest.mark.slow  # a sweep: .ci/run runs it with -m slow
def test_every_command_once_with_ci_true_and_no_config(tmp_path):
    """CI=true, no cdpio.yaml: service commands refuse (exit 2, one line saying
    how to rehearse on purpose); the others work as on a laptop."""
    ci = {"CI": "true"}
    seen = set()
    for name, args in SERVICE_COMMANDS.items():
        res = run_cli(*args, cwd=tmp_path, env=ci)
        seen.add(name)
        _no_traceback(res)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.code == 2 and len(lines) == 1, (name, res.code, res.stderr)
        assert "CI=true" in lines[0] and "--sandbox" in lines[0] and "sandbox: true" in lines[0], lines[0]
        as_json = run_cli("--json", *args, cwd=tmp_path, env=ci)
        assert as_json.code == 2 and as_json.json["exit_code"] == 2, name
    for name, args in {
        "lint": ["lint", FIXTURE],
        "explain": ["explain", FIXTURE],
        "replay --dry-run": ["replay", "--dry-run", FIXTURE],
    }.items():
        res = run_cli(*args, cwd=tmp_path, env=ci)
        seen.add(name.split()[0])
        _no_traceback(res)
        assert res.code == 0, (name, res.stderr)
    res = run_cli("init", "--path", str(tmp_path / "new.yaml"), cwd=tmp_path, env=ci)
    seen.add("init")
    assert res.code == 0 and (tmp_path / "new.yaml").is_file(), res.stderr
    res = run_cli("plan", "infer", FIXTURE, "-o", str(tmp_path / "plan.yaml"), cwd=tmp_path, env=ci)
    assert res.code == 0 and (tmp_path / "plan.yaml").is_file(), res.stderr
    pulled = run_cli("plan", "pull", "-o", str(tmp_path / "pulled.yaml"), cwd=tmp_path, env=ci)
    assert pulled.code == 2 and "CI=true" in pulled.stderr, pulled.stderr
    seen.add("plan")
    examples = Path(__file__).resolve().parent.parent / "examples" / "campaigns"
    res = run_cli("audit", FIXTURE, cwd=tmp_path, env=ci)  # reads the App API
    assert res.code == 2 and "CI=true" in res.stderr, res.stderr
    res = run_cli(
        "audit",
        "--workspace",
        str(examples / "workspace.yaml"),  # offline
        str(examples / "events.ndjson"),
        cwd=tmp_path,
        env=ci,
    )
    assert res.code == 0, res.stderr
    seen.add("audit")
    res = run_cli("completion", "bash", cwd=tmp_path, env=ci)
    seen.add("completion")
    assert res.code == 0 and (tmp_path / "new.yaml").is_file(), res.stderr
    # The sandbox itself is a rehearsal by definition: it starts in CI.
    info = _start_sandbox_json(env=ci)
    seen.add("sandbox")
    assert info["port"] > 0
    assert seen == {name for name, _ in COMMANDS}, "a command was left out"


@pytest.mark.parametrize(
    "variable",
    [
        "GITHUB_ACTIONS=true",
        "GITLAB_CI=true",
        "BUILDKITE=true",
        "JENKINS_URL=https://jenkins.example.com/",
        "CIRCLECI=true",
        "TF_BUILD=True",
        "TEAMCITY_VERSION=2024.1",
    ],
)
def test_each_ci_system_is_detected(tmp_path, variable):
    name, value = variable.split("=", 1)
    res = run_cli("-q", "send-test", "--junit", str(tmp_path / "j.xml"), cwd=tmp_path, env={name: value})
    assert res.code == 2 and name in res.stderr, res.stderr


def test_ci_false_is_not_ci(tmp_path):
    res = run_cli("--json", "check-keys", "--offline", cwd=tmp_path, env={"CI": "false"})
    assert res.code == 0, res.stderr


def test_a_sandbox_run_in_ci_says_so_in_every_output(tmp_path):
    summary = tmp_path / "step-summary.md"
    junit = tmp_path / "j.xml"
    env = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    res = run_cli("--sandbox", "--json", "--junit", str(junit), "send-test", cwd=tmp_path, env=env)
    assert res.code == 0, res.stderr
    assert res.json["summary"]["sandbox"] is True
    suite = ET.parse(junit).getroot().find("testsuite")
    assert "sandbox" in suite.get("name")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["cdpio.sandbox"] == "true"
    warnings = [line for line in res.stderr.splitlines() if line.startswith("::warning")]
    assert any("sandbox" in line for line in warnings), res.stderr
    assert "Sandbox run" in summary.read_text(encoding="utf-8")
    # The human summary line too (the one line a CI log reader sees last).
    human = run_cli("--sandbox", "send-test", cwd=tmp_path, env={"CI": "true"})
    verdict = [line for line in human.stderr.splitlines() if line.startswith(("OK", "FAILED"))]
    assert human.code == 0 and "SANDBOX" in verdict[-1], human.stderr


def test_sandbox_true_in_the_config_is_a_rehearsal_on_purpose(tmp_path):
    write_config(tmp_path, "version: 1\nsandbox: true\n")
    res = run_cli("--json", "check-keys", cwd=tmp_path, env={"CI": "true"})
    assert res.code == 0 and res.json["summary"]["sandbox"] is True, res.stderr


# ---------------------------------------------------------------------------
# 2. Credentials with characters no service accepts
# ---------------------------------------------------------------------------

_CONFIG = """\
segment:
  write_key: ${WK}
  public_api_token: ${TOKEN}
customerio:
  site_id: ${SID}
  track_api_key: ${TKEY}
  app_api_key: ${AKEY}
  pipelines_api_key: ${PKEY}
"""
_GOOD = {
    "WK": defaults.WRITE_KEY,
    "TOKEN": defaults.PUBLIC_API_TOKEN,
    "SID": defaults.SITE_ID,
    "TKEY": defaults.TRACK_API_KEY,
    "AKEY": defaults.APP_API_KEY,
    "PKEY": defaults.PIPELINES_API_KEY,
}


def _bad(value: str, at: int, ch: str) -> str:
    return value[:at] + ch + value[at + 1 :]


@pytest.mark.parametrize(
    "var,field,ch,expected",
    [
        ("AKEY", "customerio.app_api_key", "\u00a0", "position 17: U+00A0 NO-BREAK SPACE"),
        ("TOKEN", "segment.public_api_token", "\u2013", "position 17: U+2013 EN DASH"),
        ("WK", "segment.write_key", "\u00e9", "position 17: U+00E9 LATIN SMALL LETTER E WITH ACUTE"),
        ("TKEY", "customerio.track_api_key", "\x00", "position 17: U+0000 NULL"),
        ("PKEY", "customerio.pipelines_api_key", "\r", "position 17: U+000D CARRIAGE RETURN"),
        ("SID", "customerio.site_id", " ", "position 17: U+0020 SPACE"),
    ],
)
def test_a_pasted_character_no_service_accepts_fails_format_without_any_request(
    tmp_path, sandbox, var, field, ch, expected
):
    bad = _bad(_GOOD[var], 16, ch)
    if "\x00" in ch:  # no environment variable can hold a NUL: it comes from the file
        write_config(tmp_path, _CONFIG.replace("${%s}" % var, json.dumps(bad)))
        env = dict(_GOOD)
    else:
        write_config(tmp_path, _CONFIG)
        env = {**_GOOD, var: bad}
    junit = tmp_path / "keys.xml"
    res = run_cli("--sandbox-url", sandbox.url, "--json", "--junit", str(junit), "check-keys", cwd=tmp_path, env=env)
    _no_traceback(res)
    assert res.code == 2, res.stderr
    failed = [c for c in res.json["checks"] if c["status"] == "failed"]
    assert [c["id"] for c in failed] == [field] and c_tier(failed) == "format"
    assert expected in failed[0]["message"]
    case = ET.parse(junit).getroot().find("testsuite").find("testcase")
    assert case is not None and expected in ET.tostring(ET.parse(junit).getroot(), encoding="unicode")
    assert _requests_seen(sandbox) == 0, "cdpio sent a request with an unusable credential"


def c_tier(checks: list[dict]) -> str:
    return checks[0]["tier"]


@pytest.mark.parametrize(
    "args",
    [
        ["send-test"],
        ["doctor"],
        ["verify", "--user-id", "u1"],
        ["replay", "--route", "pipelines", FIXTURE],
        ["replay", "--route", "customerio", FIXTURE],
        ["replay", FIXTURE],
    ],
)
def test_every_command_stops_on_an_unusable_credential(tmp_path, sandbox, args):
    write_config(tmp_path, _CONFIG)
    env = {**_GOOD, "AKEY": _bad(_GOOD["AKEY"], 16, "\u00a0")}
    junit = tmp_path / "j.xml"
    res = run_cli("--sandbox-url", sandbox.url, "--json", "--junit", str(junit), *args, cwd=tmp_path, env=env)
    _no_traceback(res)
    assert res.code == 2 and res.json["exit_code"] == 2, res.stderr
    assert any("position 17: U+00A0 NO-BREAK SPACE" in c["message"] for c in res.json["checks"])
    assert junit.is_file() and ET.parse(junit).getroot().find("testsuite").get("errors") == "1"
    assert _requests_seen(sandbox) == 0


def test_replay_reports_cleaned_credentials_like_send_test(tmp_path, sandbox):
    write_config(tmp_path, _CONFIG)
    env = {**_GOOD, "WK": _GOOD["WK"] + "\n"}
    for args in (["send-test", "--route", "segment", "--no-verify"], ["replay", "--route", "segment", FIXTURE]):
        res = run_cli("--sandbox-url", sandbox.url, *args, cwd=tmp_path, env=env)
        assert res.code == 0, res.stderr
        assert "segment.write_key: removed a trailing newline" in res.stderr, (args, res.stderr)


# ---------------------------------------------------------------------------
# 4. A sandbox says what it accepts
# ---------------------------------------------------------------------------


def _start_sandbox_json(*args: str, env: dict | None = None) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpio_cli", "sandbox", "--port", "0", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(**(env or {})),
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)  # generous; a hang fails, not blocks
        assert ready, "cdpio sandbox --json printed no line on stdout"
        line = proc.stdout.readline()
        assert line, "cdpio sandbox --json printed no line on stdout"
        return json.loads(line)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_sandbox_json_is_one_line_with_url_port_regions_and_masked_credentials():
    info = _start_sandbox_json("--region", "eu")
    assert info["url"] == f"http://127.0.0.1:{info['port']}" and info["port"] > 0
    assert info["regions"] == {"customerio": "eu", "segment": "eu"}
    assert set(info["credentials"]) == {
        "write_key",
        "public_api_token",
        "site_id",
        "track_api_key",
        "app_api_key",
        "pipelines_api_key",
    }
    for value in info["credentials"].values():
        assert value.startswith("[") and "chars" in value  # masked, never the key


@pytest.mark.parametrize("region", ["us", "eu"])
def test_sandbox_url_with_no_config_learns_region_and_keys_from_the_sandbox(tmp_path, sandbox_factory, region):
    sb = sandbox_factory(region=region)
    res = run_cli("--sandbox-url", sb.url, "--json", "send-test", cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert res.json["summary"]["customerio_region"] == region
    doctor = run_cli("--sandbox-url", sb.url, "--json", "doctor", cwd=tmp_path)
    assert doctor.code == 0, doctor.stderr


def test_info_endpoint_lists_defaults_and_masks_a_users_keys(sandbox_factory):
    sb = sandbox_factory(region="eu", app_api_key="abababababababababababababab9993")
    info = httpx.get(f"{sb.url}/_sandbox/info").json()
    assert info["region"] == "eu" and info["defaults"]["pipelines_api_key"] == defaults.PIPELINES_API_KEY_EU
    assert "app_api_key" not in info["defaults"]
    assert "abababab" not in json.dumps(info) and info["credentials"]["app_api_key"].endswith("9993]")


def test_info_endpoint_answers_loopback_clients_only():
    from starlette.testclient import TestClient

    from cdpio_cli.sandbox.app import create_app

    with TestClient(create_app(), client=("192.0.2.7", 50000)) as client:
        answer = client.get("/_sandbox/info")
    assert answer.status_code == 403 and "c0ffee" not in answer.text


# ---------------------------------------------------------------------------
# 6. Output people and CI logs can read
# ---------------------------------------------------------------------------


def test_info_findings_are_shown_and_counted_as_info(tmp_path):
    data = str(LINT_DATA / "identity_unlinked_anonymous.ndjson")
    res = run_cli("--json", "lint", data, cwd=tmp_path)
    assert res.code == 0
    counts = res.json["summary"]["counts"]
    assert counts["info"] >= 1 and counts["passed"] == 0, counts
    human = run_cli("lint", data, cwd=tmp_path)
    rows = [line for line in human.stderr.splitlines() if "identity/unlinked-anonymous" in line]
    assert rows and rows[0].split()[0] == "info", human.stderr


def _lint_error_file(tmp_path: Path) -> str:
    path = tmp_path / "bad.ndjson"
    path.write_text(
        json.dumps(
            {"type": "page", "userId": "u1", "name": "Pricing " + "x" * 150, "timestamp": "2026-01-10T12:00:00Z"}
        )
        + "\n"
        + json.dumps({"type": "track", "userId": "u1"})
        + "\n",
        encoding="utf-8",
    )
    return str(path)


def test_each_failure_is_shown_once(tmp_path):
    data = _lint_error_file(tmp_path)
    failed = [c["id"] for c in run_cli("--json", "lint", data, cwd=tmp_path).json["checks"] if c["status"] == "failed"]
    res = run_cli("lint", data, cwd=tmp_path)
    assert failed and res.code in (1, 2), res.stderr
    fail_lines = [line for line in res.stderr.splitlines() if line.split()[:1] == ["FAIL"]]
    for check_id in failed:
        assert sum(check_id in line for line in fail_lines) == failed.count(check_id), res.stderr


def test_quiet_prints_one_unwrapped_line_per_failure(tmp_path):
    res = run_cli("-q", "lint", _lint_error_file(tmp_path), cwd=tmp_path, env={"COLUMNS": "60"})
    doc = run_cli("--json", "lint", _lint_error_file(tmp_path), cwd=tmp_path).json
    failed = [c for c in doc["checks"] if c["status"] == "failed"]
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == len(failed) and all(line.startswith("FAIL ") for line in lines), res.stderr
    assert any(len(line) > 60 for line in lines)


@pytest.mark.parametrize(
    "error_args",
    [
        ["send-test", "--no-such-flag"],  # a usage error from the flag parser
        ["--config", "{missing}", "send-test"],  # a config error
    ],
)
def test_usage_and_config_errors_still_write_junit_and_annotate(tmp_path, error_args):
    junit = tmp_path / "j.xml"
    args = [a.format(missing=tmp_path / "nope.yaml") for a in error_args]
    res = run_cli("--junit", str(junit), *args, cwd=tmp_path, env={"GITHUB_ACTIONS": "true"})
    assert res.code == 2, res.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 1 and cases[0].find("error") is not None and suite.get("errors") == "1"
    assert any(line.startswith("::error") for line in res.stderr.splitlines()), res.stderr


def test_no_credentials_is_the_same_exit_code_everywhere(tmp_path):
    write_config(tmp_path, "version: 1\n")
    codes = {name: run_cli(name, cwd=tmp_path).code for name in ("check-keys", "doctor", "send-test")}
    assert set(codes.values()) == {2}, codes


@pytest.mark.parametrize("how", [["--no-color"], []])
def test_no_color_means_no_escape_codes_at_all(tmp_path, how):
    env = {"FORCE_COLOR": "1"} | ({} if how else {"NO_COLOR": "1"})
    for args in (
        ["lint", str(LINT_DATA / "identity_unlinked_anonymous.ndjson")],
        ["lint", _lint_error_file(tmp_path)],
        ["--sandbox", "check-keys", "--offline"],
        ["--sandbox", "replay", str(LINT_DATA / "identity_unlinked_anonymous.ndjson")],  # progress: lines, no bar
    ):
        res = run_cli(*how, *args, cwd=tmp_path, env=env)
        assert "\x1b" not in res.output, (args, res.stderr[:300])

"""CI integrations in the ecosystem's own forms (docs/integrations.md): the
GitHub Actions recipe on fork pull requests, the composite action at the
repository root (its shell steps run here with bash, as the runner would), the
pre-commit hook (through `pre-commit try-repo`) and shell completion."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
LINT_DATA = ROOT / "tests" / "data" / "lint"
_SCRUB = ("CDPIO_CONFIG", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "NO_COLOR")


# --- the GitHub Actions recipe -------------------------------------------------------------


def _publishers(job: dict) -> list[dict]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith("mikepenz/action-junit-report")]


def test_github_recipe_publishes_no_check_run_from_a_fork_pull_request():
    # A fork's pull request gets a read-only token: creating a check run fails
    # the step ("Resource not accessible by integration").  Every job that runs
    # there must only annotate.
    recipe = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yml").read_text())
    fork_guard = "github.event.pull_request.head.repo.full_name"
    fork_jobs = [name for name, job in recipe["jobs"].items() if fork_guard not in str(job.get("if", ""))]
    assert fork_jobs == ["sandbox"]
    for name in fork_jobs:
        for step in _publishers(recipe["jobs"][name]):
            annotate = str(step["with"].get("annotate_only", ""))
            assert (
                "github.event_name == 'pull_request'" in annotate and f"{fork_guard} != github.repository" in annotate
            ), (name, annotate)
            assert step["if"] == "always()"


# --- the composite action --------------------------------------------------------------------

_EXPR = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def _shims(directory: Path) -> Path:
    """`cdpio` and `python` on PATH as this interpreter running this checkout."""
    directory.mkdir()
    for name, argv in (("cdpio", f'"{sys.executable}" -m cdpio_cli'), ("python", f'"{sys.executable}"')):
        shim = directory / name
        shim.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec {argv} "$@"\n')
        shim.chmod(0o755)
    return directory


def run_action(inputs: dict, workdir: Path) -> dict:
    """Run action.yml's `run:` steps with bash the way a runner does
    (`bash --noprofile --norc -eo pipefail`), honouring `if: always()` after a
    failure; `uses:` steps are listed, not run."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    values = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    values.update(inputs)
    missing = [n for n, spec in action["inputs"].items() if spec.get("required") and n not in inputs]
    assert not missing, missing
    outputs: dict[str, dict[str, str]] = {}
    summary = workdir / "step-summary.md"
    summary.touch()
    bin_dir = _shims(workdir / ".bin")

    def expr(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("inputs."):
            return values[name[len("inputs.") :]]
        if name == "github.action_path":
            return str(ROOT)
        m = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", name)
        if m:
            return outputs.get(m.group(1), {}).get(m.group(2), "")
        raise AssertionError(f"unexpected expression {name!r} in an env value")

    failed = False
    ran, skipped_uses = [], []
    for step in action["runs"]["steps"]:
        if "uses" in step:
            skipped_uses.append(step["uses"])
            continue
        if failed and "always()" not in str(step.get("if", "")):
            continue
        script = step["run"]
        assert "${{" not in script, f"{step['name']}: inputs must reach the script through env, not ${{{{ }}}}"
        out_file = workdir / f"output-{len(ran)}"
        out_file.touch()
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env.update({k: _EXPR.sub(expr, str(v)) for k, v in step.get("env", {}).items()})
        env.update(
            {
                "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
                "GITHUB_ACTIONS": "true",
                "CI": "true",
                "GITHUB_OUTPUT": str(out_file),
                "GITHUB_STEP_SUMMARY": str(summary),
                "COLUMNS": "200",
            }
        )
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        ran.append((step["name"], proc.returncode, proc.stdout + proc.stderr))
        if step.get("id"):
            outputs[step["id"]] = dict(line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line)
        failed = failed or proc.returncode != 0
    return {"steps": ran, "outputs": outputs, "summary": summary.read_text(), "uses": skipped_uses, "failed": failed}


def test_action_runs_a_command_against_the_sandbox_and_reports(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    result = run_action(
        {"command": "send-test --verify", "config": "examples/sandbox.cdpio.yaml", "install": "skip"}, tmp_path
    )
    assert not result["failed"], result["steps"]
    assert [name for name, _, _ in result["steps"]] == ["Install cdpio", "Run cdpio", "Summarise"]
    assert result["outputs"]["run"] == {"junit": "cdpio-reports/cdpio.xml", "exit-code": "0"}
    suite = ET.parse(tmp_path / "cdpio-reports" / "cdpio.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) > 0 and suite.get("failures") == "0"
    assert "### cdpio send-test: passed" in result["summary"]  # cdpio's own table
    assert "**cdpio send-test --verify** exited with 0" in result["summary"]
    assert result["uses"] == ["actions/setup-python@v5", "actions/upload-artifact@v4"]


def test_action_fails_the_step_but_still_summarises_a_failed_check(tmp_path):
    (tmp_path / "event data").mkdir()
    shutil.copy(LINT_DATA / "cio_event_name_too_long.ndjson", tmp_path / "event data" / "bad.ndjson")
    result = run_action({"command": "lint 'event data/bad.ndjson'", "install": "skip"}, tmp_path)
    assert result["failed"]
    assert [(name, rc) for name, rc, _ in result["steps"]] == [("Install cdpio", 0), ("Run cdpio", 1), ("Summarise", 0)]
    assert result["outputs"]["run"]["exit-code"] == "1"
    suite = ET.parse(tmp_path / "cdpio-reports" / "cdpio.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1"
    assert "### cdpio lint: FAILED" in result["summary"]
    assert "exited with 1" in result["summary"]
    assert "::error" in result["steps"][1][2]  # the annotation on the pull request


def test_action_never_runs_its_command_input_through_a_shell(tmp_path):
    result = run_action({"command": "lint $(touch pwned) `touch pwned2`", "install": "skip"}, tmp_path)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert result["outputs"]["run"]["exit-code"] == "2"  # cdpio saw the words as file names
    (tmp_path / "empty").mkdir()
    empty = run_action({"command": "  ", "install": "skip"}, tmp_path / "empty")
    assert empty["outputs"]["run"]["exit-code"] == "2"
    assert "the action's 'command' input is empty" in empty["steps"][1][2]


# --- pre-commit --------------------------------------------------------------------------------


@pytest.mark.slow  # pre-commit installs cdpio into a fresh environment (about a minute)
def test_pre_commit_hook_runs_cdpio_lint_on_changed_fixtures(tmp_path):
    pytest.importorskip("pre_commit", reason="pre-commit is not installed (pip install -e '.[test]')")
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    [hook] = hooks
    assert hook["id"] == "cdpio-lint" and hook["entry"] == "cdpio lint"
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    shutil.copy(LINT_DATA / "clean.ndjson", repo / "clean.ndjson")
    shutil.copy(LINT_DATA / "cio_event_name_too_long.ndjson", repo / "bad.ndjson")
    (repo / "notes.json").write_text("{}")  # not a fixture by the hook's `files:`
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    env = {
        **{k: v for k, v in os.environ.items() if k not in _SCRUB},
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "COLUMNS": "200",
    }

    def try_repo(*files: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "cdpio-lint", "--files", *files],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    bad = try_repo("clean.ndjson", "bad.ndjson", "notes.json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "customerio/event-name-too-long" in bad.stdout and "bad.ndjson:2" in bad.stdout
    clean = try_repo("clean.ndjson", "notes.json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "cdpio lint" in clean.stdout and "Passed" in clean.stdout


# --- shell completion ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shell, marker",
    [
        ("bash", "complete -o default -F _cdpio_completion cdpio"),
        ("zsh", "#compdef cdpio"),
        ("fish", "complete --command cdpio"),
    ],
)
def test_completion_script_for_each_shell(shell, marker):
    result = run_cli("completion", shell)
    assert result.code == 0 and marker in result.stdout and "_CDPIO_COMPLETE" in result.stdout
    assert result.stderr == ""


def test_completion_for_an_unknown_shell_is_a_usage_error():
    result = run_cli("--json", "completion", "tcsh")
    assert result.code == 2 and "use one of bash, zsh, fish" in result.json["error"]["message"]


def test_bash_completion_completes_commands_and_flags(tmp_path):
    bin_dir = _shims(tmp_path / "bin")
    script = (
        "source <(cdpio completion bash)\n"
        'COMP_WORDS=(cdpio se); COMP_CWORD=1; _cdpio_completion cdpio; echo "${COMPREPLY[*]}"\n'
        'COMP_WORDS=(cdpio lint --st); COMP_CWORD=2; _cdpio_completion cdpio; echo "${COMPREPLY[*]}"\n'
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    commands, flags = proc.stdout.splitlines()
    assert commands.split() == ["send-test"] and flags.split() == ["--strict"]


@pytest.mark.parametrize(
    "shell, env",
    [
        ("zsh", {"_TYPER_COMPLETE_ARGS": "cdpio rep"}),
        ("fish", {"_TYPER_COMPLETE_ARGS": "cdpio rep", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}),
    ],
)
def test_zsh_and_fish_completion_answers(shell, env):
    # What the zsh and fish scripts ask cdpio (those shells need not be installed here).
    result = run_cli(env={"_CDPIO_COMPLETE": f"complete_{shell}", **env})
    assert result.code == 0 and "replay" in result.stdout and "lint" not in result.stdout


def test_help_and_completion_import_no_service_code():
    # --help and every completion answer stay fast: they load typer and the
    # command modules only, never the HTTP, config or sandbox stack.
    heavy = ("httpx", "pydantic", "starlette", "uvicorn", "yaml", "cdpio_cli.lint", "cdpio_cli.sandbox")
    # The sandbox's default host and port are plain constants the flags show.
    light = {"cdpio_cli.sandbox", "cdpio_cli.sandbox.defaults"}
    for args, env in (
        (["--help"], {}),
        (["completion", "bash"], {}),
        ([], {"_CDPIO_COMPLETE": "complete_bash", "COMP_WORDS": "cdpio se", "COMP_CWORD": "1"}),
    ):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "cdpio_cli", *args],
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
        loaded = {m for m in imported - light if m.split(".")[0] in heavy or m.startswith(heavy)}
        assert not loaded, (args, sorted(loaded))


def test_help_imports_only_typer_rich_and_the_command_modules():
    # A bound by name on what `cdpio --help` loads (its speed, without timing it): the standard
    # library, typer and the parts of rich that draw the help, and cdpio's command modules with
    # the few constants their flags show.  rich's Markdown and traceback renderers (markdown-it,
    # pygments, attrs) and the unvendored click are never drawn or raised, so never imported.
    list_modules = (
        "import atexit, runpy, sys;"
        "atexit.register(lambda: sys.stderr.write('MODULES ' + ' '.join(n for n, m in sys.modules.items() if m)));"
        "sys.argv = ['cdpio', '--help']; runpy.run_module('cdpio_cli', run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", list_modules],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "Usage: cdpio" in proc.stdout, proc.stderr[-2000:]
    imported = set(proc.stderr.rpartition("MODULES ")[2].split())
    third_party = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names}
    allowed_packages = {
        "__main__",
        "typer",
        "rich",
        "annotated_doc",
        "shellingham",
        "cdpio_cli",
        "_distutils_hack",
        "sitecustomize",
    }
    unexpected = {m for m in third_party if m.split(".")[0] not in allowed_packages and "__editable__" not in m}
    assert not unexpected, sorted(unexpected)
    never = {"rich.markdown", "rich.traceback", "rich.pretty", "rich.syntax"}
    assert not imported & never, sorted(imported & never)
    core = {m for m in imported if m.startswith("cdpio_cli.") and not f"{m}.".startswith("cdpio_cli.cli.")}
    assert core <= {
        "cdpio_cli.enums",
        "cdpio_cli.errors",
        "cdpio_cli.lazy",  # replay's package __getattr__ (its names load on first use)
        "cdpio_cli.replay",
        "cdpio_cli.replay.defaults",
        "cdpio_cli.sandbox",
        "cdpio_cli.sandbox.defaults",
    }, sorted(core)


@pytest.mark.parametrize("with_config", [False, True], ids=["no-config", "with-config"])
def test_a_quiet_json_replay_imports_no_validation_or_rendering_library(sandbox, tmp_path, with_config):
    # A replay run's start-up (issue 17): the config is checked by config_schema.py, not pydantic,
    # and with --json -q nothing is drawn, so rich is never imported; nor httpx (with httpcore, h11,
    # anyio): a send without a proxy goes over transport/wire.py, with cdpio's URL and exceptions.
    heavy = (
        "pydantic",
        "pydantic_core",
        "rich",
        "typer.rich_utils",
        "cdpio_cli.cli.table",
        "cdpio_cli.lint",
        "httpx",
        "httpcore",
        "h11",
        "anyio",
        "cdpio_cli.mapping",  # the Customer.io mapping loads with a Customer.io sender only
        "urllib.request",  # only when a *_proxy variable is set (transport.client.proxies_configured)
        "http.client",  # the wire reads responses with transport/http1.py
        "email",  # http.client's header parser; Retry-After's HTTP dates load it when one comes
        "ssl",  # only for an https connection
        "encodings.idna",  # an ASCII host reaches getaddrinfo as bytes (the idna codec loads stringprep)
        "unicodedata",  # credentials need it only for a key with a character beyond ASCII
        "hashlib",  # a --checkpoint's fingerprints, derived messageIds, an input outside the working directory
        "multiprocessing",  # only a file large enough for the pre-pass on two cores
    )
    events = tmp_path / "events.ndjson"
    # With messageIds, as recorded events have them (a derived id is a uuid5: hashlib).
    events.write_text(
        "".join(f'{{"type": "track", "userId": "u{i}", "event": "E", "messageId": "m{i}"}}\n' for i in range(5))
    )
    if with_config:
        shutil.copy(ROOT / "examples" / "cdpio.yaml", tmp_path / "cdpio.yaml")
    keys = {"SEGMENT_WRITE_KEY": "k" * 32, "CUSTOMERIO_SITE_ID": "s" * 20, "CUSTOMERIO_TRACK_API_KEY": "t" * 20}
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cdpio_cli", "--sandbox-url", sandbox.url, "--json", "-q"]
        + ["replay", str(events), "--route", "segment", "--rate", "0"],
        env={**env, "PYTHONPATH": str(ROOT), **keys},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["summary"]["read"] == 5, proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "cdpio_cli.config" in imported  # the config stack did load (the bound below means something)
    loaded = {m for m in imported if m.split(".")[0] in heavy or m.startswith(heavy)}
    assert not loaded, sorted(loaded)
    # Without a config file nothing is read: the YAML reader and its problem text stay unloaded.
    assert with_config or not imported & {"cdpio_cli.config_yaml", "cdpio_cli.yaml_nodes", "yaml"}, sorted(imported)

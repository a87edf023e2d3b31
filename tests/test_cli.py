"""CLI hygiene: help with examples, version, global options anywhere, docs kept true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cdpio_cli import __version__
from cdpio_cli.cli.app import COMMANDS, hoist_global_options
from tests.cli_helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# The README links to the full reference in docs/; together they document the CLI.
DOCS = README + "".join(p.read_text() for p in sorted((ROOT / "docs").glob("**/*.md")))
COMMAND_NAMES = [name for name, _ in COMMANDS]


def test_version():
    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"cdpio {__version__}"


def test_top_level_help_lists_every_command():
    result = run_cli("--help")
    assert result.code == 0
    for name in COMMAND_NAMES:
        assert name in result.stdout


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_command_has_help_with_an_example(name):
    result = run_cli(name, "--help")
    assert result.code == 0, result.stderr
    assert "Example" in result.stdout and "cdpio " + name in result.stdout


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_command_is_documented(name):
    assert f"`cdpio {name}" in README, "the README's command table names every command"
    assert f"## `cdpio {name}`" in DOCS


def test_docs_document_every_flag_of_every_command():
    import typer.main

    from cdpio_cli.cli.app import app

    group = typer.main.get_command(app)
    missing = []
    for name in COMMAND_NAMES:
        for param in group.commands[name].params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help" and opt not in DOCS:
                    missing.append(f"{name} {opt}")
    assert not missing, f"flags missing from README.md and docs/: {missing}"


def test_global_options_work_after_the_command():
    assert hoist_global_options(["lint", "f.ndjson", "--json", "--junit", "r.xml", "-q"]) == [
        "--json",
        "--junit",
        "r.xml",
        "-q",
        "lint",
        "f.ndjson",
    ]
    assert hoist_global_options(["--json", "lint", "--", "--json"]) == ["--json", "lint", "--", "--json"]
    assert hoist_global_options(["check-keys", "--config=x.yaml"]) == ["--config=x.yaml", "check-keys"]


def test_unknown_flag_and_command_exit_2_without_traceback():
    for args in (["lint", "--no-such-flag", "x"], ["no-such-command"]):
        result = run_cli(*args)
        assert result.code == 2 and "Traceback" not in result.output


def test_no_color_and_non_tty_output_has_no_escape_codes(tmp_path):
    result = run_cli("check-keys", "--offline", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert result.code == 0, result.stderr
    assert "\x1b[" not in result.stderr
    forced = run_cli("check-keys", "--offline", "--no-color", cwd=tmp_path, env={"FORCE_COLOR": "1"})
    # Bold/dim may stay when a terminal is forced; colours (30-37, 38;..., 90-97) must not.
    assert not re.search(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])(?:;[0-9;]*)?m", forced.stderr)


def test_json_mode_keeps_stdout_machine_clean(tmp_path):
    result = run_cli("check-keys", "--offline", "--json", cwd=tmp_path)
    assert result.code == 0
    assert result.stdout.lstrip().startswith("{") and result.json["command"] == "check-keys"
    assert "check-keys" in result.stderr  # the human table went to stderr


def _docs_table(heading: str) -> set[str]:
    """The first column of the table under `## heading` in docs/output.md."""
    text = (ROOT / "docs" / "output.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return {cell.strip("`") for cell in re.findall(r"^\| ([^|]+?) \| [^|]+ \|$", section, flags=re.M)} - {
        "code",
        "status",
        "tier",
        "---",
    }


def test_docs_list_every_exit_code_status_and_tier():
    from cdpio_cli.errors import ExitCode
    from cdpio_cli.results import Status, Tier

    assert _docs_table("Exit codes") == {str(code) for code in ExitCode}
    assert _docs_table("Statuses") == {str(status) for status in Status}
    assert _docs_table("Tiers") == {str(tier) for tier in Tier}


def test_readme_is_short_and_links_every_docs_page():
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    missing = [page for page in pages if f"]({page})" not in README]
    assert not missing, f"the README's Documentation table does not link {missing}"
    assert len(README.encode("utf-8")) < 15 * 1024, "the README is a short page; the reference lives in docs/"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_relative_links_in_readme_and_docs_resolve():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    anchors = {}
    for f in files:
        prose = re.sub(r"```.*?```", "", f.read_text(), flags=re.S)
        anchors[f.resolve()] = {_anchor(h) for h in re.findall(r"^#+\s+(.*)$", prose, flags=re.M)}
    broken = []
    for f in files:
        for link in re.findall(r"\]\(([^)\s]+)\)", f.read_text()):
            if link.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, fragment = link.partition("#")
            target = (f.parent / path).resolve() if path else f.resolve()
            if not target.exists():
                broken.append(f"{f.name}: {link} (no such file)")
            elif fragment and target.suffix == ".md" and fragment not in anchors.get(target, set()):
                broken.append(f"{f.name}: {link} (no such heading)")
    assert not broken, broken

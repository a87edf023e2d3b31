"""`cdpio lint`: spec, naming, identity and Customer.io-limit rules over fixture files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from cdpio_cli.cli.output import ProgressBar, ProgressLines
    from cdpio_cli.lint import LintResult
    from cdpio_cli.results import Report


def command(
    ctx: typer.Context,
    files: list[str] = typer.Argument(
        ..., metavar="FILE...", help="Fixture files or globs (.json .jsonl .ndjson .yaml, .gz), - for stdin."
    ),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail too (exit 1)."),
    disable: list[str] | None = typer.Option(
        None, "--disable", metavar="RULE", help="Disable a rule or a group (naming/*); repeatable."
    ),
    max_rows: int = typer.Option(
        100, "--max-rows", metavar="N", help="Show at most N findings in the table (0: all); --json has all."
    ),
    max_per_rule: int = typer.Option(
        100, "--max-per-rule", metavar="N", help="List at most N findings per rule (0: all); all are counted."
    ),
    plan_file: str | None = typer.Option(
        None,
        "--plan",
        metavar="PLAN.yaml",
        help="Check the messages against this tracking plan (default: the config's lint.plan).",
    ),
) -> None:
    """Lint event data: Segment spec, naming, identity, Customer.io limits, trait drift.

    Errors (exit 1) are messages that Segment or the Customer.io destination
    drops or rejects; warnings are hygiene problems (fail with --strict);
    info never fails.  Unreadable input exits 2.  Rules are disabled (by id
    or group, like naming/*) with --disable or the config's lint.disable, and
    re-graded (error, warning, info, off) with lint.severity.

    Example:

        cdpio lint events/*.ndjson --strict --disable naming/event-title-case
    """
    import sys

    from cdpio_cli import fixtures, lint
    from cdpio_cli.cli.output import finish, stderr_console, work_progress
    from cdpio_cli.cli.table import render_table

    opts = ctx.obj
    disabled, severity, config_path = lint.load_lint_settings(opts.config)
    disabled += list(disable or [])
    from cdpio_cli import plan as plan_mod

    plan_path = plan_file or plan_mod.plan_path_from_config(opts.config)
    tracking_plan = plan_mod.load_plan(plan_path) if plan_path else None
    paths = fixtures.expand_paths(files)
    rows: Iterable[Any] = fixtures.iter_rows(paths, stdin=sys.stdin)
    # A bar on a terminal (drawn by each update: no thread, so lint may still
    # fork its worker), a line every 10 s in a log, nothing with --quiet.
    progress_ui = work_progress(opts, "lint messages", auto_refresh=False)
    if progress_ui:
        rows = _counted(rows, progress_ui)
    try:
        result = lint.lint_records(
            rows,
            disable=disabled,
            severity_overrides=severity,
            max_per_rule=max_per_rule or None,
            plan=tracking_plan,
        )
    finally:
        if progress_ui:
            progress_ui.close()

    report = _lint_report(result, paths, strict=strict, config_path=config_path, plan_path=plan_path)
    summary = _summary_line(result, len(paths))
    if not opts.quiet:
        # Rendered here rather than in finish() to honour --max-rows and end
        # with the summary line; finish() still writes --json/--junit/GitHub.
        console = stderr_console(opts)
        for text in report.notes:
            console.print(text, markup=False, highlight=False, style="dim")
        render_table(report, console, verbose=opts.verbose, max_rows=max_rows or None)
        console.print(summary, markup=False, highlight=False)
    finish(report, opts, human_done=not opts.quiet)


PROGRESS_EVERY_MESSAGES = 10_000


def _counted(rows: Iterable[Any], progress: ProgressBar | ProgressLines) -> Iterator[Any]:
    """The rows as they are, with the count read so far shown every
    PROGRESS_EVERY_MESSAGES (lint does not know the total in advance)."""
    done = 0
    for done, row in enumerate(rows, 1):
        yield row
        if not done % PROGRESS_EVERY_MESSAGES:
            progress.update(done, None, failed=None)
    progress.update(done, None, failed=None)


def _lint_report(
    result: LintResult, paths: list[str], *, strict: bool, config_path: str | None, plan_path: str | None
) -> Report:
    """The findings as checks (one passed check when there are none), with the run's summary."""
    from cdpio_cli import lint, results

    report = results.Report(command="lint", strict=strict)
    report.extend(lint.findings_to_checks(result))
    if not result.findings:
        report.add(
            results.Check(
                id="lint",
                route="lint",
                tier=results.Tier.LINT,
                status=results.Status.PASSED,
                message=f"{result.messages:,} message(s), no findings",
            )
        )
    report.summary.update(result.summary())
    report.summary["files"] = paths
    if config_path:
        report.summary["config"] = config_path
    if plan_path:
        report.summary["plan"] = plan_path
    report.notes.extend(result.notes)
    return report


def _summary_line(result: LintResult, files: int) -> str:
    return (
        f"lint: {result.messages:,} message(s) read"
        + (f" ({result.invalid:,} unreadable)" if result.invalid else "")
        + f" from {files} file(s): {result.errors:,} error(s), "
        f"{result.warnings:,} warning(s), {result.infos:,} info"
    )

"""`cdpio plan`: infer, pull and diff tracking plans (docs/tracking-plans.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from cdpio_cli.cli.output import GlobalOptions
    from cdpio_cli.results import Report

HELP = """Tracking plans: infer one from fixtures, pull one from Segment Protocols, diff two.

`cdpio lint --plan PLAN.yaml` (or lint.plan in the config) checks event data
against a plan; send-test checks its test events against lint.plan too.

Example:

    cdpio plan infer events/*.ndjson -o tracking-plan.yaml
"""

app = typer.Typer(name="plan", no_args_is_help=True, help=HELP)


def _output(
    ctx_opts: GlobalOptions,
    text: str,
    data: dict[str, Any],
    output: str | None,
    force: bool,
    report: Report,
    what: str,
) -> None:
    """Write the plan to -o, else YAML on stdout (JSON mode: in the document)."""
    import sys

    from cdpio_cli import plan as plan_mod

    if output:
        plan_mod.write_new_file(output, text, force=force)
        report.summary["output"] = output
        report.notes.append(f"plan: wrote {what} to {output}")
    elif not ctx_opts.json:
        sys.stdout.write(text)
        sys.stdout.flush()
    report.summary["plan"] = data


@app.command("infer")
def infer(
    ctx: typer.Context,
    files: list[str] = typer.Argument(
        ..., metavar="FILE...", help="Fixture files or globs (.json .jsonl .ndjson .yaml, .gz), - for stdin."
    ),
    output: str | None = typer.Option(
        None, "--output", "-o", metavar="PLAN.yaml", help="Write the plan here (default: stdout)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the -o file if it exists."),
) -> None:
    """Write a tracking plan from observed data: types, required keys, enums and formats.

    Linting the same files against the inferred plan is clean.  Review the
    plan before committing it: it describes the data as it is, mistakes included.

    Example:

        cdpio plan infer events/*.ndjson -o tracking-plan.yaml
    """
    import sys

    from cdpio_cli import fixtures
    from cdpio_cli import plan as plan_mod
    from cdpio_cli.cli.output import finish

    opts = ctx.obj
    plan_mod.refuse_existing(output, force=force)  # before reading gigabytes
    paths = fixtures.expand_paths(files)
    inferrer = plan_mod.Inferrer()
    for record in fixtures.iter_records(paths, stdin=sys.stdin):
        inferrer.add(record)
    report = inferrer.report(paths)
    _output(opts, inferrer.to_yaml(), inferrer.plan_data(), output, force, report, "the inferred plan")
    finish(report, opts)


@app.command("pull")
def pull(
    ctx: typer.Context,
    plan_id: str | None = typer.Option(
        None, "--id", metavar="PLAN_ID", help="The Segment tracking plan (default: the workspace's only live plan)."
    ),
    output: str | None = typer.Option(
        None, "--output", "-o", metavar="PLAN.yaml", help="Write the plan here (default: stdout)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the -o file if it exists."),
    page_size: int = typer.Option(
        200, "--page-size", metavar="N", min=1, max=200, help="Rules per Public API request (1-200)."
    ),
) -> None:
    """Fetch a Segment Protocols tracking plan through the Public API and convert it.

    Needs segment.public_api_token (Protocols read access).  TRACK rules
    become events, IDENTIFY/GROUP/PAGE/SCREEN rules the sections of the same
    name; deprecated rules are left out.

    Example:

        cdpio plan pull --id tp_sprout_rVGCC6WdrNx -o tracking-plan.yaml
    """
    from cdpio_cli import plan as plan_mod
    from cdpio_cli.cli.output import finish
    from cdpio_cli.errors import UsageError
    from cdpio_cli.keys import ServiceHttp
    from cdpio_cli.settings import open_settings

    opts = ctx.obj
    plan_mod.refuse_existing(output, force=force)
    with open_settings(opts) as settings:
        if not settings.segment.public_api_token:
            raise UsageError(
                "plan pull needs segment.public_api_token",
                hint="create a Public API token with Protocols read access (Settings > "
                "Workspace settings > Access Management > Tokens)",
            )
        http = ServiceHttp.for_settings(settings)
        try:
            meta, pid, rules = plan_mod.fetch_segment_plan(settings, http, plan_id, page_size=page_size)
        finally:
            http.close()
        notes = settings.notes
    data, text, report = plan_mod.pulled_plan(meta, pid, rules)
    report.notes[:0] = notes
    _output(opts, text, data, output, force, report, "the plan")
    finish(report, opts)


@app.command("diff")
def diff(
    ctx: typer.Context,
    before: str = typer.Argument(..., metavar="A", help="The old plan."),
    after: str = typer.Argument(..., metavar="B", help="The new plan."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when the plans differ."),
) -> None:
    """Show what changed between two tracking plans: events, properties, required keys, settings.

    Example:

        cdpio plan diff tracking-plan.yaml pulled.yaml --exit-code
    """
    from cdpio_cli import plan as plan_mod
    from cdpio_cli.cli.output import finish

    opts = ctx.obj
    a, b = plan_mod.load_plan(before), plan_mod.load_plan(after)
    finish(plan_mod.diff_report(before, after, plan_mod.diff_plans(a, b), exit_code=exit_code), opts)

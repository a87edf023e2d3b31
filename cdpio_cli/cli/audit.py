"""`cdpio audit`: campaigns and segments held against the events and traits your app sends."""

from __future__ import annotations

import typer


def command(
    ctx: typer.Context,
    files: list[str] | None = typer.Argument(
        None,
        metavar="[FILE...]",
        help="Fixture files or globs with the messages your app sends (.json .jsonl .ndjson .yaml, .gz).",
    ),
    record: list[str] | None = typer.Option(
        None, "--record", metavar="FILE", help="A file the sandbox recorded with `cdpio sandbox --record` (repeatable)."
    ),
    workspace: str | None = typer.Option(
        None,
        "--workspace",
        metavar="FILE",
        help="Read segments and campaigns from this workspace file instead of the App API (offline).",
    ),
    plan_file: str | None = typer.Option(
        None,
        "--plan",
        metavar="PLAN.yaml",
        help="Also hold the workspace to this tracking plan: planned trigger events, planned segment "
        "attributes of a compatible type (default: the config's lint.plan).",
    ),
) -> None:
    """Audit the workspace's campaigns and segments against the data your app sends.

    Reads the campaigns, their actions and the segments from the App API (or,
    with --workspace, from a workspace file), and the event names and traits
    from FILE... and --record files.  Reports a trigger event that nothing
    sends, a near miss (`Signed up` vs `Signed Up`), a running campaign whose
    actions are all draft or off, a trigger or filter segment that does not
    exist, a segment still building, and a campaign that is not active.
    With a tracking plan (--plan or lint.plan), also a trigger event the plan
    does not list, and a segment condition on an attribute that is not a
    planned identify trait or can never equal a value of its planned type.

    Exit codes: 0 no error-level finding, 1 an error-level finding, 2 bad
    input, 3 App API key rejected, 4 App API unreachable.

    Example:

        cdpio audit events/*.ndjson
        cdpio audit --workspace examples/campaigns/workspace.yaml examples/campaigns/events.ndjson
        cdpio audit --workspace examples/campaigns/workspace.yaml --plan examples/tracking-plan.yaml
    """
    from cdpio_cli import audit, fixtures
    from cdpio_cli import plan as plan_mod
    from cdpio_cli.cli.output import finish

    opts = ctx.obj
    plan_path = plan_file or plan_mod.plan_path_from_config(opts.config)
    tracking_plan = plan_mod.load_plan(plan_path) if plan_path else None
    paths = fixtures.expand_paths(list(files or [])) + fixtures.expand_paths(list(record or []))
    data = audit.read_data(paths) if paths else None
    if workspace:
        report = audit.run_audit(audit.from_file(workspace), data, tracking_plan)
        finish(report, opts)
    from cdpio_cli.cli.output import spinner, warn_cleaned_credentials
    from cdpio_cli.settings import open_settings

    with open_settings(opts) as settings:
        warn_cleaned_credentials(opts, settings)
        with spinner(opts) as progress:
            report = audit.audit_workspace(settings, data, tracking_plan, progress=progress)
        report.notes[:0] = settings.notes
    finish(report, opts)

"""`cdpio audit`: campaigns and segments held against the events and traits your app sends."""

from __future__ import annotations

import typer


def command(
    ctx: typer.Context,
    files: list[str] | None = typer.Argument(
        None, metavar="[FILE...]", help="Fixture files or globs with the messages your app sends "
                                        "(.json .jsonl .ndjson .yaml, .gz)."),
    record: list[str] | None = typer.Option(
        None, "--record", metavar="FILE", help="A file the sandbox recorded with `cdpio sandbox --record` "
                                               "(repeatable)."),
    workspace: str | None = typer.Option(
        None, "--workspace", metavar="FILE", help="Read segments and campaigns from this workspace file "
                                                  "instead of the App API (offline)."),
) -> None:
    """Audit the workspace's campaigns and segments against the data your app sends.

    Reads the campaigns, their actions and the segments from the App API (or,
    with --workspace, from a workspace file), and the event names and traits
    from FILE... and --record files.  Reports a trigger event that nothing
    sends, a near miss (`Signed up` vs `Signed Up`), a running campaign whose
    actions are all draft or off, a trigger or filter segment that does not
    exist, a segment still building, and a campaign that is not active.

    Exit codes: 0 no error-level finding, 1 an error-level finding, 2 bad
    input, 3 App API key rejected, 4 App API unreachable.

    Example:

        cdpio audit events/*.ndjson
        cdpio audit --workspace examples/campaigns/workspace.yaml examples/campaigns/events.ndjson
    """
    from cdpio_cli import audit, fixtures
    from cdpio_cli.cli.output import finish

    opts = ctx.obj
    paths = fixtures.expand_paths(list(files or [])) + fixtures.expand_paths(list(record or []))
    data = audit.read_data(paths) if paths else None
    if workspace:
        report = audit.run_audit(audit.from_file(workspace), data)
        finish(report, opts)
    from cdpio_cli.cli.output import spinner, warn_cleaned_credentials
    from cdpio_cli.settings import open_settings

    with open_settings(opts) as settings:
        warn_cleaned_credentials(opts, settings)
        with spinner(opts) as progress:
            report = audit.audit_workspace(settings, data, progress=progress)
        report.notes[:0] = settings.notes
    finish(report, opts)

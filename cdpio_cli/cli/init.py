"""`cdpio init`: write a commented starter cdpio.yaml."""

from __future__ import annotations

import typer


def command(
    ctx: typer.Context,
    path: str | None = typer.Option(None, "--path", "-p", help="Where to write (default: ./cdpio.yaml)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter cdpio.yaml that reads secrets from env vars.

    Example:

        cdpio init && export SEGMENT_WRITE_KEY=... CUSTOMERIO_SITE_ID=... CUSTOMERIO_TRACK_API_KEY=...
    """
    from cdpio_cli.cli.output import finish
    from cdpio_cli.init import write_starter_config
    from cdpio_cli.results import Check, Report, Status, Tier

    written = write_starter_config(path or "cdpio.yaml", force=force)
    report = Report("init")
    report.add(
        Check(
            id="config",
            route="config",
            tier=Tier.FORMAT,
            status=Status.PASSED,
            message=f"wrote {written}",
            file=str(written),
        )
    )
    report.notes.append("next: export the env vars it names, then run `cdpio check-keys`")
    finish(report, ctx.obj)

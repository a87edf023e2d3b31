"""`cdpio check-keys`: clean, format-check and live-check every credential."""

from __future__ import annotations

import typer


def command(
    ctx: typer.Context,
    offline: bool = typer.Option(False, "--offline", help="Format checks only; no network."),
    timeout: float = typer.Option(
        10.0,
        "--timeout",
        metavar="SECONDS",
        help="Per-request timeout; the whole command ends within this + 2 x min(this, 10) seconds.",
    ),
) -> None:
    """Check every configured credential: cleaned, well-formed, accepted by its service.

    Strips stray whitespace, newlines, invisible characters and quotes from each
    key (and says what it removed, never the value), checks its format, then asks
    each service: Customer.io's Track API (which also tells the workspace region),
    the App API, the Pipelines API in strict mode, and Segment's settings lookup
    and Public API.

    Example:

        cdpio check-keys --junit reports/keys.xml
    """
    from cdpio_cli.cli.output import finish
    from cdpio_cli.keys import check_keys
    from cdpio_cli.settings import open_settings
    from cdpio_cli.transport import check_timeout

    opts = ctx.obj
    check_timeout(timeout, "--timeout")
    with open_settings(opts, needs_services=not offline) as settings:
        report = check_keys(settings, offline=offline, timeout=timeout)
        settings.stamp(report)
    finish(report, opts)

"""`cdpio replay`: stream fixture files to a route (wiring only; logic in cdpio_cli.replay)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import typer

# Only the defaults and route names (cheap to import): the rest of replay loads when the command runs.
from cdpio_cli.replay.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE,
    DEFAULT_ROUTE,
    DEFAULT_TIMEOUT,
)

if TYPE_CHECKING:
    from cdpio_cli.cli.output import GlobalOptions, ProgressBar, ProgressLines
    from cdpio_cli.errors import CdpioError
    from cdpio_cli.replay import Progress, Replay, ReplayOptions, ReplayResult
    from cdpio_cli.settings import Settings

_T = TypeVar("_T")


def command(
    ctx: typer.Context,
    files: list[str] = typer.Argument(
        ..., metavar="FILE...", help="Fixture files or globs (.json .jsonl .ndjson .yaml, .gz), - for stdin."
    ),
    route: str | None = typer.Option(
        None,
        "--route",
        metavar="segment|pipelines|customerio",
        help=f"Where to send (default: replay.route in cdpio.yaml, else {DEFAULT_ROUTE}).",
    ),
    rate: float | None = typer.Option(
        None,
        "--rate",
        metavar="R",
        help=f"Requests per second, at most (0: unlimited; default from config: {DEFAULT_RATE:g}).",
    ),
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        metavar="N",
        help=f"Requests in flight at once (default from config: {DEFAULT_CONCURRENCY}).",
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        metavar="N",
        help=f"Messages per request, at most 2500 (default from config: {DEFAULT_BATCH_SIZE}).",
    ),
    max_retries: int | None = typer.Option(
        None,
        "--max-retries",
        metavar="N",
        help=f"Retries per request on 408/429/5xx/network errors (default {DEFAULT_MAX_RETRIES}).",
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", metavar="S", help=f"Seconds to wait for each response (default {DEFAULT_TIMEOUT:g})."
    ),
    dead_letter: str | None = typer.Option(
        None,
        "--dead-letter",
        metavar="PATH",
        help="Where failed messages go (default: <first file>.dead-letter.ndjson).",
    ),
    checkpoint: str | None = typer.Option(
        None, "--checkpoint", metavar="PATH", help="Record progress here; rerun with the same PATH to resume."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Send the valid messages; invalid ones go to the dead-letter file."
    ),
    new_message_ids: bool = typer.Option(
        False, "--new-message-ids", help="Give every message a new messageId (replay the same file twice)."
    ),
    id_prefix: str | None = typer.Option(
        None, "--id-prefix", metavar="P", help="Prefix userId, anonymousId and previousId (keep test people apart)."
    ),
    shift_timestamps: bool = typer.Option(
        False, "--shift-timestamps", help="Move timestamps so the newest is now (spacing kept)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and count what would be sent; send nothing."),
    force: bool = typer.Option(False, "--force", help="Truncate a non-empty dead-letter file (default: append to it)."),
) -> None:
    """Replay recorded events to Segment, Pipelines or Customer.io.

    Messages are streamed (memory stays flat), validated first (any invalid
    message stops the replay before anything is sent, exit 2, unless
    --skip-invalid), batched by count and bytes, rate limited, and retried
    with backoff.  Every message gets its messageId before the first attempt,
    so retries and resumes never duplicate.  What still fails goes to the
    dead-letter file, which `cdpio replay` accepts as input; a dead-letter
    file that already holds lines is appended to (--force truncates it).

    Exit codes: 0 all accepted; 1 something is in the dead-letter file (some
    accepted, or rejected with a 4xx); 2 invalid input or bad flags; 3 every
    request was rejected for its credentials; 4 nothing accepted and every
    failure a 5xx, timeout or network error after the retries; 130
    interrupted by Ctrl-C or SIGTERM (resume with the same --checkpoint).

    Examples:

        cdpio replay events.ndjson --rate 20 --checkpoint replay.ckpt

        cdpio replay events/*.ndjson.gz --route customerio --id-prefix test- --shift-timestamps

        cdpio replay events.dead-letter.ndjson
    """
    import sys

    from cdpio_cli.cli.output import note, warn_cleaned_credentials
    from cdpio_cli.replay import Replay, ReplayOptions, route_from_settings
    from cdpio_cli.settings import open_settings

    opts = ctx.obj
    _check_flags(route, batch_size)
    # A dry run reads only `replay:`; the secrets the config asks for need not be set.
    with open_settings(opts, needs_services=not dry_run, uses=("replay",) if dry_run else None) as settings:
        if not dry_run:  # the same hygiene report as send-test
            warn_cleaned_credentials(opts, settings)
        cfg = settings.config.replay
        route_name = route or getattr(cfg, "route", None) or DEFAULT_ROUTE
        options = ReplayOptions(
            rate=_pick(rate, cfg, "rate", DEFAULT_RATE) or None,
            concurrency=_pick(concurrency, cfg, "concurrency", DEFAULT_CONCURRENCY),
            max_retries=_pick(max_retries, cfg, "max_retries", DEFAULT_MAX_RETRIES),
            timeout=float(_pick(timeout, cfg, "timeout", DEFAULT_TIMEOUT)),
            dead_letter=dead_letter,
            checkpoint=checkpoint,
            skip_invalid=skip_invalid,
            new_message_ids=new_message_ids,
            id_prefix=id_prefix,
            shift_timestamps=shift_timestamps,
            dry_run=dry_run,
            force=force,
            other_outputs=[("--junit", opts.junit)] if opts.junit else [],
        )
        size = _pick(batch_size, cfg, "batch_size", DEFAULT_BATCH_SIZE)
        target = route_from_settings(settings, route_name, size, dry_run=dry_run)

        for text in settings.notes:
            note(opts, text, style="dim")
        result = _run_job(opts, settings.run_id, Replay(files, target, options, stdin=sys.stdin), route_name)

    _report(opts, settings, result, route_name, options)


def _check_flags(route: str | None, batch_size: int | None) -> None:
    """--route must name a route; --batch-size stays within Segment's batch limit."""
    from cdpio_cli.errors import UsageError
    from cdpio_cli.routes import registry

    if route is not None and route not in registry.route_names():
        raise UsageError(f"--route {route!r} is not a route", hint=f"use {registry.names_text()}")
    if batch_size is not None and not 1 <= batch_size <= 2500:
        raise UsageError(
            "--batch-size must be between 1 and 2500", hint="Segment drops batches of more than 2,500 events"
        )


def _report(
    opts: GlobalOptions, settings: Settings, result: ReplayResult, route_name: str, options: ReplayOptions
) -> None:
    """Print the counts, then the report (table, --json, --junit); exits with its code."""
    from cdpio_cli import results
    from cdpio_cli.cli.output import finish, stderr_console
    from cdpio_cli.replay.report import fill_report, summary_lines

    report = results.Report(command="replay", sandbox=settings.sandbox_target)
    report.run_id = settings.run_id
    fill_report(report, result, route_name, options)
    if not opts.quiet:
        # The counts first; finish then renders the checks and the verdict
        # (table, --json, --junit) and exits with the report's code.  An
        # interruption is a failed check of its own there (exit 130).
        console = stderr_console(opts)
        for line in summary_lines(result, options):
            console.print(line, markup=False, highlight=False)
    finish(report, opts)


def _run_job(opts: GlobalOptions, run_id: str, job: Replay, route_name: str) -> ReplayResult:
    """Run the job with a progress display, SIGTERM handled like Ctrl-C."""
    from cdpio_cli.cli.output import work_progress
    from cdpio_cli.errors import CdpioError

    # A bar on a terminal, a line every 10 s (or 10%) in a log.
    progress_ui = work_progress(opts, "replay")
    if progress_ui:
        job.on_progress = _progress_callback(progress_ui)
    try:
        return job.run()
    except CdpioError as exc:
        # main() prints the line and the --json document; the JUnit file
        # must say it too (a CI job reads it).
        _junit_for_error(exc, opts, run_id, route_name)
        raise
    finally:
        if progress_ui:
            progress_ui.close()


def _junit_for_error(exc: CdpioError, opts: GlobalOptions, run_id: str, route_name: str) -> None:
    from cdpio_cli import results
    from cdpio_cli.credentials import redact_report
    from cdpio_cli.paths import OutputPathError
    from cdpio_cli.replay.report import error_report

    if not opts.junit or isinstance(exc, OutputPathError):
        return  # a bad output path: write nothing at all
    report = error_report(exc, run_id, route_name)
    redact_report(report)
    try:
        results.render_junit(report, opts.junit)
    except OSError:
        pass  # the error itself is still printed, and the exit code says it


def _pick(value: _T | None, cfg: object, name: str, default: _T) -> _T:
    """The flag, else `replay.<name>` in cdpio.yaml, else the default."""
    if value is not None:
        return value
    configured: _T | None = getattr(cfg, name, None) if cfg is not None else None
    return default if configured is None else configured


def _progress_callback(ui: ProgressBar | ProgressLines) -> Callable[[Progress], None]:
    """replay.Progress snapshots -> the progress display (cli/output.py)."""

    def update(snap: Progress) -> None:
        ui.update(snap.done, snap.total, rate=snap.events_per_second, failed=snap.failed, retried=snap.retried)

    return update

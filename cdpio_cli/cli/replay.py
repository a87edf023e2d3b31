"""`cdpio replay`: stream fixture files to a route (wiring only; logic in cdpio_cli.replay)."""

from __future__ import annotations

import typer


def command(
    ctx: typer.Context,
    files: list[str] = typer.Argument(
        ..., metavar="FILE...", help="Fixture files or globs (.json .jsonl .ndjson .yaml, .gz), - for stdin."
    ),
    route: str | None = typer.Option(
        None,
        "--route",
        metavar="segment|pipelines|customerio",
        help="Where to send (default: replay.route in cdpio.yaml, else segment).",
    ),
    rate: float | None = typer.Option(
        None, "--rate", metavar="R", help="Requests per second, at most (0: unlimited; default from config: 50)."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", metavar="N", help="Requests in flight at once (default from config: 4)."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", metavar="N", help="Messages per request, at most 2500 (default from config: 100)."
    ),
    max_retries: int | None = typer.Option(
        None, "--max-retries", metavar="N", help="Retries per request on 408/429/5xx/network errors (default 5)."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", metavar="S", help="Seconds to wait for each response (default 10)."
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

    from cdpio_cli import results
    from cdpio_cli.cli.output import finish, note, stderr_console, warn_cleaned_credentials, work_progress
    from cdpio_cli.errors import CdpioError, UsageError
    from cdpio_cli.replay import Replay, ReplayOptions, make_route
    from cdpio_cli.settings import open_settings

    opts = ctx.obj
    if route is not None and route not in ("segment", "pipelines", "customerio"):
        raise UsageError(f"--route {route!r} is not a route", hint="use segment, pipelines or customerio")
    if batch_size is not None and not 1 <= batch_size <= 2500:
        raise UsageError(
            "--batch-size must be between 1 and 2500", hint="Segment drops batches of more than 2,500 events"
        )

    # A dry run reads only `replay:`; the secrets the config asks for need not be set.
    with open_settings(opts, needs_services=not dry_run, uses=("replay",) if dry_run else None) as settings:
        if not dry_run:  # the same hygiene report as send-test
            warn_cleaned_credentials(opts, settings)
        cfg = settings.config.replay
        route_name = route or getattr(cfg, "route", None) or "segment"
        options = ReplayOptions(
            rate=_pick(rate, cfg, "rate", 50.0) or None,
            concurrency=_pick(concurrency, cfg, "concurrency", 4),
            max_retries=_pick(max_retries, cfg, "max_retries", 5),
            timeout=float(_pick(timeout, cfg, "timeout", 10.0)),
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
        size = _pick(batch_size, cfg, "batch_size", 100)
        target = _route(settings, route_name, size, dry_run, make_route)

        for text in settings.notes:
            note(opts, text, style="dim")
        # A bar on a terminal, a line every 10 s (or 10%) in a log.
        progress_ui = work_progress(opts, "replay")
        job = Replay(
            files,
            target,
            options,
            stdin=sys.stdin,
            on_progress=_progress_callback(progress_ui) if progress_ui else None,
        )
        try:
            with _signals_like_ctrl_c():
                result = job.run()
        except CdpioError as exc:
            # main() prints the line and the --json document; the JUnit file
            # must say it too (a CI job reads it).
            _junit_for_error(exc, opts, settings.run_id, route_name)
            raise
        finally:
            if progress_ui:
                progress_ui.close()

    report = results.Report(command="replay", sandbox=settings.sandbox_target)
    report.run_id = settings.run_id
    _fill_report(report, result, route_name, options)
    if not opts.quiet:
        # The counts first; finish then renders the checks and the verdict
        # (table, --json, --junit) and exits with the report's code.  An
        # interruption is a failed check of its own there (exit 130).
        console = stderr_console(opts)
        for line in _summary_lines(result, options):
            console.print(line, markup=False, highlight=False)
    finish(report, opts)


class _signals_like_ctrl_c:
    """SIGTERM (a CI cancel, `docker stop`) stops the replay as Ctrl-C does:
    report, resume hint, JUnit file, spool removed, exit 130.  SIGXFSZ is
    ignored so a file-size limit is an error on the write, not a kill."""

    def __enter__(self):
        import signal

        self._saved = {}
        for name, handler in (("SIGTERM", _raise_interrupt), ("SIGXFSZ", signal.SIG_IGN)):
            sig = getattr(signal, name, None)
            if sig is not None:
                try:
                    self._saved[sig] = signal.signal(sig, handler)
                except ValueError:  # not the main thread (embedded use): leave signals alone
                    pass
        return self

    def __exit__(self, *exc):
        import signal

        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        return False


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _junit_for_error(exc, opts, run_id, route_name: str) -> None:
    from cdpio_cli.paths import OutputPathError

    if not opts.junit or isinstance(exc, OutputPathError):
        return  # a bad output path: write nothing at all
    from cdpio_cli import results
    from cdpio_cli.credentials import redact_report

    report = results.Report(command="replay")
    report.run_id = run_id
    report.add(
        results.Check(
            id="replay",
            route=route_name,
            tier="spec",
            status=results.FAILED,
            message=exc.message,
            file=exc.file,
            line=exc.line,
            hint=exc.hint,
            failure=results.failure_for_exit_code(exc.exit_code),
        )
    )
    redact_report(report)
    try:
        results.render_junit(report, opts.junit)
    except OSError:
        pass  # the error itself is still printed, and the exit code says it


def _pick(value, cfg, name, default):
    if value is not None:
        return value
    if cfg is not None and getattr(cfg, name, None) is not None:
        return getattr(cfg, name)
    return default


def _route(settings, name: str, batch_size: int, dry_run: bool, make_route):
    service = {"segment": "segment", "pipelines": "pipelines", "customerio": "track"}[name]
    creds = {
        "write_key": settings.segment.write_key,
        "site_id": settings.customerio.site_id,
        "track_api_key": settings.customerio.track_api_key,
        "pipelines_api_key": settings.customerio.pipelines_api_key,
    }
    if dry_run:
        # A dry run sends nothing: it needs no credentials or endpoint.
        creds = {k: v or "dry-run" for k, v in creds.items()}
        return make_route(name, "http://127.0.0.1", batch_size=batch_size, **creds)
    return make_route(name, settings.endpoint(service), batch_size=batch_size, **creds)


def _progress_callback(ui):
    """replay.Progress snapshots -> the progress display (cli/output.py)."""

    def update(snap) -> None:
        ui.update(snap.done, snap.total, rate=snap.events_per_second, failed=snap.failed, retried=snap.retried)

    return update


def _fill_report(report, result, route_name: str, options) -> None:
    from cdpio_cli import results
    from cdpio_cli.errors import EXIT_UNREACHABLE

    report.summary.update(result.summary())
    route_label = route_name
    if result.stopped_invalid:
        for ex in result.invalid_examples:
            report.add(
                results.Check(
                    id="replay.invalid",
                    route=route_label,
                    tier="spec",
                    status=results.FAILED,
                    message=ex.reason,
                    file=ex.file,
                    line=ex.line,
                    failure=results.FAILURE_USAGE,
                    hint="fix the message, or pass --skip-invalid to send the rest (invalid ones go to "
                    "the dead-letter file)",
                )
            )
        more = result.invalid - len(result.invalid_examples)
        report.add(
            results.Check(
                id="replay",
                route=route_label,
                tier="spec",
                status=results.FAILED,
                message=(
                    f"{result.invalid:,} of {result.read:,} message(s) are invalid"
                    + (f" ({more:,} more not listed)" if more > 0 else "")
                    + "; nothing was sent"
                ),
                failure=results.FAILURE_USAGE,
                hint="fix them, or pass --skip-invalid",
            )
        )
        return
    for ex in result.drop_examples:
        report.add(
            results.Check(
                id="replay.dropped",
                route=route_label,
                tier="mapping",
                status=results.WARNING,
                message=ex.reason,
                file=ex.file,
                line=ex.line,
                hint="the Customer.io (Actions) destination would drop this message too; not sent",
            )
        )
    for ex in result.invalid_examples:
        report.add(
            results.Check(
                id="replay.invalid",
                route=route_label,
                tier="spec",
                status=results.FAILED,
                message=ex.reason,
                file=ex.file,
                line=ex.line,
                hint=f"written to the dead-letter file {result.dead_letter}",
            )
        )
    for ex in result.failure_examples:
        report.add(
            results.Check(
                id="replay.failed",
                route=route_label,
                tier="accepted",
                status=results.FAILED,
                message=ex.reason,
                file=ex.file,
                line=ex.line,
                http_status=ex.http_status,
                hint=f"written to the dead-letter file {result.dead_letter}; replay it with "
                f"`cdpio replay {result.dead_letter}`",
            )
        )
    code = result.exit_code()
    failure = results.failure_for_exit_code(code)
    tier = "spec" if result.dry_run else "accepted"
    if result.dry_run:
        message = (
            f"dry run: {result.would_send:,} message(s) would be sent in {result.requests:,} "
            f"request(s); {result.invalid:,} invalid, {result.dropped_by_mapping:,} dropped by the mapping"
        )
    elif result.complete and not result.sent and result.skipped_resumed:
        message = f"already complete: the checkpoint covers all {result.skipped_resumed:,} message(s)"
    else:
        message = f"{result.accepted:,} of {result.read:,} message(s) accepted (HTTP 2xx; not yet proof of delivery)"
        if result.failed or result.invalid:
            message += f"; {result.failed + result.invalid:,} in the dead-letter file"
        if result.not_sent:
            message += f"; {result.not_sent:,} not resolved"
            if result.accepted_uncommitted:
                # `accepted` counts what the checkpoint covers: batches are
                # committed in input order, up to the first one left unresolved.
                message += (
                    f" ({result.accepted_uncommitted:,} of them answered 2xx behind a request "
                    "left unresolved: not counted as accepted, a resume re-sends them with "
                    "the same messageIds and the service drops the duplicates)"
                )
    hint = None
    if result.aborted:
        message = f"stopped: {result.abort_reason}; {message}"
        hint = {
            "credential": "check the credentials for this route (cdpio check-keys)",
            "rate_limited": "lower --rate or --concurrency, then replay the dead-letter file",
        }.get(result.aborted, "check the endpoint and your network (cdpio doctor)")
    elif code == EXIT_UNREACHABLE:
        hint = (
            f"the service answered 5xx, timed out or could not be reached on every request, after "
            f"the retries; check it (cdpio doctor), then replay the dead-letter file: "
            f"cdpio replay {result.dead_letter}"
        )
    elif result.dead_letter_total:
        hint = f"replay the dead-letter file when the cause is fixed: cdpio replay {result.dead_letter}"
    if result.interrupted:
        # The counts so far: failed if something is in the dead-letter file,
        # otherwise incomplete (a warning); the interruption is its own check.
        status = results.FAILED if result.dead_letter_total else results.WARNING
        failure = results.FAILURE_CHECK
    else:
        status = results.FAILED if code != 0 else results.PASSED
    report.add(
        results.Check(
            id="replay",
            route=route_label,
            tier=tier,
            status=status,
            message=message,
            failure=failure,
            hint=hint,
            duration_ms=result.duration * 1000.0,
        )
    )
    if result.interrupted:
        report.add(
            results.Check(
                id="replay.interrupted",
                route=route_label,
                tier=tier,
                status=results.FAILED,
                message=_interrupted_message(result, options),
                failure=results.FAILURE_INTERRUPTED,
                hint=_resume_hint(options),
            )
        )


def _interrupted_message(result, options) -> str:
    if result.interrupted_reading:
        return "interrupted while reading the input, before anything was sent"
    left = f"{result.not_sent:,} message(s) not resolved"
    if options.checkpoint:
        return (
            f"interrupted: {left}; resume with the same command and --checkpoint "
            f"{options.checkpoint} (nothing is lost; what is re-sent keeps its messageId, which "
            "the service drops as a duplicate)"
        )
    return (
        f"interrupted: {left}; without --checkpoint this run cannot be resumed, and a rerun sends every message again"
    )


def _resume_hint(options) -> str:
    if options.checkpoint:
        return f"rerun the same command with --checkpoint {options.checkpoint}"
    return (
        "pass --checkpoint PATH to be able to resume; messages with a messageId are dropped by "
        "the service when sent again, messages without one get a new id in a new run"
    )


def _summary_lines(result, options) -> list[str]:
    if result.stopped_invalid:
        # One line per message, file:line first, whatever the terminal width.
        lines = [f"{ex.file}:{ex.line}: {ex.reason}" for ex in result.invalid_examples]
        more = result.invalid - len(result.invalid_examples)
        if more > 0:
            lines.append(f"... and {more:,} more")
        lines.append(
            f"replay: nothing sent; {result.invalid:,} invalid message(s) "
            "(fix them, or pass --skip-invalid to send the rest and dead-letter these)"
        )
        return lines
    parts = [
        f"{result.read:,} read",
        f"{result.sent:,} sent",
        f"{result.accepted:,} accepted",
        f"{result.failed:,} failed",
        f"{result.invalid:,} invalid",
        f"{result.retried:,} retried",
    ]
    if result.dropped_by_mapping:
        parts.append(f"{result.dropped_by_mapping:,} dropped by the mapping")
    if result.skipped_resumed:
        parts.append(f"{result.skipped_resumed:,} done by an earlier run")
    if result.not_sent:
        parts.append(f"{result.not_sent:,} not resolved")
    if result.accepted_uncommitted:
        parts.append(
            f"{result.accepted_uncommitted:,} of them answered 2xx but not committed "
            "(behind an unresolved request; a resume re-sends them)"
        )
    if result.dry_run:
        parts = [
            f"{result.read:,} read",
            f"{result.would_send:,} would be sent",
            f"{result.invalid:,} invalid",
            f"{result.requests:,} request(s)",
        ]
    lines = ["replay: " + ", ".join(parts)]
    if result.status_counts:
        lines.append("status: " + "  ".join(f"{k}×{v:,}" for k, v in sorted(result.status_counts.items())))
    lat = result.latency_ms
    if lat.get("p50") is not None:
        lines.append(
            f"latency ms: p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  p99 {lat['p99']:.1f};  "
            f"{result.events_per_second:,.0f} events/s;  {result.duration:.2f} s"
        )
    if result.dead_letter:
        lines.append(f"dead-letter: {result.dead_letter} ({result.dead_letter_total:,} line(s))")
        if result.dead_letter_prior:
            lines.append(
                f"dead-letter: appended after the {result.dead_letter_prior:,} line(s) an earlier "
                "run left there (pass --force to truncate it instead)"
            )
    if result.not_sent and options.checkpoint:
        lines.append(f"resume: rerun with --checkpoint {options.checkpoint}")
    return lines

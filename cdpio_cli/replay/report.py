"""What a replay's result means for the user: the checks of the report
(table, --json, --junit) and the summary lines printed before them."""

from __future__ import annotations

from cdpio_cli import results
from cdpio_cli.errors import CdpioError, ExitCode, FailureKind, failure_for_exit_code
from cdpio_cli.replay.options import ReplayOptions, ReplayResult

_ABORT_HINTS = {
    "credential": "check the credentials for this route (cdpio check-keys)",
    "rate_limited": "lower --rate or --concurrency, then replay the dead-letter file",
}
_UNREACHABLE_ABORT_HINT = "check the endpoint and your network (cdpio doctor)"


def fill_report(report: results.Report, result: ReplayResult, route: str, options: ReplayOptions) -> None:
    """Add the replay's checks and summary to `report`."""
    report.summary.update(result.summary())
    if result.stopped_invalid:
        _add_stopped_invalid(report, result, route)
        return
    _add_examples(report, result, route)
    tier = results.Tier.SPEC if result.dry_run else results.Tier.ACCEPTED
    code = result.exit_code()
    failure = failure_for_exit_code(code)
    if result.interrupted:
        # The counts so far: failed if something is in the dead-letter file,
        # otherwise incomplete (a warning); the interruption is its own check.
        status = results.Status.FAILED if result.dead_letter_total else results.Status.WARNING
        failure = FailureKind.CHECK
    else:
        status = results.Status.FAILED if code != 0 else results.Status.PASSED
    message, hint = _verdict(result, code)
    report.add(
        results.Check(
            id="replay",
            route=route,
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
                route=route,
                tier=tier,
                status=results.Status.FAILED,
                message=interrupted_message(result, options),
                failure=FailureKind.INTERRUPTED,
                hint=resume_hint(options),
            )
        )


def _add_stopped_invalid(report: results.Report, result: ReplayResult, route: str) -> None:
    for ex in result.invalid_examples:
        report.add(
            results.Check(
                id="replay.invalid",
                route=route,
                tier=results.Tier.SPEC,
                status=results.Status.FAILED,
                message=ex.reason,
                file=ex.file,
                line=ex.line,
                failure=FailureKind.USAGE,
                hint="fix the message, or pass --skip-invalid to send the rest (invalid ones go to "
                "the dead-letter file)",
            )
        )
    more = result.invalid - len(result.invalid_examples)
    report.add(
        results.Check(
            id="replay",
            route=route,
            tier=results.Tier.SPEC,
            status=results.Status.FAILED,
            message=(
                f"{result.invalid:,} of {result.read:,} message(s) are invalid"
                + (f" ({more:,} more not listed)" if more > 0 else "")
                + "; nothing was sent"
            ),
            failure=FailureKind.USAGE,
            hint="fix them, or pass --skip-invalid",
        )
    )


def _add_examples(report: results.Report, result: ReplayResult, route: str) -> None:
    for ex in result.drop_examples:
        report.add(
            results.Check(
                id="replay.dropped",
                route=route,
                tier=results.Tier.MAPPING,
                status=results.Status.WARNING,
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
                route=route,
                tier=results.Tier.SPEC,
                status=results.Status.FAILED,
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
                route=route,
                tier=results.Tier.ACCEPTED,
                status=results.Status.FAILED,
                message=ex.reason,
                file=ex.file,
                line=ex.line,
                http_status=ex.http_status,
                hint=f"written to the dead-letter file {result.dead_letter}; replay it with "
                f"`cdpio replay {result.dead_letter}`",
            )
        )


def _verdict(result: ReplayResult, code: int) -> tuple[str, str | None]:
    """The main check's message and hint."""
    message = _counts_message(result)
    if result.aborted:
        message = f"stopped: {result.abort_reason}; {message}"
        return message, _ABORT_HINTS.get(result.aborted, _UNREACHABLE_ABORT_HINT)
    if code == ExitCode.UNREACHABLE:
        return message, (
            f"the service answered 5xx, timed out or could not be reached on every request, after "
            f"the retries; check it (cdpio doctor), then replay the dead-letter file: "
            f"cdpio replay {result.dead_letter}"
        )
    if result.dead_letter_total:
        return message, f"replay the dead-letter file when the cause is fixed: cdpio replay {result.dead_letter}"
    return message, None


def _counts_message(result: ReplayResult) -> str:
    if result.dry_run:
        return (
            f"dry run: {result.would_send:,} message(s) would be sent in {result.requests:,} "
            f"request(s); {result.invalid:,} invalid, {result.dropped_by_mapping:,} dropped by the mapping"
        )
    if result.complete and not result.sent and result.skipped_resumed:
        return f"already complete: the checkpoint covers all {result.skipped_resumed:,} message(s)"
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
    return message


def error_report(exc: CdpioError, run_id: str, route: str) -> results.Report:
    """The report of a replay stopped by an error before it had a result
    (the JUnit file must say it too: a CI job reads it)."""
    report = results.Report(command="replay")
    report.run_id = run_id
    report.add(
        results.Check(
            id="replay",
            route=route,
            tier=results.Tier.SPEC,
            status=results.Status.FAILED,
            message=exc.message,
            file=exc.file,
            line=exc.line,
            hint=exc.hint,
            failure=failure_for_exit_code(exc.exit_code),
        )
    )
    return report


def interrupted_message(result: ReplayResult, options: ReplayOptions) -> str:
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


def resume_hint(options: ReplayOptions) -> str:
    if options.checkpoint:
        return f"rerun the same command with --checkpoint {options.checkpoint}"
    return (
        "pass --checkpoint PATH to be able to resume; messages with a messageId are dropped by "
        "the service when sent again, messages without one get a new id in a new run"
    )


def summary_lines(result: ReplayResult, options: ReplayOptions) -> list[str]:
    """The counts, one line each, printed before the checks."""
    if result.stopped_invalid:
        return _invalid_lines(result)
    lines = ["replay: " + ", ".join(_dry_run_counts(result) if result.dry_run else _counts(result))]
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


def _invalid_lines(result: ReplayResult) -> list[str]:
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


def _counts(result: ReplayResult) -> list[str]:
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
    return parts


def _dry_run_counts(result: ReplayResult) -> list[str]:
    return [
        f"{result.read:,} read",
        f"{result.would_send:,} would be sent",
        f"{result.invalid:,} invalid",
        f"{result.requests:,} request(s)",
    ]

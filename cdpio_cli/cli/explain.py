"""`cdpio explain`: what the Customer.io (Actions) destination does with each message."""

from __future__ import annotations

from typing import List

import typer


def command(
    ctx: typer.Context,
    files: List[str] = typer.Argument(..., metavar="FILE...",
                                      help="Fixture files or globs (.json .jsonl .ndjson .yaml, .gz), - for stdin."),
    only_dropped: bool = typer.Option(False, "--only-dropped", help="List only the messages that are dropped."),
    fail_on_drop: bool = typer.Option(False, "--fail-on-drop", help="Exit 1 when any message is dropped."),
    action: str = typer.Option(None, "--action", metavar="NAME",
                               help="Run every message through this destination action (e.g. trackEvent, "
                                    "createUpdateDevice) with its default field mapping, whatever the trigger."),
) -> None:
    """Show, per message, the destination action and the Customer.io operation it sends, or why it is dropped.

    A message can be dropped by Segment on ingest (no userId/anonymousId, a
    track without an event) or by the Customer.io (Actions) destination (a
    page without properties.url, a device event without a push token).
    Dropped messages are warnings; the exit code is 0 unless --fail-on-drop.
    --verbose (or --json) shows each Track API v2 body.

    --action NAME runs each message through that one action (what a custom
    subscription with the default field mapping would send), skipping the
    default triggers and Segment's ingest checks.

    Example:

        cdpio explain events.ndjson --only-dropped

        cdpio explain --action createUpdateDevice --json installs.ndjson
    """
    import sys

    from cdpio_cli import explain, fixtures, mapping, results
    from cdpio_cli.cli.output import finish
    from cdpio_cli.errors import UsageError

    opts = ctx.obj
    if action is not None and action not in mapping.ACTION_BUILDERS:
        raise UsageError(f"--action {action!r} is not an action of the Customer.io (Actions) destination",
                         hint="use one of " + ", ".join(mapping.ACTION_BUILDERS))
    paths = fixtures.expand_paths(files)
    report = results.Report(command="explain")
    summary = explain.ExplainSummary()
    for exp in explain.explain_records(fixtures.iter_records(paths, stdin=sys.stdin), action=action):
        summary.add(exp)
        if only_dropped and not exp.dropped:
            continue
        report.add(explain.explanation_to_check(exp, verbose=opts.verbose, fail_on_drop=fail_on_drop))
    report.summary.update(summary.to_dict())
    report.summary["files"] = paths
    if action is not None:
        report.summary["action"] = action
    parts = [f"{summary.messages:,} message(s)", f"{summary.sent:,} sent as {summary.operations:,} "
             "Customer.io operation(s)", f"{summary.dropped_by_segment:,} dropped by Segment",
             f"{summary.dropped_by_destination:,} dropped by the destination"]
    if summary.unreadable:
        parts.append(f"{summary.unreadable:,} unreadable")
    report.notes.append("explain: " + ", ".join(parts))
    finish(report, opts)

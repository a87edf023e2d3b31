"""`cdpio explain`: what the Customer.io (Actions) destination does with each message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from cdpio_cli.cli.output import GlobalOptions
    from cdpio_cli.mapping import Subscription
    from cdpio_cli.plan import PlanChecker
    from cdpio_cli.results import Report


def command(
    ctx: typer.Context,
    files: list[str] = typer.Argument(
        ..., metavar="FILE...", help="Fixture files or globs (.json .jsonl .ndjson .yaml, .gz), - for stdin."
    ),
    only_dropped: bool = typer.Option(False, "--only-dropped", help="List only the messages that are dropped."),
    fail_on_drop: bool = typer.Option(False, "--fail-on-drop", help="Exit 1 when any message is dropped."),
    action: str = typer.Option(
        None,
        "--action",
        metavar="NAME",
        help="Run every message through this destination action (e.g. trackEvent, "
        "createUpdateDevice) with its default field mapping, whatever the trigger.",
    ),
    plan_file: str = typer.Option(
        None,
        "--plan",
        metavar="PLAN.yaml",
        help="Show each message's tracking-plan violations next to its mapping (default: the config's lint.plan).",
    ),
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

    from cdpio_cli import explain, fixtures, results
    from cdpio_cli.cli.output import finish

    opts = ctx.obj
    _check_action(action)
    paths = fixtures.expand_paths(files)
    # One check per record: kept on disk, so memory stays flat over any input size.
    report = results.Report(command="explain", checks=results.CheckSpool())
    subscriptions, source = (None, "--action") if action else _workspace_subscriptions(opts, report)
    summary = explain.ExplainSummary()
    records = fixtures.iter_records(paths, stdin=sys.stdin)
    checker = _plan_checker(opts, plan_file, report)
    for exp in explain.explain_records(records, action=action, subscriptions=subscriptions, plan_checker=checker):
        summary.add(exp)
        if only_dropped and not exp.dropped:
            continue
        report.add(explain.explanation_to_check(exp, verbose=opts.verbose, fail_on_drop=fail_on_drop))
    report.summary.update(summary.to_dict())
    report.summary["files"] = paths
    if action is not None:
        report.summary["action"] = action
    else:
        report.summary["subscriptions"] = source
    report.notes.append("explain: " + summary.sentence())
    finish(report, opts)


def _check_action(action: str | None) -> None:
    """--action must name an action of the destination."""
    from cdpio_cli import mapping
    from cdpio_cli.errors import UsageError

    if action is not None and action not in mapping.ACTION_BUILDERS:
        raise UsageError(
            f"--action {action!r} is not an action of the Customer.io (Actions) destination",
            hint="use one of " + ", ".join(mapping.ACTION_BUILDERS),
        )


def _plan_checker(opts: GlobalOptions, plan_file: str | None, report: Report) -> PlanChecker | None:
    """The tracking plan from --plan, else lint.plan in cdpio.yaml, else none."""
    from cdpio_cli import plan as plan_mod

    plan_path = plan_file or plan_mod.plan_path_from_config(opts.config)
    if not plan_path:
        return None
    report.summary["plan"] = plan_path
    return plan_mod.PlanChecker(plan_mod.load_plan(plan_path))


def _workspace_subscriptions(opts: GlobalOptions, report: Report) -> tuple[list[Subscription] | None, str]:
    """(subscriptions, source): the config's customerio.subscriptions, else the
    destination's own through the Segment Public API when a token is
    configured, else None (the destination's defaults)."""
    from cdpio_cli import explain, results
    from cdpio_cli.config import find_config_path, load_config
    from cdpio_cli.errors import ConfigError
    from cdpio_cli.settings import build_settings

    path = find_config_path(opts.config)
    if path is None and not opts.sandbox_url:
        return None, explain.SUBSCRIPTIONS_DEFAULT

    def warn(message: str) -> tuple[list[Subscription] | None, str]:
        report.add(
            results.Check(
                id="subscriptions",
                route="segment",
                tier=results.Tier.MAPPING,
                status=results.Status.WARNING,
                message=f"using the destination's default subscriptions: {message}",
            )
        )
        return None, explain.SUBSCRIPTIONS_DEFAULT

    if path is not None:
        # Only the subscriptions are read here: an unset ${SECRET} elsewhere is no error.
        loaded = load_config(path, uses=("customerio.subscriptions",))
        listed = loaded.config.customerio.subscriptions
        if listed is not None:
            try:
                subs = explain.subscriptions_from_config(listed)
            except ValueError as exc:
                raise ConfigError(str(exc), file=str(path), line=loaded.line_of("customerio.subscriptions")) from None
            report.notes.append(f"explain: {len(subs)} subscription(s) from customerio.subscriptions in {path}")
            return subs, explain.SUBSCRIPTIONS_CONFIG
        token = loaded.config.segment.public_api_token
        if not opts.sandbox_url and (not token or ("segment", "public_api_token") in loaded.unset):
            return None, explain.SUBSCRIPTIONS_DEFAULT
    try:
        settings = build_settings(opts.config, sandbox=opts.sandbox, sandbox_url=opts.sandbox_url, needs_services=False)
    except ConfigError as exc:
        return warn(f"cannot read segment.public_api_token ({exc.message})")
    # The embedded sandbox (sandbox_url "") serves the defaults: nothing to ask.
    if not settings.segment.public_api_token or settings.sandbox_url == "":
        return None, explain.SUBSCRIPTIONS_DEFAULT
    from cdpio_cli.keys import ServiceHttp

    http = ServiceHttp.for_settings(settings)
    try:
        fetched, why = explain.fetch_subscriptions(settings, http)
    finally:
        http.close()
    if fetched is None:
        return warn(why)
    report.notes.append(f"explain: {why}")
    return fetched, explain.SUBSCRIPTIONS_API

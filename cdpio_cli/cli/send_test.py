"""`cdpio send-test`: send test events through each route and prove delivery."""

from __future__ import annotations

import typer


def command(
    ctx: typer.Context,
    route: list[str] | None = typer.Option(
        None,
        "--route",
        metavar="ROUTE",
        help="segment, customerio or pipelines (repeatable; default: every configured route).",
    ),
    user_id: str | None = typer.Option(
        None, "--user-id", metavar="ID", help="Test user id ({run_id} is replaced; default from send_test.user_id)."
    ),
    event: list[str] | None = typer.Option(
        None, "--event", metavar="NAME", help="Track event name to send instead of the configured ones (repeatable)."
    ),
    anonymous_flow: bool = typer.Option(
        False,
        "--anonymous-flow",
        help="Send an anonymous track first, then an identify that links it; check the merge.",
    ),
    device_token: str | None = typer.Option(
        None, "--device-token", metavar="TOKEN", help="Register this push token (Application Installed) and check it."
    ),
    platform: str | None = typer.Option(None, "--platform", metavar="ios|android", help="Platform of --device-token."),
    verify: bool | None = typer.Option(
        None,
        "--verify/--no-verify",
        help="Prove delivery by finding the events in Customer.io (default: on when an App API key is set).",
    ),
    timeout: str | None = typer.Option(
        None, "--timeout", metavar="DURATION", help="How long to wait for delivery (default: verify.timeout)."
    ),
    capture: str | None = typer.Option(
        None,
        "--capture",
        metavar="DIR",
        help="Write every raw App API response used for the verdict to DIR (credentials removed).",
    ),
) -> None:
    """Send test identify/track/page/screen messages through each route and prove delivery.

    Routes: Segment's Tracking API, Customer.io's Track API directly, and
    Customer.io's Pipelines API in strict mode.  Each message is a check with
    its status code and latency.  A 200 means *accepted*, not delivered: with
    an App API key, send-test then polls Customer.io until each route's test
    person has the sent traits and events, and reports the time to delivery.

    Examples:

        cdpio send-test
        cdpio send-test --route segment --anonymous-flow
        cdpio send-test --device-token abc123 --platform ios --junit reports/send-test.xml
        cdpio send-test --capture captures/   # keep the App API responses (docs/contracts.md)
    """
    from cdpio_cli.cli.output import duration_flag, finish, spinner, warn, warn_cleaned_credentials
    from cdpio_cli.errors import UsageError
    from cdpio_cli.sendtest import SendTestOptions, run_send_test
    from cdpio_cli.settings import open_settings

    opts = ctx.obj
    seconds = duration_flag("--timeout", timeout)
    if user_id is not None and not user_id.strip():
        raise UsageError("--user-id cannot be empty", hint="e.g. --user-id 'qa-{run_id}'")
    if platform is not None and platform not in ("ios", "android"):
        raise UsageError(f"--platform {platform!r}: use ios or android")
    if capture is not None:
        from cdpio_cli.capture import prepare_dir

        if verify is False:
            raise UsageError("--capture needs delivery verification; drop --no-verify")
        prepare_dir(capture)
    options = SendTestOptions(
        routes=route or None,
        user_id=user_id,
        events=list(event or []),
        anonymous_flow=anonymous_flow,
        device_token=device_token,
        platform=platform,
        verify=verify,
        timeout=seconds,
        verbose=opts.verbose,
        capture=capture,
    )
    with open_settings(opts) as settings:
        warn_cleaned_credentials(opts, settings)
        with spinner(opts) as progress:
            report = run_send_test(settings, options, progress=progress, warn=lambda text: warn(opts, text))
        settings.stamp(report)
    try:
        finish(report, opts)
    finally:
        if settings.sandbox_url and settings.embedded is None and not opts.quiet:
            # A running `cdpio sandbox`: its debugger page shows what these messages became.
            from cdpio_cli.cli.output import stderr_console
            from cdpio_cli.sandbox.runner import debugger_url

            stderr_console(opts).print(
                f"watch these messages: {debugger_url(settings.sandbox_url)}", markup=False, highlight=False
            )

"""`cdpio sandbox`: serve the local Segment + Customer.io emulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cdpio_cli.sandbox import defaults

if TYPE_CHECKING:
    from cdpio_cli.sandbox.options import SandboxOptions


def command(
    ctx: typer.Context,
    host: str = typer.Option(
        defaults.HOST, "--host", help="Interface to listen on (a warning for anything but 127.0.0.1)."
    ),
    port: int = typer.Option(defaults.PORT, "--port", "-p", help="Port; 0 picks a free one."),
    write_key: str | None = typer.Option(
        None, "--write-key", envvar="CDPIO_SANDBOX_WRITE_KEY", help="Segment write key to accept."
    ),
    site_id: str | None = typer.Option(
        None, "--site-id", envvar="CDPIO_SANDBOX_SITE_ID", help="Customer.io site id to accept."
    ),
    track_api_key: str | None = typer.Option(
        None, "--track-api-key", envvar="CDPIO_SANDBOX_TRACK_API_KEY", help="Customer.io Track API key to accept."
    ),
    app_api_key: str | None = typer.Option(
        None, "--app-api-key", envvar="CDPIO_SANDBOX_APP_API_KEY", help="Customer.io App API key to accept."
    ),
    pipelines_api_key: str | None = typer.Option(
        None,
        "--pipelines-api-key",
        envvar="CDPIO_SANDBOX_PIPELINES_API_KEY",
        help="Customer.io Pipelines API key to accept (default: the sandbox's key for --region).",
    ),
    public_api_token: str | None = typer.Option(
        None, "--public-api-token", envvar="CDPIO_SANDBOX_PUBLIC_API_TOKEN", help="Segment Public API token to accept."
    ),
    region: str = typer.Option("us", "--region", help="The Customer.io workspace's region: us or eu."),
    segment_region: str | None = typer.Option(
        None, "--segment-region", help="The Segment workspace's region: us or eu (default: --region)."
    ),
    no_destination: bool = typer.Option(
        False,
        "--no-destination",
        help="Simulate 'Customer.io (Actions) not connected': Segment accepts, nothing arrives.",
    ),
    fail_rate: float = typer.Option(
        0.0, "--fail-rate", min=0.0, max=1.0, help="Share of requests answered with --fail-status (0..1)."
    ),
    fail_status: int = typer.Option(500, "--fail-status", help="Status of injected errors."),
    throttle: float | None = typer.Option(
        None, "--throttle", metavar="N", help="Answer 429 with Retry-After above N requests/s."
    ),
    throttle_burst: float | None = typer.Option(
        None,
        "--throttle-burst",
        metavar="N",
        help="The --throttle bucket's capacity in requests (default: one second's worth); "
        "a small one proves a client never bursts above the rate.",
    ),
    latency: float = typer.Option(0.0, "--latency", metavar="SECONDS", help="Delay added to every answer."),
    drop_connections: float = typer.Option(
        0.0, "--drop-connections", min=0.0, max=1.0, help="Share of connections closed after processing (0..1)."
    ),
    record: str | None = typer.Option(
        None, "--record", metavar="FILE", help="Append accepted messages to FILE as NDJSON."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed for deterministic fault injection."),
    activity_data: str = typer.Option(
        "none",
        "--activity-data",
        metavar="none|properties",
        help="What App API event/page/screen activities carry in `data`: none (documented "
        "behaviour, the default) or properties (the event's properties).",
    ),
    workspace: str | None = typer.Option(
        None, "--workspace", metavar="FILE", help="Segments and campaigns the App API serves (YAML; docs/campaigns.md)."
    ),
    app_api_rate: float | None = typer.Option(
        None,
        "--app-api-rate",
        metavar="N",
        min=0.0,
        help="App API requests/s above which it answers 429 with Retry-After: 1 (default: Customer.io's "
        "own limit, 10; 0: no limit).",
    ),
) -> None:
    """Serve the local sandbox that emulates Segment and Customer.io.

    One server on 127.0.0.1 with every service under a path prefix: /segment,
    /segment-cdn, /segment-api, /pipelines, /track, /app (EU variants:
    /segment-eu, /track-eu, ...), and /_sandbox/{health,requests,deliveries,reset}
    to see what arrived and what was dropped, and why.  It prints the base URL
    and the credentials it accepts: its own defaults in full (they open only
    this local emulator), credentials you pass masked.

    Credentials can come from the environment instead of flags, so they do not
    show in `ps`: CDPIO_SANDBOX_WRITE_KEY, CDPIO_SANDBOX_SITE_ID,
    CDPIO_SANDBOX_TRACK_API_KEY, CDPIO_SANDBOX_APP_API_KEY,
    CDPIO_SANDBOX_PIPELINES_API_KEY, CDPIO_SANDBOX_PUBLIC_API_TOKEN.

    Example:

        cdpio sandbox --port 0 --throttle 200 --fail-rate 0.05 --record accepted.ndjson

        cdpio --sandbox-url http://127.0.0.1:8975 send-test --verify

    With --json it prints one JSON line on stdout instead of the banner: url,
    port, regions and the accepted credentials (masked), for scripts that
    start it with --port 0.  A running sandbox also answers GET /_sandbox/info
    (loopback only), which is how --sandbox-url learns its region and keys.
    """
    from cdpio_cli import limits
    from cdpio_cli.errors import UsageError
    from cdpio_cli.sandbox.options import OptionError, SandboxOptions

    _check_flags(region, segment_region, port, record, workspace)
    if throttle_burst is not None and throttle is None:
        raise UsageError("--throttle-burst needs --throttle (it sizes the throttle's bucket)")
    write_key, site_id = _cleaned("--write-key", write_key), _cleaned("--site-id", site_id)
    track_api_key, app_api_key = _cleaned("--track-api-key", track_api_key), _cleaned("--app-api-key", app_api_key)
    pipelines_api_key = _cleaned("--pipelines-api-key", pipelines_api_key)
    public_api_token = _cleaned("--public-api-token", public_api_token)
    try:
        options = SandboxOptions(
            host=host,
            port=port,
            region=region,
            segment_region=segment_region,
            write_key=write_key or defaults.WRITE_KEY,
            site_id=site_id or defaults.SITE_ID,
            track_api_key=track_api_key or defaults.TRACK_API_KEY,
            app_api_key=app_api_key or defaults.APP_API_KEY,
            pipelines_api_key=pipelines_api_key or defaults.pipelines_api_key(region),
            public_api_token=public_api_token or defaults.PUBLIC_API_TOKEN,
            segment_destination_enabled=not no_destination,
            fail_rate=fail_rate,
            fail_status=fail_status,
            throttle=throttle,
            throttle_burst=throttle_burst,
            latency=latency,
            drop_connections=drop_connections,
            record=record,
            seed=seed,
            activity_data=activity_data,
            workspace=workspace,
            app_api_rate=limits.APP_API_RATE if app_api_rate is None else app_api_rate,
        )
    except OptionError as exc:
        raise UsageError(f"{exc.flag} {exc.problem}") from None
    raise typer.Exit(_serve(options, as_json=bool(getattr(ctx.obj, "json", False))))


def _check_flags(region: str, segment_region: str | None, port: int, record: str | None, workspace: str | None) -> None:
    """The flags SandboxOptions does not check: a usage error naming the first bad one."""
    from cdpio_cli.errors import UsageError

    if region not in ("us", "eu"):
        raise UsageError(f"--region must be us or eu, not {region!r}")
    if segment_region not in (None, "us", "eu"):
        raise UsageError(f"--segment-region must be us or eu, not {segment_region!r}")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, not {port}")
    if record:
        from cdpio_cli.paths import check_writable_file

        check_writable_file(record, "--record", "accepted.ndjson")
    if workspace:
        from cdpio_cli.workspace_file import load_workspace

        load_workspace(workspace)  # a bad file: one line naming it, exit 2


def _cleaned(flag: str, value: str | None) -> str | None:
    """Same hygiene as every other credential: a key read from a secret file or
    env var often ends in a newline."""
    from cdpio_cli.credentials import clean, unusable_message
    from cdpio_cli.errors import UsageError

    if not value:
        return value
    result = clean(value)
    if result.problems:  # no client could ever send it
        raise UsageError(f"{flag} {unusable_message(result.problems, sent_nothing=False)}")
    return result.value or None


def _serve(options: SandboxOptions, *, as_json: bool) -> int:
    """Run the sandbox until it stops; a port or file it cannot open is a usage error."""
    from cdpio_cli.errors import UsageError
    from cdpio_cli.sandbox.runner import BindError, serve

    try:
        return serve(options, as_json=as_json)
    except BindError as exc:
        raise UsageError(
            f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}",
            hint="pick another --port, or --port 0 for a free one",
        ) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise UsageError(f"cannot start the sandbox: {where}{exc.strerror or exc}") from None

"""`cdpio verify`: check a person in Customer.io that something else sent."""

from __future__ import annotations

import typer


def command(
    ctx: typer.Context,
    user_id: str | None = typer.Option(None, "--user-id", metavar="ID", help="The person's id."),
    email: str | None = typer.Option(None, "--email", metavar="EMAIL", help="The person's email."),
    trait: list[str] | None = typer.Option(
        None, "--trait", metavar="KEY=VALUE", help="A trait the person must have (repeatable)."
    ),
    event: list[str] | None = typer.Option(
        None, "--event", metavar="NAME", help="An event that must be in the person's activities (repeatable)."
    ),
    within: str | None = typer.Option(
        None,
        "--within",
        metavar="DURATION",
        help="How long to keep looking, e.g. 90s or 10m (default: verify.timeout).",
    ),
) -> None:
    """Check that a person is in Customer.io with the given traits and events.

    For an app's own end-to-end test: after it sends its events, verify polls
    Customer.io's App API (backing off between polls) until the person has every
    --trait and --event, or the time runs out.  Values compare loosely, as the
    App API returns strings: --trait is_trial=true matches a boolean true.
    There is no run id here: an event of that name sent earlier counts too, so
    give each test run its own user id for a run-by-run proof.

    Exit codes: 0 found, 1 not found in time, 2 bad flags, 3 App API key rejected.

    Example:

        cdpio verify --email ada@example.com --trait plan_type=Pro --event "Signed Up" --within 2m
    """
    from cdpio_cli.cli.output import duration_flag, finish, spinner, warn_cleaned_credentials
    from cdpio_cli.errors import UsageError
    from cdpio_cli.settings import open_settings
    from cdpio_cli.verify import parse_trait, run_verify

    opts = ctx.obj
    if (user_id is None) == (email is None):
        raise UsageError(
            "give exactly one of --user-id or --email", hint='e.g. cdpio verify --user-id u123 --event "Signed Up"'
        )
    if (user_id is not None and not user_id.strip()) or (email is not None and not email.strip()):
        raise UsageError("--user-id/--email cannot be empty")
    traits = {}
    for text in trait or []:
        try:
            key, value = parse_trait(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        traits[key] = value
    seconds = duration_flag("--within", within)
    with open_settings(opts) as settings:
        warn_cleaned_credentials(opts, settings)
        with spinner(opts) as progress:
            report = run_verify(
                settings,
                user_id=user_id,
                email=email,
                traits=traits,
                events=list(event or []),
                within=seconds,
                progress=progress,
            )
        settings.stamp(report)
    finish(report, opts)

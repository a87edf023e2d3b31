"""`cdpio doctor`: find the first broken link between Segment and Customer.io."""

from __future__ import annotations

import typer


def command(
    ctx: typer.Context,
    user_id: str | None = typer.Option(
        None, "--user-id", metavar="ID", help="Also diagnose this person your app sent."
    ),
    email: str | None = typer.Option(
        None, "--email", metavar="EMAIL", help="Also diagnose the person with this email."
    ),
    trait: list[str] | None = typer.Option(
        None, "--trait", metavar="KEY[=VALUE]", help="A trait that person should have (repeatable)."
    ),
    event: list[str] | None = typer.Option(
        None, "--event", metavar="NAME", help="An event that person should have (repeatable)."
    ),
    within: str | None = typer.Option(
        None, "--within", metavar="DURATION", help="How long to wait for deliveries (default: verify.timeout)."
    ),
) -> None:
    """Walk the chain from your keys to Customer.io and explain the first broken link.

    In order: config found, credentials cleaned, each credential accepted by its
    service, the Customer.io region, a direct Track send, a Segment send, delivery
    into Customer.io and the traits on the test person.  doctor stops at the first
    broken link and says what is wrong and how to fix it.  With --user-id or
    --email it then checks a person your own app sent: does it exist, does it
    have the --trait values (traits never sent?) and the --event names
    (anonymous events never identified?).

    Examples:

        cdpio doctor
        cdpio doctor --user-id u123 --trait plan_type --event "Signed Up"
    """
    from cdpio_cli.cli.output import duration_flag, finish, spinner
    from cdpio_cli.doctor import PersonQuery, run_doctor
    from cdpio_cli.errors import UsageError
    from cdpio_cli.settings import open_settings

    opts = ctx.obj
    if user_id is not None and email is not None:
        raise UsageError("give --user-id or --email, not both")
    if (trait or event) and user_id is None and email is None:
        raise UsageError("--trait and --event describe a person: add --user-id or --email")
    person = None
    if user_id is not None or email is not None:
        traits: dict = {}
        for text in trait or []:
            key, sep, value = text.partition("=")
            if not key.strip():
                raise UsageError(f"--trait {text!r} must look like key or key=value")
            traits[key.strip()] = value if sep else None
        person = PersonQuery(user_id=user_id, email=email, traits=traits, events=list(event or []))
    seconds = duration_flag("--within", within)
    with open_settings(opts) as settings:
        with spinner(opts) as progress:
            report = run_doctor(settings, person=person, timeout=seconds, progress=progress, verbose=opts.verbose)
        settings.stamp(report)
    finish(report, opts)

"""`cdpio plan`: infer, pull and diff tracking plans (docs/tracking-plans.md)."""

from __future__ import annotations

import typer

HELP = """Tracking plans: infer one from fixtures, pull one from Segment Protocols, diff two.

`cdpio lint --plan PLAN.yaml` (or lint.plan in the config) checks event data
against a plan; send-test checks its test events against lint.plan too.

Example:

    cdpio plan infer events/*.ndjson -o tracking-plan.yaml
"""

app = typer.Typer(name="plan", no_args_is_help=True, help=HELP)


def _output(ctx_opts, text: str, data: dict, output: str | None, force: bool, report, what: str) -> None:
    """Write the plan to -o, else YAML on stdout (JSON mode: in the document)."""
    import sys

    from cdpio_cli import plan as plan_mod

    if output:
        plan_mod.write_new_file(output, text, force=force)
        report.summary["output"] = output
        report.notes.append(f"plan: wrote {what} to {output}")
    elif not ctx_opts.json:
        sys.stdout.write(text)
        sys.stdout.flush()
    report.summary["plan"] = data


@app.command("infer")
def infer(
    ctx: typer.Context,
    files: list[str] = typer.Argument(
        ..., metavar="FILE...", help="Fixture files or globs (.json .jsonl .ndjson .yaml, .gz), - for stdin."
    ),
    output: str | None = typer.Option(
        None, "--output", "-o", metavar="PLAN.yaml", help="Write the plan here (default: stdout)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the -o file if it exists."),
) -> None:
    """Write a tracking plan from observed data: types, required keys, enums and formats.

    Linting the same files against the inferred plan is clean.  Review the
    plan before committing it: it describes the data as it is, mistakes included.

    Example:

        cdpio plan infer events/*.ndjson -o tracking-plan.yaml
    """
    import sys
    from pathlib import Path

    from cdpio_cli import fixtures, results
    from cdpio_cli import plan as plan_mod
    from cdpio_cli.cli.output import finish
    from cdpio_cli.errors import UsageError

    opts = ctx.obj
    if output and Path(output).exists() and not force:  # before reading gigabytes
        raise UsageError(f"-o {output}: the file exists", hint="pass --force to overwrite it")
    paths = fixtures.expand_paths(files)
    inferrer = plan_mod.Inferrer()
    for record in fixtures.iter_records(paths, stdin=sys.stdin):
        inferrer.add(record)
    report = results.Report(command="plan infer")
    data = inferrer.plan_data()
    events = len(data["events"])
    report.add(
        results.Check(
            id="plan.infer",
            route="lint",
            tier="lint",
            status=results.PASSED,
            message=f"{events} event(s) and {len(data) - 3} other section(s) from {inferrer.messages:,} message(s)",
        )
    )
    if inferrer.unreadable:
        report.add(
            results.Check(
                id="plan.unreadable",
                route="lint",
                tier="spec",
                status=results.WARNING,
                message=f"{inferrer.unreadable:,} record(s) could not be read and were "
                "left out (run `cdpio lint` for where)",
            )
        )
    report.summary.update({"messages": inferrer.messages, "unreadable": inferrer.unreadable, "files": paths})
    _output(opts, inferrer.to_yaml(), data, output, force, report, "the inferred plan")
    finish(report, opts)


@app.command("pull")
def pull(
    ctx: typer.Context,
    plan_id: str | None = typer.Option(
        None, "--id", metavar="PLAN_ID", help="The Segment tracking plan (default: the workspace's only live plan)."
    ),
    output: str | None = typer.Option(
        None, "--output", "-o", metavar="PLAN.yaml", help="Write the plan here (default: stdout)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the -o file if it exists."),
    page_size: int = typer.Option(
        200, "--page-size", metavar="N", min=1, max=200, help="Rules per Public API request (1-200)."
    ),
) -> None:
    """Fetch a Segment Protocols tracking plan through the Public API and convert it.

    Needs segment.public_api_token (Protocols read access).  TRACK rules
    become events, IDENTIFY/GROUP/PAGE/SCREEN rules the sections of the same
    name; deprecated rules are left out.

    Example:

        cdpio plan pull --id tp_sprout_rVGCC6WdrNx -o tracking-plan.yaml
    """
    from pathlib import Path

    from cdpio_cli import plan as plan_mod
    from cdpio_cli import results
    from cdpio_cli.cli.output import finish
    from cdpio_cli.errors import UsageError
    from cdpio_cli.keys import ServiceHttp
    from cdpio_cli.settings import open_settings

    opts = ctx.obj
    if output and Path(output).exists() and not force:
        raise UsageError(f"-o {output}: the file exists", hint="pass --force to overwrite it")
    with open_settings(opts) as settings:
        if not settings.segment.public_api_token:
            raise UsageError(
                "plan pull needs segment.public_api_token",
                hint="create a Public API token with Protocols read access (Settings > "
                "Workspace settings > Access Management > Tokens)",
            )
        http = ServiceHttp.for_settings(settings)
        try:
            meta, pid, rules = plan_mod.fetch_segment_plan(settings, http, plan_id, page_size=page_size)
        finally:
            http.close()
        notes = settings.notes
    data, left_out = plan_mod.plan_from_segment_rules(rules)
    if meta.get("name"):
        data = {"name": str(meta["name"]), **data}
    plan_mod.parse_plan(data, f"Segment tracking plan {pid}")  # the converted plan must load
    header = [
        f"Tracking plan pulled by `cdpio plan pull` from Segment Protocols plan {pid}"
        + (f" ({meta.get('name')})" if meta.get("name") else ""),
        f"{len(rules)} rule(s); updated {meta.get('updatedAt') or 'unknown'}.",
    ]
    text = plan_mod.dump_plan(data, header=header + [n[0].upper() + n[1:] + "." for n in left_out])
    report = results.Report(command="plan pull")
    report.notes[:0] = notes
    report.add(
        results.Check(
            id="plan.pull",
            route="segment",
            tier="authenticated",
            status=results.PASSED,
            message=f"{len(rules)} rule(s) of tracking plan {pid}: {len(data['events'])} "
            "event(s)" + (f"; {len(left_out)} left out" if left_out else ""),
        )
    )
    report.summary.update({"tracking_plan_id": pid, "rules": len(rules), "left_out": left_out})
    _output(opts, text, data, output, force, report, "the plan")
    finish(report, opts)


@app.command("diff")
def diff(
    ctx: typer.Context,
    before: str = typer.Argument(..., metavar="A", help="The old plan."),
    after: str = typer.Argument(..., metavar="B", help="The new plan."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when the plans differ."),
) -> None:
    """Show what changed between two tracking plans: events, properties, required keys, settings.

    Example:

        cdpio plan diff tracking-plan.yaml pulled.yaml --exit-code
    """
    from cdpio_cli import plan as plan_mod
    from cdpio_cli import results
    from cdpio_cli.cli.output import finish

    opts = ctx.obj
    a, b = plan_mod.load_plan(before), plan_mod.load_plan(after)
    changes = plan_mod.diff_plans(a, b)
    report = results.Report(command="plan diff")
    for change in changes:
        report.add(
            results.Check(
                id=f"plan.{change.kind}",
                route="lint",
                tier="lint",
                status=results.FAILED if exit_code else results.WARNING,
                message=change.text(),
                details=change.to_dict(),
            )
        )
    if not changes:
        report.add(
            results.Check(
                id="plan.same",
                route="lint",
                tier="lint",
                status=results.PASSED,
                message=f"{before} and {after} plan the same data",
            )
        )
    report.summary.update(
        {
            "a": before,
            "b": after,
            "changes": [c.to_dict() for c in changes],
            "counts": {k: sum(c.kind == k for c in changes) for k in ("added", "removed", "changed")},
        }
    )
    finish(report, opts)

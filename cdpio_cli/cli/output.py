"""Terminal output: human text on stderr, machine output alone on stdout.

Commands build a results.Report and hand it to `finish`, which renders it in
every mode the user asked for and exits with the report's exit code.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:  # pragma: no cover
    from cdpio_cli.results import Report


@dataclass
class GlobalOptions:
    """Options every command shares (set on the `cdpio` callback)."""

    config: str | None = None
    sandbox: bool = False
    sandbox_url: str | None = None
    json: bool = False
    junit: str | None = None
    quiet: bool = False
    verbose: bool = False
    no_color: bool = False
    command: str = ""


def color_disabled(opts: GlobalOptions | None = None) -> bool:
    if opts is not None and opts.no_color:
        return True
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


_consoles: dict[bool, object] = {}


def stderr_console(opts: GlobalOptions | None = None):
    """The rich console for humans (stderr).  Rich drops colour and live
    progress by itself when stderr is not a terminal."""
    from rich.console import Console

    no_color = color_disabled(opts)
    console = _consoles.get(no_color)
    if console is None or getattr(console, "file", None) is not sys.stderr:
        # Off a terminal (CI logs, pipes) rich would wrap at 80 columns; logs read
        # better wider.  COLUMNS still wins when set.
        width = None
        if not sys.stderr.isatty() and not os.environ.get("COLUMNS"):
            width = 140
        # rich's no_color keeps bold/dim/italic escape codes; color_system=None
        # emits none at all, which is what --no-color and NO_COLOR promise.
        console = Console(stderr=True, no_color=no_color, highlight=False, soft_wrap=False, width=width,
                          **({"color_system": None} if no_color else {}))
        _consoles[no_color] = console
    return console


def note(opts: GlobalOptions | None, message: str, *, style: str | None = None) -> None:
    """A human remark on stderr (suppressed by --quiet)."""
    if opts is not None and opts.quiet:
        return
    from cdpio_cli.credentials import redact

    stderr_console(opts).print(redact(message), style=style, markup=False, highlight=False)


def warn(opts: GlobalOptions | None, message: str) -> None:
    note(opts, f"warning: {message}", style="yellow")


PROGRESS_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


@contextlib.contextmanager
def spinner(opts: GlobalOptions):
    """A rich status line on stderr while we wait (on a terminal; a line every
    PROGRESS_EVERY seconds otherwise; nothing with --quiet); yields a callback
    that updates its text (or None)."""
    from cdpio_cli.credentials import redact

    if opts.quiet:
        yield None
        return
    if not sys.stderr.isatty():
        # CI logs: no live line, but a long wait must not look hung.  At most
        # one line every PROGRESS_EVERY seconds; a quick run prints none.
        import time

        started = last = time.monotonic()

        def log_line(text: str) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY:
                last = now
                sys.stderr.write(redact(f"... {text} ({now - started:,.0f}s elapsed)") + "\n")
                sys.stderr.flush()

        yield log_line
        return

    with stderr_console(opts).status("starting") as status:
        yield lambda text: status.update(redact(text))


def duration_flag(flag: str, value: str | None) -> float | None:
    """Seconds from a duration flag (`90s`, `10m`), or a usage error naming it."""
    if value is None:
        return None
    from cdpio_cli.config import parse_duration
    from cdpio_cli.errors import UsageError

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def warn_cleaned_credentials(opts: GlobalOptions, settings) -> None:
    """Say what was stripped from each credential (never the value)."""
    for text in settings.hygiene_notes():
        warn(opts, f"{text} (cdpio used the cleaned value; fix the stored secret)")


def finish(report: "Report", opts: GlobalOptions, *, human_done: bool = False) -> NoReturn:
    """Render the report everywhere it was asked for, then exit with its code.
    `human_done`: the command already printed the human view (each failure is
    shown once)."""
    from cdpio_cli import results
    from cdpio_cli.credentials import redact_report

    redact_report(report)
    console = stderr_console(opts)
    if human_done:
        pass
    elif not opts.quiet:
        for text in report.notes:
            console.print(text, markup=False, highlight=False, style="dim")
        results.render_table(report, console, verbose=opts.verbose)
    elif not opts.json:
        results.render_failures(report, console)
    if opts.json:
        results.write_json(report, sys.stdout)
        sys.stdout.write("\n")
        sys.stdout.flush()
    if opts.junit:
        try:
            results.render_junit(report, opts.junit)
        except OSError as exc:
            from cdpio_cli.errors import UsageError

            raise UsageError(f"cannot write the JUnit report to {opts.junit}: {exc.strerror}",
                             hint="check that the directory exists and is writable") from None
    if results.in_github_actions():
        for line in results.github_annotations(report):
            sys.stderr.write(line + "\n")
        summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_path:
            try:
                with open(summary_path, "a", encoding="utf-8") as fh:
                    fh.write(results.github_step_summary(report))
            except OSError:
                pass  # a summary is a nicety; never fail the run for it
    raise typer.Exit(report.exit_code())


def _flag_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _junit_writable(exc, junit: str) -> bool:
    """May the error's JUnit report be written?  Not when an output path was
    refused (it may be the --junit path: a link, or an input file under
    another name), nor where the usual --junit check says no."""
    from cdpio_cli.errors import CdpioError
    from cdpio_cli.paths import OutputPathError, check_writable_file

    if isinstance(exc, OutputPathError):
        return False
    try:
        check_writable_file(junit, "--junit", "reports/cdpio.xml")
    except CdpioError:
        return False
    return True


def error_report(exc, command: str) -> "Report":
    """A Report for an error that stopped a command before it could check
    anything: its own checks when it carries some (unusable credentials),
    else one failed check naming the error."""
    from cdpio_cli import errors, results

    checks = list(getattr(exc, "checks", None) or [])
    if not checks:
        kind = next((name for cls, name in ((errors.ConfigError, "config"), (errors.InputError, "input"),
                                            (errors.UsageError, "usage"), (errors.CredentialError, "credential"),
                                            (errors.UnreachableError, "unreachable"))
                     if isinstance(exc, cls)), "error")
        checks = [results.Check(kind, "cli", "format", results.FAILED, exc.message, hint=exc.hint,
                                file=exc.file, line=exc.line,
                                failure=results.failure_for_exit_code(exc.exit_code))]
    report = results.Report(command=command or "cdpio", checks=checks)
    return report


def report_error(exc, command: str, args: list[str], *, say: bool = True) -> int:
    """Say why a command stopped, in every output the user asked for: one line
    on stderr, the JSON document, the --junit file (one errored testcase),
    GitHub annotations and step summary.  Returns the exit code."""
    import json

    from cdpio_cli import results
    from cdpio_cli.credentials import redact, redact_report

    line = redact(exc.one_line())
    if say:
        sys.stderr.write(f"cdpio: error: {line}\n")
    report = error_report(exc, command)
    redact_report(report)
    code = exc.exit_code
    if "--json" in args:
        doc = report.to_dict()
        error = {"message": line, "exit_code": code}
        problems = getattr(exc, "problems", None)
        if problems:  # a config error lists every problem with its line
            error["problems"] = [{k: redact(v) if isinstance(v, str) else v for k, v in p.to_dict().items()}
                                 for p in problems]
        doc.update(exit_code=code, ok=False, run_id=None, error=error)
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    junit = _flag_value(args, "--junit")
    if junit and _junit_writable(exc, junit):
        try:
            results.render_junit(report, junit)
        except OSError:
            pass  # the report is a nicety here; the error line above is the message
    if results.in_github_actions():
        for text in results.github_annotations(report):
            sys.stderr.write(text + "\n")
        summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_path:
            try:
                with open(summary_path, "a", encoding="utf-8") as fh:
                    fh.write(results.github_step_summary(report))
            except OSError:
                pass
    return code

"""Terminal output: human text on stderr, machine output alone on stdout.

Commands build a results.Report and hand it to `finish`, which renders it in
every mode the user asked for and exits with the report's exit code.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NoReturn

import typer

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from cdpio_cli.errors import CdpioError
    from cdpio_cli.results import Report
    from cdpio_cli.settings import Settings


# eq=False, repr=False: nothing compares or prints these records, and dataclasses
# compiles each generated method with exec at import (start-up, issue 17).
@dataclass(eq=False, repr=False)
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


_consoles: dict[bool, Console] = {}


def stderr_console(opts: GlobalOptions | None = None) -> Console:
    """The rich console for humans (stderr).  Rich drops colour and live
    progress by itself when stderr is not a terminal."""
    from rich.console import Console

    no_color = color_disabled(opts)
    console = _consoles.get(no_color)
    if console is None or console.file is not sys.stderr:
        # Off a terminal (CI logs, pipes) rich would wrap at 80 columns; logs read
        # better wider.  COLUMNS still wins when set.
        width = None
        if not sys.stderr.isatty() and not os.environ.get("COLUMNS"):
            width = 140
        # rich's no_color keeps bold/dim/italic escape codes; color_system=None
        # emits none at all, which is what --no-color and NO_COLOR promise.
        console = Console(
            stderr=True,
            no_color=no_color,
            highlight=False,
            soft_wrap=False,
            width=width,
            color_system=None if no_color else "auto",
        )
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
PROGRESS_STEP = 10  # ...or one at every further 10% of a known total
PROGRESS_WIDTH = 80  # the progress bar never takes more columns than this


def progress_interval() -> float:
    """Seconds between progress lines off a terminal: PROGRESS_EVERY, unless
    CDPIO_PROGRESS_INTERVAL (internal: tests use it to avoid waiting 10 s)
    holds a positive number."""
    raw = os.environ.get("CDPIO_PROGRESS_INTERVAL", "")
    try:
        value = float(raw) if raw else PROGRESS_EVERY
    except ValueError:
        return PROGRESS_EVERY
    return value if 0 < value < float("inf") else PROGRESS_EVERY


def clock(seconds: float | None) -> str:
    """`0:01:40`, or `-:--:--` when unknown (the form rich's time columns use)."""
    import math

    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-:--:--"
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def count_text(done: int, total: int | None) -> str:
    return f"{done:,}/{total:,}" if total is not None else f"{done:,}"


class ProgressLines:
    """Progress for logs (stderr not a terminal): one line every
    progress_interval() seconds, or at each further 10% of a known total once
    the work has run that long; a quick run prints none."""

    def __init__(
        self,
        label: str,
        write: Callable[[str], None] | None = None,
        interval: float | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.label = label
        self.write = write or _stderr_line
        self.interval = progress_interval() if interval is None else interval
        self.now = now or time.monotonic
        self.started = self.last = self.now()
        self.step = 0  # the last 10% step printed

    def update(
        self, done: int, total: int | None, *, rate: float | None = None, failed: int | None = 0, retried: int = 0
    ) -> None:
        now = self.now()
        elapsed = now - self.started
        step = done * 100 // (total * PROGRESS_STEP) if total else 0
        due = now - self.last >= self.interval or (step > self.step and elapsed >= self.interval)
        if not due:
            return
        self.last, self.step = now, step
        self.write(self.line(done, total, elapsed, rate=rate, failed=failed, retried=retried))

    def line(
        self,
        done: int,
        total: int | None,
        elapsed: float,
        *,
        rate: float | None = None,
        failed: int | None = 0,
        retried: int = 0,
    ) -> str:
        text = f"{self.label}: {count_text(done, total)}"
        if total:
            text += f" ({done * 100 // total}%)"
        if rate is not None:
            text += f", {rate:,.0f} ev/s"
        if failed is not None:  # None: work that cannot fail (lint)
            text += f", {failed:,} failed"
        if retried:
            text += f", {retried:,} retried"
        text += f", elapsed {clock(elapsed)}"
        if total:
            speed = done / elapsed if elapsed > 0 else 0.0
            text += f", ETA {clock((total - done) / speed if speed > 0 else None)}"
        return text

    def close(self) -> None:
        pass  # nothing stays on screen to clear


def _stderr_line(text: str) -> None:
    from cdpio_cli.credentials import redact

    sys.stderr.write(redact(text) + "\n")
    sys.stderr.flush()


# Console.color_system names the detected system as a plain str; Console() takes these literals.
_COLOR_SYSTEMS: dict[str, Literal["standard", "256", "truecolor", "windows"]] = {
    "standard": "standard",
    "256": "256",
    "truecolor": "truecolor",
    "windows": "windows",
}


class ProgressBar:
    """A live bar on a terminal: `replay ━━━━ 12,345/100,000 1,234 ev/s
    elapsed 0:00:10 ETA 0:01:10` (and `N failed` once any failed), never
    wider than PROGRESS_WIDTH columns: the bar takes what the text leaves."""

    MIN_BAR = 10

    def __init__(
        self, console: Console, label: str, now: Callable[[], float] | None = None, *, auto_refresh: bool = True
    ) -> None:
        import time

        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.label = label
        self.now = now or time.monotonic
        self.started = self.now()
        # Its own console, as wide as the terminal up to PROGRESS_WIDTH.
        self.console = Console(
            file=console.file,
            width=min(console.width, PROGRESS_WIDTH),
            color_system=_COLOR_SYSTEMS.get(console.color_system or ""),
            no_color=console.no_color,
            force_terminal=console.is_terminal,
            highlight=False,
        )
        self.progress = Progress(
            TextColumn(label),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[text]}"),
            console=self.console,
            transient=True,
            expand=True,
            # Without auto-refresh no drawing thread runs: each update draws, and a
            # command that forks a worker (lint) still may (forking.forkable).
            auto_refresh=auto_refresh,
        )
        self.auto_refresh = auto_refresh
        self.task = self.progress.add_task(label, total=None, text=self.text(0, None))
        self.progress.start()

    def text(self, done: int, total: int | None, *, rate: float | None = None, failed: int | None = 0) -> str:
        elapsed = self.now() - self.started
        speed = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / speed if total and speed > 0 else None
        times = f"elapsed {clock(elapsed)} ETA {clock(eta)}"
        parts = [count_text(done, total)]
        if rate is not None:
            parts.append(f"{rate:,.0f} ev/s")
        if failed:
            parts.append(f"{failed:,} failed")
        text = " ".join([*parts, times])
        room = self.console.width - len(self.label) - 2 - self.MIN_BAR
        while len(text) > room and len(parts) > 1:
            parts.pop(1)  # the rate goes first, then the failures: the count and times stay
            text = " ".join([*parts, times])
        return text

    def update(
        self, done: int, total: int | None, *, rate: float | None = None, failed: int | None = 0, retried: int = 0
    ) -> None:
        self.progress.update(
            self.task, total=total, completed=done, text=self.text(done, total, rate=rate, failed=failed)
        )
        if not self.auto_refresh:
            self.progress.refresh()

    def close(self) -> None:
        self.progress.stop()


def work_progress(opts: GlobalOptions, label: str, *, auto_refresh: bool = True) -> ProgressBar | ProgressLines | None:
    """Progress for long counted work (replay, lint): a bar on a terminal, lines
    in a log, None with --quiet.  Both have update(done, total, rate=, failed=,
    retried=) and close(); `failed=None` leaves failures out.  Without
    `auto_refresh` the bar runs no thread and draws on each update."""
    if opts.quiet:
        return None
    console = stderr_console(opts)
    # A live bar moves the cursor with escape codes; --no-color and NO_COLOR
    # promise none at all, so there the plain lines are used on a terminal too.
    if console.is_terminal and not color_disabled(opts):
        return ProgressBar(console, label, auto_refresh=auto_refresh)
    return ProgressLines(label)


@contextlib.contextmanager
def spinner(opts: GlobalOptions) -> Iterator[Callable[[str], None] | None]:
    """A rich status line on stderr while we wait (on a terminal; a line every
    progress_interval() seconds otherwise; nothing with --quiet); yields a
    callback that updates its text (or None)."""
    from cdpio_cli.credentials import redact

    if opts.quiet:
        yield None
        return
    if not sys.stderr.isatty():
        # CI logs: no live line, but a long wait must not look hung.  At most
        # one line every interval; a quick run prints none.
        import time

        started = last = time.monotonic()
        every = progress_interval()

        def log_line(text: str) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= every:
                last = now
                sys.stderr.write(redact(f"... {text} (elapsed {clock(now - started)})") + "\n")
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


def warn_cleaned_credentials(opts: GlobalOptions, settings: Settings) -> None:
    """Say what was stripped from each credential (never the value)."""
    for text in settings.hygiene_notes():
        warn(opts, f"{text} (cdpio used the cleaned value; fix the stored secret)")


def finish(report: Report, opts: GlobalOptions, *, human_done: bool = False) -> NoReturn:
    """Render the report everywhere it was asked for, then exit with its code.
    `human_done`: the command already printed the human view (each failure is
    shown once)."""
    from cdpio_cli import results
    from cdpio_cli.credentials import redact_report

    redact_report(report)
    # rich (the console, the table) loads only when something is drawn: not with --json -q.
    if human_done:
        pass
    elif not opts.quiet:
        from cdpio_cli.cli.table import render_table

        console = stderr_console(opts)
        for text in report.notes:
            console.print(text, markup=False, highlight=False, style="dim")
        render_table(report, console, verbose=opts.verbose)
    elif not opts.json:
        from cdpio_cli.cli.table import render_failures

        render_failures(report, stderr_console(opts))
    if opts.json:
        results.write_json(report, sys.stdout)
        sys.stdout.write("\n")
        sys.stdout.flush()
    if opts.junit:
        try:
            results.render_junit(report, opts.junit)
        except OSError as exc:
            from cdpio_cli.errors import UsageError

            raise UsageError(
                f"cannot write the JUnit report to {opts.junit}: {exc.strerror}",
                hint="check that the directory exists and is writable",
            ) from None
    _write_github_outputs(report)
    raise typer.Exit(report.exit_code())


def _write_github_outputs(report: Report) -> None:
    """Under GitHub Actions: `::error`/`::warning` annotations and the step summary."""
    from cdpio_cli import results

    if not results.in_github_actions():
        return
    for line in results.github_annotations(report):
        sys.stderr.write(line + "\n")
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        try:
            with open(summary_path, "a", encoding="utf-8") as fh:
                fh.write(results.github_step_summary(report))
        except OSError:
            pass  # a summary is a nicety; never fail the run for it


def _flag_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _junit_writable(exc: CdpioError, junit: str) -> bool:
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


def error_report(exc: CdpioError, command: str) -> Report:
    """A Report for an error that stopped a command before it could check
    anything: its own checks when it carries some (unusable credentials),
    else one failed check naming the error."""
    from cdpio_cli import errors, results

    checks = list(getattr(exc, "checks", None) or [])
    if not checks:
        kind = next(
            (
                name
                for cls, name in (
                    (errors.ConfigError, "config"),
                    (errors.InputError, "input"),
                    (errors.UsageError, "usage"),
                    (errors.CredentialError, "credential"),
                    (errors.UnreachableError, "unreachable"),
                )
                if isinstance(exc, cls)
            ),
            "error",
        )
        checks = [
            results.Check(
                id=kind,
                route="cli",
                tier=results.Tier.FORMAT,
                status=results.Status.FAILED,
                message=exc.message,
                hint=exc.hint,
                file=exc.file,
                line=exc.line,
                failure=errors.failure_for_exit_code(exc.exit_code),
            )
        ]
    report = results.Report(command=command or "cdpio", checks=checks)
    return report


def report_error(exc: CdpioError, command: str, args: list[str], *, say: bool = True) -> int:
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
            error["problems"] = [
                {k: redact(v) if isinstance(v, str) else v for k, v in p.to_dict().items()} for p in problems
            ]
        doc.update(exit_code=code, ok=False, run_id=None, error=error)
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    junit = _flag_value(args, "--junit")
    if junit and _junit_writable(exc, junit):
        try:
            results.render_junit(report, junit)
        except OSError:
            pass  # the report is a nicety here; the error line above is the message
    _write_github_outputs(report)
    return code

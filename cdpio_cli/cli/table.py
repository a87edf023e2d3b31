"""The terminal renderers of a Report: the rich table (or one block per check
on a narrow terminal) with its verdict line, and --quiet's failure lines.
Everything here prints on the given (stderr) rich console."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from cdpio_cli.results import Check, CheckSpool, Report, Status

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# The rows to print: a list, or a spool read again on each pass (never loaded whole).
Rows = list[Check] | CheckSpool

_STATUS_STYLE = {
    Status.PASSED: "green",
    Status.FAILED: "bold red",
    Status.WARNING: "yellow",
    Status.INFO: "cyan",
    Status.SKIPPED: "dim",
}
_STATUS_MARK = {
    Status.PASSED: "ok",
    Status.FAILED: "FAIL",
    Status.WARNING: "warn",
    Status.INFO: "info",
    Status.SKIPPED: "skip",
}

# Past TABLE_CHUNK rows the table is printed in chunks of fixed column widths
# (one rich Table holds every cell: memory per row).
TABLE_CHUNK = 500
_MESSAGE_MIN = 30  # the message column is never narrower
_NARROWEST_TABLE_MESSAGE = 40  # below this much room for messages, print blocks


def render_table(report: Report, console: Console, *, verbose: bool = False, max_rows: int | None = None) -> None:
    """Print the checks: a table when the terminal is wide enough for the
    message column, else one block per check (the message and its fix are
    what must stay readable); then the verdict line."""
    rows = report.checks if max_rows is None else report.checks[:max_rows]
    names, widths = _columns(rows)
    console.print(Text(f"cdpio {report.command}", style="italic"))
    if rows and console.width - (sum(widths) + 3 * len(widths)) >= _NARROWEST_TABLE_MESSAGE:
        _print_table(rows, console, names, widths, verbose)
    else:
        _print_blocks(rows, console, verbose)
    if max_rows is not None and len(report.checks) > max_rows:
        console.print(f"... and {len(report.checks) - max_rows} more (use --json or --junit for all)")
    _print_verdict(report, console)


def render_failures(report: Report, console: Console) -> None:
    """--quiet: only what failed, one line each, so a failing run still says why.
    Never wrapped (soft_wrap): a CI log line must stay one grep-able line."""
    for c in report.checks:
        if c.status != Status.FAILED:
            continue
        where = f"{c.location()}: " if c.location() else ""
        line = f"FAIL {c.id} [{c.tier}]: {where}{c.message}" + (f" ({c.hint})" if c.hint else "")
        console.print(Text(" ".join(line.split())), soft_wrap=True)


def _message_with_hint(c: Check, verbose: bool) -> str:
    if c.hint and (c.status in (Status.FAILED, Status.WARNING) or verbose):
        return f"{c.message}\n-> {c.hint}" if c.message else f"-> {c.hint}"
    return c.message


def _columns(rows: Rows) -> tuple[list[str], list[int]]:
    """The columns before the message (only those some row fills) and their widths."""
    names = ["status", "check", "tier"]
    widths = [6, min(40, max((len(c.id) for c in rows), default=5)), max((len(c.tier) for c in rows), default=4)]
    if any(c.http_status is not None for c in rows):
        names.append("http")
        widths.append(4)
    if any(c.duration_ms is not None for c in rows):
        names.append("ms")
        widths.append(5)
    if any(c.line for c in rows):
        names.append("where")
        widths.append(min(40, max(len(c.location()) for c in rows)))
    return names, widths


def _print_table(rows: Rows, console: Console, names: list[str], widths: list[int], verbose: bool) -> None:
    fixed_widths = _chunk_widths(rows, names, widths, console.width, verbose) if len(rows) > TABLE_CHUNK else None
    table = _new_table(names, fixed_widths, show_header=True)
    for n, c in enumerate(rows):
        if n and n % TABLE_CHUNK == 0:
            console.print(table)
            table = _new_table(names, fixed_widths, show_header=False)
        table.add_row(*_cells(c, names, verbose))
    console.print(table)


def _new_table(names: list[str], fixed_widths: list[int] | None, *, show_header: bool) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False, show_edge=False, show_header=show_header)
    for i, name in enumerate([*names, "message"]):
        width = None if fixed_widths is None else fixed_widths[i]
        if name == "check":
            table.add_column(name, no_wrap=True, max_width=40, overflow="ellipsis", width=width)
        elif name in ("http", "ms"):
            table.add_column(name, justify="right", no_wrap=True, width=width)
        elif name == "message":
            table.add_column(name, overflow="fold", min_width=_MESSAGE_MIN, width=width)
        else:
            table.add_column(name, no_wrap=True, width=width)
    return table


def _cells(c: Check, names: list[str], verbose: bool) -> list[Text | str]:
    cells: list[Text | str] = [Text(_STATUS_MARK[c.status], style=_STATUS_STYLE[c.status]), c.id, str(c.tier)]
    if "http" in names:
        cells.append("" if c.http_status is None else str(c.http_status))
    if "ms" in names:
        cells.append("" if c.duration_ms is None else f"{c.duration_ms:.0f}")
    if "where" in names:
        cells.append(_short_location(c.location()))
    cells.append(_message_with_hint(c, verbose))
    return cells


def _print_blocks(rows: Rows, console: Console, verbose: bool) -> None:
    from rich.padding import Padding

    for c in rows:
        head = Text(f"{_STATUS_MARK[c.status]:<5}", style=_STATUS_STYLE[c.status])
        head.append(f" {c.id}  [{c.tier}]")
        if c.http_status is not None:
            head.append(f"  {c.http_status}")
        if c.duration_ms is not None:
            head.append(f"  {c.duration_ms:.0f} ms")
        if c.location():
            head.append(f"  {c.location()}")
        console.print(head, overflow="fold")
        message = _message_with_hint(c, verbose)
        if message:
            console.print(Padding(Text(message), (0, 0, 0, 6), expand=False), overflow="fold")


def _print_verdict(report: Report, console: Console) -> None:
    counts = report.counts()
    parts = [f"{counts[s]} {s}" for s in Status if counts.get(s)]
    line = ("OK" if report.ok else "FAILED") + ": " + (", ".join(parts) if parts else "no checks")
    if report.sandbox is not None:
        line += f" -- SANDBOX: {report.sandbox}, not your real accounts"
    console.print(Text(line, style="bold green" if report.ok else "bold red"))


def _chunk_widths(rows: Rows, names: list[str], widths: list[int], console_width: int, verbose: bool) -> list[int]:
    """Column widths for a table printed in chunks: each column as wide as
    its header and widest cell (as rich sizes one table), the message
    column what is left of the terminal (at least 30)."""
    from rich.cells import cell_len

    out = [max(cell_len(name), w) for name, w in zip(names, widths, strict=False)]
    longest = _MESSAGE_MIN
    for c in rows:
        lines = _message_with_hint(c, verbose).splitlines()
        longest = max(longest, max((cell_len(line) for line in lines), default=0))
    room = console_width - sum(out) - 3 * len(out)
    return [*out, max(_MESSAGE_MIN, min(longest, room))]


def _short_location(location: str, width: int = 40) -> str:
    """Keep the end of a long path: the file name and line are what matter."""
    return location if len(location) <= width else "…" + location[-(width - 1) :]

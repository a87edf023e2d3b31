"""The one result model every command reports in, and its renderers.

A command builds a Report of Checks; renderers turn it into a rich table on
stderr, one JSON document on stdout, a JUnit XML file, or GitHub annotations
and a step summary.  Tiers are ordered: a check never claims a higher tier than
the evidence it has (a 200 from Segment is `accepted`, never `delivered`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cdpio_cli.errors import (
    EXIT_CHECK_FAILED,
    EXIT_CREDENTIAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    worst_exit_code,
)

SCHEMA_VERSION = 1

# Evidence tiers, lowest first.
TIERS = ("format", "authenticated", "accepted", "delivered", "segmented", "triggered")
# Tiers used by data commands (lint, explain, replay validation).
DATA_TIERS = ("spec", "lint", "mapping")

PASSED, FAILED, WARNING, INFO, SKIPPED = "passed", "failed", "warning", "info", "skipped"
# `info`: a finding worth reading that is not a problem (never counted as ok).
STATUSES = (PASSED, FAILED, WARNING, INFO, SKIPPED)

# Why a failed check failed; decides the exit code.
FAILURE_CHECK = "check"  # exit 1: status, delivery, lint error
FAILURE_USAGE = "usage"  # exit 2: bad input
FAILURE_CREDENTIAL = "credential"  # exit 3: a service rejected a credential
FAILURE_UNREACHABLE = "unreachable"  # exit 4: network, timeout, 5xx after retries
FAILURE_INTERRUPTED = "interrupted"  # exit 130: Ctrl-C or a signal stopped the run

_FAILURE_EXIT = {
    FAILURE_CHECK: EXIT_CHECK_FAILED,
    FAILURE_USAGE: EXIT_USAGE,
    FAILURE_CREDENTIAL: EXIT_CREDENTIAL,
    FAILURE_UNREACHABLE: EXIT_UNREACHABLE,
    FAILURE_INTERRUPTED: EXIT_INTERRUPTED,
}


def failure_for_exit_code(code: int) -> str:
    """The failure kind that yields `code` (for cores that decide an exit code first)."""
    return next((kind for kind, exit_code in _FAILURE_EXIT.items() if exit_code == code), FAILURE_CHECK)


def new_run_id() -> str:
    """A short unique id for one run; test users and events carry it."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


@dataclass
class Check:
    """One thing cdpio checked, at one tier, with its evidence."""

    id: str
    route: str
    tier: str
    status: str
    message: str = ""
    http_status: int | None = None
    duration_ms: float | None = None
    file: str | None = None
    line: int | None = None
    failure: str = FAILURE_CHECK  # only meaningful when status == failed
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != FAILED

    def exit_code(self) -> int:
        if self.status != FAILED:
            return EXIT_OK
        return _FAILURE_EXIT.get(self.failure, EXIT_CHECK_FAILED)

    def location(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "route": self.route,
            "tier": self.tier,
            "status": self.status,
            "http_status": self.http_status,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 1),
            "message": self.message,
            "file": self.file,
            "line": self.line,
        }
        if self.hint:
            data["hint"] = self.hint
        if self.details:
            data["details"] = self.details
        return data


@dataclass
class Report:
    """Everything one command run found."""

    command: str
    run_id: str = field(default_factory=new_run_id)
    checks: list[Check] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # stderr-only remarks (e.g. "using the sandbox")
    strict: bool = False  # warnings fail too (lint --strict)
    # Where traffic went when it was a sandbox ("the embedded sandbox", "the
    # sandbox at URL"); None for real services or commands that send nothing.
    sandbox: str | None = None

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def extend(self, checks: Iterable[Check]) -> None:
        self.checks.extend(checks)

    @property
    def ok(self) -> bool:
        return self.exit_code() == EXIT_OK

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        if isinstance(self.checks, CheckSpool):  # tallied as written: no pass over the file
            out.update(self.checks.status_counts)
            return out
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def exit_code(self) -> int:
        if isinstance(self.checks, CheckSpool):
            codes = list(self.checks.exit_codes)
        else:
            codes = [c.exit_code() for c in self.checks]
        if self.strict and self.counts()[WARNING]:
            codes.append(EXIT_CHECK_FAILED)
        return worst_exit_code(codes)

    def to_dict(self, *, with_checks: bool = True) -> dict[str, Any]:
        """The JSON document; `with_checks=False` leaves `checks` empty
        (write_json streams them into place)."""
        summary = {"counts": self.counts(), **self.summary}
        if self.sandbox is not None:
            summary["sandbox"] = True
            summary["sandbox_target"] = self.sandbox
        return {
            "schema_version": SCHEMA_VERSION,
            "command": self.command,
            "ok": self.ok,
            "exit_code": self.exit_code(),
            "run_id": self.run_id,
            "checks": [c.to_dict() for c in self.checks] if with_checks else [],
            "summary": summary,
        }


class CheckSpool:
    """A report's checks kept in an unnamed temporary file instead of memory,
    for commands with one check per input record (`explain` over a million
    messages): memory stays flat in the number of checks.  Offers what the
    renderers use of a list: append/extend, iteration (each pass re-reads the
    file, one check at a time), len, bool and slices from the start.

    Checks are redacted as they are written (credentials.redact_report
    cannot edit them in place afterwards).  The file is unnamed: the OS
    removes it when the process ends."""

    _FRAME = 4  # bytes of length before each pickled check

    def __init__(self):
        import tempfile

        self._file = tempfile.TemporaryFile(prefix="cdpio-checks-")
        self._len = 0
        self.status_counts: dict[str, int] = {}
        self.exit_codes: set[int] = set()

    def append(self, check: Check) -> None:
        import pickle

        from cdpio_cli.credentials import redact_check

        data = pickle.dumps(redact_check(check), protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(len(data).to_bytes(self._FRAME, "big") + data)
        self._len += 1
        self.status_counts[check.status] = self.status_counts.get(check.status, 0) + 1
        self.exit_codes.add(check.exit_code())

    def extend(self, checks: Iterable[Check]) -> None:
        for check in checks:
            self.append(check)

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self):
        import pickle

        self._file.flush()
        fd, offset = self._file.fileno(), 0
        for _ in range(self._len):  # own offset (pread): passes may interleave
            size = int.from_bytes(os.pread(fd, self._FRAME, offset), "big")
            yield pickle.loads(os.pread(fd, size, offset + self._FRAME))
            offset += self._FRAME + size

    def __getitem__(self, index: slice) -> list[Check]:
        """`[:n]`, as the renderers cut a report (the first n checks)."""
        import itertools

        if not (isinstance(index, slice) and index.start in (None, 0) and index.step in (None, 1)):
            raise TypeError(f"a CheckSpool can only be cut as [:n], not [{index!r}]")
        return list(itertools.islice(self, index.stop))


# --------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------


def render_json(report: Report) -> str:
    import io

    out = io.StringIO()
    write_json(report, out)
    return out.getvalue()


def write_json(report: Report, out) -> None:
    """Write the report's JSON document to `out`, one check at a time (a
    CheckSpool never sits in memory as a whole).  The bytes are exactly
    `json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str)`."""

    def dumps(value) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)

    doc = report.to_dict(with_checks=False)
    text = dumps(doc)
    marker = '\n  "checks": [],\n'
    if not report.checks:
        out.write(text)
        return
    head, tail = text.split(marker, 1)
    out.write(head + '\n  "checks": [')
    sep, pending = "\n", []
    for check in report.checks:
        # A nested value is indented as deep as it sits: 4 spaces in "checks".
        pending.append(sep + "    " + dumps(check.to_dict()).replace("\n", "\n    "))
        sep = ",\n"
        if len(pending) >= 256:  # fewer, larger writes
            out.write("".join(pending))
            pending.clear()
    out.write("".join(pending) + "\n  ],\n" + tail)


_STATUS_STYLE = {PASSED: "green", FAILED: "bold red", WARNING: "yellow", INFO: "cyan", SKIPPED: "dim"}
_STATUS_MARK = {PASSED: "ok", FAILED: "FAIL", WARNING: "warn", INFO: "info", SKIPPED: "skip"}


def sandbox_banner(report: Report) -> str:
    """One sentence saying a run used a sandbox, for every output."""
    return (
        f"this run used {report.sandbox}, not your real Segment and Customer.io accounts; it proves nothing about them"
    )


def _message_with_hint(c: Check, verbose: bool) -> str:
    if c.hint and (c.status in (FAILED, WARNING) or verbose):
        return f"{c.message}\n-> {c.hint}" if c.message else f"-> {c.hint}"
    return c.message


def render_table(report: Report, console, *, verbose: bool = False, max_rows: int | None = None) -> None:
    """Print the checks on the given (stderr) rich console: a table when the
    terminal is wide enough for the message column, else one block per check
    (the message and its fix are what must stay readable)."""
    from rich import box
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    rows = report.checks if max_rows is None else report.checks[:max_rows]
    show_location = any(c.line for c in rows)
    show_http = any(c.http_status is not None for c in rows)
    show_ms = any(c.duration_ms is not None for c in rows)
    widths = [6, min(40, max((len(c.id) for c in rows), default=5)), max((len(c.tier) for c in rows), default=4)]
    if show_http:
        widths.append(4)
    if show_ms:
        widths.append(5)
    if show_location:
        widths.append(min(40, max(len(c.location()) for c in rows)))
    fixed = sum(widths) + 3 * len(widths)

    console.print(Text(f"cdpio {report.command}", style="italic"))
    if rows and console.width - fixed >= 40:
        # Past TABLE_CHUNK rows the table is printed in chunks of fixed column
        # widths (one rich Table holds every cell: memory per row).
        names = ["status", "check", "tier"] + ["http"] * show_http + ["ms"] * show_ms + ["where"] * show_location
        fixed_widths = _chunk_widths(rows, names, widths, console.width, verbose) if len(rows) > TABLE_CHUNK else None

        def new_table(show_header: bool):
            table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False, show_edge=False, show_header=show_header)
            for i, name in enumerate(names + ["message"]):
                size = {} if fixed_widths is None else {"width": fixed_widths[i]}
                if name == "check":
                    table.add_column(name, no_wrap=True, max_width=40, overflow="ellipsis", **size)
                elif name in ("http", "ms"):
                    table.add_column(name, justify="right", no_wrap=True, **size)
                elif name == "message":
                    table.add_column(name, overflow="fold", min_width=30, **size)
                else:
                    table.add_column(name, no_wrap=True, **size)
            return table

        table = new_table(True)
        for n, c in enumerate(rows):
            if n and n % TABLE_CHUNK == 0:
                console.print(table)
                table = new_table(False)
            cells = [Text(_STATUS_MARK[c.status], style=_STATUS_STYLE[c.status]), c.id, c.tier]
            if show_http:
                cells.append("" if c.http_status is None else str(c.http_status))
            if show_ms:
                cells.append("" if c.duration_ms is None else f"{c.duration_ms:.0f}")
            if show_location:
                cells.append(_short_location(c.location()))
            cells.append(_message_with_hint(c, verbose))
            table.add_row(*cells)
        console.print(table)
    else:
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
    if max_rows is not None and len(report.checks) > max_rows:
        console.print(f"... and {len(report.checks) - max_rows} more (use --json or --junit for all)")
    counts = report.counts()
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts.get(s)]
    verdict = "OK" if report.ok else "FAILED"
    style = "bold green" if report.ok else "bold red"
    line = f"{verdict}: " + (", ".join(parts) if parts else "no checks")
    if report.sandbox is not None:
        line += f" -- SANDBOX: {report.sandbox}, not your real accounts"
    console.print(Text(line, style=style))


TABLE_CHUNK = 500


def _chunk_widths(rows, names: list[str], widths: list[int], console_width: int, verbose: bool) -> list[int]:
    """Column widths for a table printed in chunks: each column as wide as
    its header and widest cell (as rich sizes one table), the message
    column what is left of the terminal (at least 30)."""
    from rich.cells import cell_len

    out = [max(cell_len(name), w) for name, w in zip(names, widths, strict=False)]
    longest = 30
    for c in rows:
        lines = _message_with_hint(c, verbose).splitlines()
        longest = max(longest, max((cell_len(line) for line in lines), default=0))
    room = console_width - sum(out) - 3 * len(out)
    return out + [max(30, min(longest, room))]


def render_failures(report: Report, console) -> None:
    """--quiet: only what failed, one line each, so a failing run still says why.
    Never wrapped (soft_wrap): a CI log line must stay one grep-able line."""
    from rich.text import Text

    for c in report.checks:
        if c.status != FAILED:
            continue
        where = f"{c.location()}: " if c.location() else ""
        line = f"FAIL {c.id} [{c.tier}]: {where}{c.message}" + (f" ({c.hint})" if c.hint else "")
        console.print(Text(" ".join(line.split())), soft_wrap=True)


def _short_location(location: str, width: int = 40) -> str:
    """Keep the end of a long path: the file name and line are what matter."""
    return location if len(location) <= width else "…" + location[-(width - 1) :]


def _junit_skeleton(report: Report):
    """<testsuites><testsuite ...><properties/></testsuite></testsuites>, no testcases."""
    import xml.etree.ElementTree as ET

    counts = report.counts()
    # A usage/config/input problem means the check could not run: a JUnit error.
    errors = sum(1 for c in report.checks if c.status == FAILED and c.failure == FAILURE_USAGE)
    total_time = sum((c.duration_ms or 0) for c in report.checks) / 1000.0
    suites = ET.Element("testsuites", name="cdpio")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"cdpio {report.command}" + (" (sandbox)" if report.sandbox is not None else ""),
        tests=str(len(report.checks)),
        failures=str(counts[FAILED] - errors),
        errors=str(errors),
        skipped=str(counts[SKIPPED]),
        time=f"{total_time:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="run_id", value=report.run_id)
    if report.sandbox is not None:
        ET.SubElement(properties, "property", name="cdpio.sandbox", value="true")
        ET.SubElement(properties, "property", name="cdpio.sandbox.target", value=report.sandbox)
    return suites


def _junit_cases(report: Report):
    """One <testcase> element per check, made one at a time."""
    import xml.etree.ElementTree as ET

    seen: dict[str, int] = {}
    for c in report.checks:
        name = f"{c.id} [{c.tier}]"
        # GitLab counts only the first of duplicate names: keep names unique.
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} #{seen[name]}"
        attrs = {
            "classname": f"cdpio.{report.command}.{c.route}",
            "name": name,
            "time": f"{(c.duration_ms or 0) / 1000.0:.3f}",
        }
        if c.file:
            attrs["file"] = c.file
        if c.line:
            attrs["line"] = str(c.line)
        case = ET.Element("testcase", **attrs)
        text = c.message + (f"\nhint: {c.hint}" if c.hint else "")
        if c.location():
            text = f"{c.location()}: {text}"
        if c.http_status is not None:
            text += f"\nhttp_status: {c.http_status}"
        if c.status == FAILED:
            kind = "error" if c.failure == FAILURE_USAGE else "failure"
            el = ET.SubElement(case, kind, message=c.message[:500], type=f"{c.tier}.{c.failure}")
            el.text = text
        elif c.status == SKIPPED:
            el = ET.SubElement(case, "skipped", message=c.message[:500])
            el.text = text
        else:
            ET.SubElement(case, "system-out").text = text
        yield case


def render_junit(report: Report, path: str) -> None:
    """Write a JUnit XML file: one testcase per check, each serialised as it
    is made (a CheckSpool never sits in memory as a whole).  The bytes are
    those of ElementTree writing the whole tree, indented.

    GitLab ignores the failure `message` attribute, so the text goes in the
    element body too.
    """
    import xml.etree.ElementTree as ET

    suites = _junit_skeleton(report)
    placeholder = "<cdpio-testcases />"
    if report.checks:
        ET.SubElement(suites[0], "cdpio-testcases")
    _xml_safe(suites)
    ET.indent(suites)
    head, _, tail = ET.tostring(suites, encoding="unicode").partition(placeholder)
    with open(path, "wb") as fh:
        fh.write(b"<?xml version='1.0' encoding='utf-8'?>\n" + head.encode("utf-8"))
        sep, pending = "", []
        for case in _junit_cases(report):
            _xml_safe(case)
            ET.indent(case, level=2)  # as deep as it sits: testsuites > testsuite > testcase
            pending.append(sep + ET.tostring(case, encoding="unicode"))
            sep = "\n    "
            if len(pending) >= 256:
                fh.write("".join(pending).encode("utf-8"))
                pending.clear()
        fh.write(("".join(pending) + tail).encode("utf-8"))


_XML_INVALID = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


def _xml_safe(root) -> None:
    """XML 1.0 cannot hold control characters (a NUL pasted into a key, a
    control byte in an event name): replace them so the report still parses."""

    def clean(text):
        return text.translate({c: "\ufffd" for c in _XML_INVALID}) if isinstance(text, str) else text

    for el in root.iter():
        el.text = clean(el.text)
        for key, value in el.attrib.items():
            el.attrib[key] = clean(value)


def _gh_escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_escape_prop(value: str) -> str:
    return _gh_escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github_annotations(report: Report) -> list[str]:
    """Workflow commands for failed and warning checks (printed on stderr)."""
    lines = []
    if report.sandbox is not None:
        lines.append(
            f"::warning title={_gh_escape_prop('cdpio ' + report.command + ': sandbox run')}::"
            + _gh_escape_data(sandbox_banner(report))
        )
    for c in report.checks:
        if c.status == FAILED:
            level = "error"
        elif c.status == WARNING:
            level = "warning"
        else:
            continue
        props = [f"title={_gh_escape_prop('cdpio ' + c.id)}"]
        if c.file:
            props.insert(0, f"file={_gh_escape_prop(c.file)}")
            if c.line:
                props.insert(1, f"line={c.line}")
        msg = c.message + (f" ({c.hint})" if c.hint else "")
        lines.append(f"::{level} {','.join(props)}::{_gh_escape_data(msg)}")
    return lines


def _md_cell(value: Any) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def github_step_summary(report: Report) -> str:
    counts = report.counts()
    head = "passed" if report.ok else "FAILED"
    out = [f"### cdpio {report.command}: {head}", ""]
    if report.sandbox is not None:
        out += ["> [!WARNING]", f"> **Sandbox run:** {sandbox_banner(report)}.", ""]
    out += [
        " · ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s)) or "no checks",
        "",
        "| status | check | route | tier | http | where | message |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in report.checks[:500]:
        out.append(
            "| "
            + " | ".join(_md_cell(v) for v in (c.status, c.id, c.route, c.tier, c.http_status, c.location(), c.message))
            + " |"
        )
    if len(report.checks) > 500:
        out.append(f"\n_{len(report.checks) - 500} more checks not shown_")
    return "\n".join(out) + "\n"


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"

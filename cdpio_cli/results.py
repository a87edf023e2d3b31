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
from dataclasses import dataclass, field
from typing import Any, Iterable

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
FAILURE_CHECK = "check"           # exit 1: status, delivery, lint error
FAILURE_USAGE = "usage"           # exit 2: bad input
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
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def exit_code(self) -> int:
        codes = [c.exit_code() for c in self.checks]
        if self.strict and any(c.status == WARNING for c in self.checks):
            codes.append(EXIT_CHECK_FAILED)
        return worst_exit_code(codes)

    def to_dict(self) -> dict[str, Any]:
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
            "checks": [c.to_dict() for c in self.checks],
            "summary": summary,
        }


# --------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------

def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str)


_STATUS_STYLE = {PASSED: "green", FAILED: "bold red", WARNING: "yellow", INFO: "cyan", SKIPPED: "dim"}
_STATUS_MARK = {PASSED: "ok", FAILED: "FAIL", WARNING: "warn", INFO: "info", SKIPPED: "skip"}


def sandbox_banner(report: Report) -> str:
    """One sentence saying a run used a sandbox, for every output."""
    return (f"this run used {report.sandbox}, not your real Segment and Customer.io accounts; "
            "it proves nothing about them")


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
        table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False, show_edge=False)
        table.add_column("status", no_wrap=True)
        table.add_column("check", no_wrap=True, max_width=40, overflow="ellipsis")
        table.add_column("tier", no_wrap=True)
        if show_http:
            table.add_column("http", justify="right", no_wrap=True)
        if show_ms:
            table.add_column("ms", justify="right", no_wrap=True)
        if show_location:
            table.add_column("where", no_wrap=True)
        table.add_column("message", overflow="fold", min_width=30)
        for c in rows:
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
    return location if len(location) <= width else "…" + location[-(width - 1):]


def render_junit(report: Report, path: str) -> None:
    """Write a JUnit XML file: one testcase per check.

    GitLab ignores the failure `message` attribute, so the text goes in the
    element body too.
    """
    import xml.etree.ElementTree as ET

    counts = report.counts()
    # A usage/config/input problem means the check could not run: a JUnit error.
    errors = sum(1 for c in report.checks if c.status == FAILED and c.failure == FAILURE_USAGE)
    total_time = sum((c.duration_ms or 0) for c in report.checks) / 1000.0
    suites = ET.Element("testsuites", name="cdpio")
    suite = ET.SubElement(
        suites, "testsuite",
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
    seen: dict[str, int] = {}
    for c in report.checks:
        name = f"{c.id} [{c.tier}]"
        # GitLab counts only the first of duplicate names: keep names unique.
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} #{seen[name]}"
        attrs = {"classname": f"cdpio.{report.command}.{c.route}", "name": name,
                 "time": f"{(c.duration_ms or 0) / 1000.0:.3f}"}
        if c.file:
            attrs["file"] = c.file
        if c.line:
            attrs["line"] = str(c.line)
        case = ET.SubElement(suite, "testcase", **attrs)
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
    _xml_safe(suites)
    ET.indent(suites)
    tree = ET.ElementTree(suites)
    tree.write(path, encoding="utf-8", xml_declaration=True)


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
        lines.append(f"::warning title={_gh_escape_prop('cdpio ' + report.command + ': sandbox run')}::"
                     + _gh_escape_data(sandbox_banner(report)))
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
    out += [" · ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s)) or "no checks", "",
            "| status | check | route | tier | http | where | message |",
            "|---|---|---|---|---|---|---|"]
    for c in report.checks[:500]:
        out.append("| " + " | ".join(_md_cell(v) for v in (
            c.status, c.id, c.route, c.tier, c.http_status, c.location(), c.message)) + " |")
    if len(report.checks) > 500:
        out.append(f"\n_{len(report.checks) - 500} more checks not shown_")
    return "\n".join(out) + "\n"


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"

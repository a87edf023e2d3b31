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
from typing import IO, TYPE_CHECKING, Any

from cdpio_cli.enums import TextEnum
from cdpio_cli.errors import ExitCode, FailureKind, exit_code_for, worst_exit_code

if TYPE_CHECKING:
    from collections.abc import Iterator
    from xml.etree.ElementTree import Element

SCHEMA_VERSION = 1


class Status(TextEnum):
    """How a check came out (docs/output.md "JSON output")."""

    PASSED = "passed"
    FAILED = "failed"
    WARNING = "warning"
    INFO = "info"  # a finding worth reading that is not a problem (never counted as ok)
    SKIPPED = "skipped"


class Tier(TextEnum):
    """What a check's evidence proves (docs/output.md "Tiers").  The evidence
    tiers are ordered, lowest first; a check never claims a higher tier than
    its evidence (a 200 from Segment is `accepted`, never `delivered`).  The
    data tiers (spec, lint, mapping, audit) are for checks that read data and
    send nothing."""

    FORMAT = "format"
    AUTHENTICATED = "authenticated"
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    SEGMENTED = "segmented"
    TRIGGERED = "triggered"
    SPEC = "spec"
    LINT = "lint"
    MAPPING = "mapping"
    AUDIT = "audit"


def new_run_id() -> str:
    """A short unique id for one run; test users and events carry it."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


# repr=False (eq=False on Report): nothing prints these records, and dataclasses
# compiles each generated method with exec at import (start-up, issue 17).  A
# Check keeps its equality: doctor finds the first broken check with list.index.
@dataclass(kw_only=True, repr=False)
class Check:
    """One thing cdpio checked, at one tier, with its evidence."""

    id: str
    route: str  # a route name, or "config", "lint", ... for checks of no route
    tier: Tier
    status: Status
    message: str = ""
    http_status: int | None = None
    duration_ms: float | None = None
    file: str | None = None
    line: int | None = None
    failure: FailureKind = FailureKind.CHECK  # only meaningful when status == failed
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != Status.FAILED

    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.status != Status.FAILED else exit_code_for(self.failure)

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


@dataclass(eq=False, repr=False)
class Report:
    """Everything one command run found."""

    command: str
    run_id: str = field(default_factory=new_run_id)
    checks: list[Check] | CheckSpool = field(default_factory=list)  # a CheckSpool: explain, one check per record
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
        return self.exit_code() == ExitCode.OK

    def counts(self) -> dict[Status, int]:
        out = dict.fromkeys(Status, 0)
        if isinstance(self.checks, CheckSpool):  # tallied as written: no pass over the file
            out.update(self.checks.status_counts)
            return out
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def exit_code(self) -> ExitCode:
        if isinstance(self.checks, CheckSpool):
            codes = list(self.checks.exit_codes)
        else:
            codes = [c.exit_code() for c in self.checks]
        if self.strict and self.counts()[Status.WARNING]:
            codes.append(ExitCode.CHECK_FAILED)
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

    def __init__(self) -> None:
        import tempfile

        self._file = tempfile.TemporaryFile(prefix="cdpio-checks-")
        self._len = 0
        self.status_counts: dict[Status, int] = {}
        self.exit_codes: set[ExitCode] = set()

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

    def __iter__(self) -> Iterator[Check]:
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


def write_json(report: Report, out: IO[str]) -> None:
    """Write the report's JSON document to `out`, one check at a time (a
    CheckSpool never sits in memory as a whole).  The bytes are exactly
    `json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str)`."""

    def dumps(value: Any) -> str:
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


def sandbox_banner(report: Report) -> str:
    """One sentence saying a run used a sandbox, for every output."""
    return (
        f"this run used {report.sandbox}, not your real Segment and Customer.io accounts; it proves nothing about them"
    )


def _junit_skeleton(report: Report) -> Element:
    """<testsuites><testsuite ...><properties/></testsuite></testsuites>, no testcases."""
    import xml.etree.ElementTree as ET

    counts = report.counts()
    # A usage/config/input problem means the check could not run: a JUnit error.
    errors = sum(1 for c in report.checks if c.status == Status.FAILED and c.failure == FailureKind.USAGE)
    total_time = sum((c.duration_ms or 0) for c in report.checks) / 1000.0
    suites = ET.Element("testsuites", name="cdpio")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"cdpio {report.command}" + (" (sandbox)" if report.sandbox is not None else ""),
        tests=str(len(report.checks)),
        failures=str(counts[Status.FAILED] - errors),
        errors=str(errors),
        skipped=str(counts[Status.SKIPPED]),
        time=f"{total_time:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="run_id", value=report.run_id)
    if report.sandbox is not None:
        ET.SubElement(properties, "property", name="cdpio.sandbox", value="true")
        ET.SubElement(properties, "property", name="cdpio.sandbox.target", value=report.sandbox)
    return suites


def _junit_cases(report: Report) -> Iterator[Element]:
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
        case = ET.Element("testcase", attrs)
        text = c.message + (f"\nhint: {c.hint}" if c.hint else "")
        if c.location():
            text = f"{c.location()}: {text}"
        if c.http_status is not None:
            text += f"\nhttp_status: {c.http_status}"
        if c.status == Status.FAILED:
            kind = "error" if c.failure == FailureKind.USAGE else "failure"
            el = ET.SubElement(case, kind, message=c.message[:500], type=f"{c.tier}.{c.failure}")
            el.text = text
        elif c.status == Status.SKIPPED:
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


_XML_INVALID = {c: "\ufffd" for c in range(32) if c not in (9, 10, 13)}


def _xml_safe(root: Element) -> None:
    """XML 1.0 cannot hold control characters (a NUL pasted into a key, a
    control byte in an event name): replace them so the report still parses."""
    for el in root.iter():
        if el.text is not None:
            el.text = el.text.translate(_XML_INVALID)
        for key, value in el.attrib.items():
            el.attrib[key] = value.translate(_XML_INVALID)


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
        if c.status == Status.FAILED:
            level = "error"
        elif c.status == Status.WARNING:
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
        " · ".join(f"{counts[s]} {s}" for s in Status if counts.get(s)) or "no checks",
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

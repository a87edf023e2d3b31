"""The result model: exit-code priority, JSON, JUnit and GitHub renderers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from cdpio_cli.errors import worst_exit_code
from cdpio_cli.results import (
    FAILED,
    FAILURE_CREDENTIAL,
    FAILURE_UNREACHABLE,
    FAILURE_USAGE,
    PASSED,
    SKIPPED,
    WARNING,
    Check,
    Report,
    github_annotations,
    github_step_summary,
    render_json,
    render_junit,
)


def test_exit_code_priority_is_2_then_3_then_4_then_1():
    assert worst_exit_code([1, 4, 3, 2]) == 2
    assert worst_exit_code([1, 4, 3]) == 3
    assert worst_exit_code([1, 4]) == 4
    assert worst_exit_code([0, 1]) == 1
    assert worst_exit_code([]) == 0


def report_with(*checks: Check, strict=False) -> Report:
    report = Report("send-test", strict=strict)
    report.extend(checks)
    return report


def test_report_exit_codes_follow_the_failure_kind():
    ok = Check("a", "segment", "accepted", PASSED)
    assert report_with(ok).exit_code() == 0
    assert report_with(ok, Check("b", "segment", "delivered", FAILED)).exit_code() == 1
    assert (
        report_with(
            Check("b", "x", "authenticated", FAILED, failure=FAILURE_UNREACHABLE),
            Check("c", "x", "authenticated", FAILED, failure=FAILURE_CREDENTIAL),
        ).exit_code()
        == 3
    )
    assert report_with(Check("c", "x", "spec", FAILED, failure=FAILURE_USAGE)).exit_code() == 2
    warn = Check("w", "lint", "lint", WARNING)
    assert report_with(warn).exit_code() == 0
    assert report_with(warn, strict=True).exit_code() == 1


def test_json_document_shape():
    report = report_with(
        Check("segment.track", "segment", "accepted", PASSED, "200 accepted", http_status=200, duration_ms=12.345)
    )
    doc = json.loads(render_json(report))
    assert doc["schema_version"] == 1 and doc["command"] == "send-test" and doc["ok"] is True
    check = doc["checks"][0]
    assert set(check) >= {"id", "route", "tier", "status", "http_status", "duration_ms", "message", "file", "line"}
    assert check["duration_ms"] == 12.3
    assert doc["summary"]["counts"]["passed"] == 1


def test_junit_has_one_case_per_check_and_failure_text_in_the_body(tmp_path):
    report = report_with(
        Check("segment.delivery", "segment", "delivered", FAILED, "never arrived", hint="connect the destination"),
        Check("segment.delivery", "segment", "delivered", FAILED, "second with the same name"),
        Check("x", "lint", "lint", SKIPPED, "not configured"),
        Check("y", "lint", "spec", PASSED, "fine", file="f.ndjson", line=3),
    )
    path = tmp_path / "r.xml"
    render_junit(report, str(path))
    suite = ET.parse(path).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 4 and suite.get("failures") == "2" and suite.get("skipped") == "1"
    assert len({c.get("name") for c in cases}) == 4  # GitLab keeps only the first of duplicate names
    failure = cases[0].find("failure")
    assert "never arrived" in failure.text and "connect the destination" in failure.text
    assert cases[3].get("file") == "f.ndjson" and cases[3].get("line") == "3"


def test_github_annotations_escape_and_locate():
    report = report_with(
        Check("spec/no-identity", "lint", "spec", FAILED, "100% bad,\nreally", file="a,b.ndjson", line=7),
        Check("w", "lint", "lint", WARNING, "meh"),
        Check("p", "lint", "lint", PASSED, "fine"),
    )
    lines = github_annotations(report)
    assert lines[0] == "::error file=a%2Cb.ndjson,line=7,title=cdpio spec/no-identity::100%25 bad,%0Areally"
    assert lines[1].startswith("::warning title=cdpio w::")
    assert len(lines) == 2
    summary = github_step_summary(report)
    assert "a,b.ndjson:7" in summary and "FAILED" in summary

"""The result model: exit-code priority, JSON, JUnit and GitHub renderers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import orjson
import pytest

from cdpio_cli.errors import ExitCode, FailureKind, exit_code_for, failure_for_exit_code, worst_exit_code
from cdpio_cli.messages import Severity
from cdpio_cli.results import (
    Check,
    Report,
    Status,
    Tier,
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
    ok = Check(id="a", route="segment", tier=Tier.ACCEPTED, status=Status.PASSED)
    assert report_with(ok).exit_code() == 0
    assert report_with(ok, Check(id="b", route="segment", tier=Tier.DELIVERED, status=Status.FAILED)).exit_code() == 1
    assert (
        report_with(
            Check(id="b", route="x", tier=Tier.AUTHENTICATED, status=Status.FAILED, failure=FailureKind.UNREACHABLE),
            Check(id="c", route="x", tier=Tier.AUTHENTICATED, status=Status.FAILED, failure=FailureKind.CREDENTIAL),
        ).exit_code()
        == 3
    )
    assert (
        report_with(
            Check(id="c", route="x", tier=Tier.SPEC, status=Status.FAILED, failure=FailureKind.USAGE)
        ).exit_code()
        == 2
    )
    warn = Check(id="w", route="lint", tier=Tier.LINT, status=Status.WARNING)
    assert report_with(warn).exit_code() == 0
    assert report_with(warn, strict=True).exit_code() == 1


def test_json_document_shape():
    report = report_with(
        Check(
            id="segment.track",
            route="segment",
            tier=Tier.ACCEPTED,
            status=Status.PASSED,
            message="200 accepted",
            http_status=200,
            duration_ms=12.345,
        )
    )
    doc = json.loads(render_json(report))
    assert doc["schema_version"] == 1 and doc["command"] == "send-test" and doc["ok"] is True
    check = doc["checks"][0]
    assert set(check) >= {"id", "route", "tier", "status", "http_status", "duration_ms", "message", "file", "line"}
    assert check["duration_ms"] == 12.3
    assert doc["summary"]["counts"]["passed"] == 1


def test_junit_has_one_case_per_check_and_failure_text_in_the_body(tmp_path):
    report = report_with(
        Check(
            id="segment.delivery",
            route="segment",
            tier=Tier.DELIVERED,
            status=Status.FAILED,
            message="never arrived",
            hint="connect the destination",
        ),
        Check(
            id="segment.delivery",
            route="segment",
            tier=Tier.DELIVERED,
            status=Status.FAILED,
            message="second with the same name",
        ),
        Check(id="x", route="lint", tier=Tier.LINT, status=Status.SKIPPED, message="not configured"),
        Check(id="y", route="lint", tier=Tier.SPEC, status=Status.PASSED, message="fine", file="f.ndjson", line=3),
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
        Check(
            id="spec/no-identity",
            route="lint",
            tier=Tier.SPEC,
            status=Status.FAILED,
            message="100% bad,\nreally",
            file="a,b.ndjson",
            line=7,
        ),
        Check(id="w", route="lint", tier=Tier.LINT, status=Status.WARNING, message="meh"),
        Check(id="p", route="lint", tier=Tier.LINT, status=Status.PASSED, message="fine"),
    )
    lines = github_annotations(report)
    assert lines[0] == "::error file=a%2Cb.ndjson,line=7,title=cdpio spec/no-identity::100%25 bad,%0Areally"
    assert lines[1].startswith("::warning title=cdpio w::")
    assert len(lines) == 2
    summary = github_step_summary(report)
    assert "a,b.ndjson:7" in summary and "FAILED" in summary


# The JSON document as cdpio wrote it when statuses, tiers and failure kinds
# were plain strings: the enums must not change one byte of it.
GOLDEN_JSON = """{
  "schema_version": 1,
  "command": "check-keys",
  "ok": false,
  "exit_code": 3,
  "run_id": "20261202010000-abcdef",
  "checks": [
    {
      "id": "segment.track",
      "route": "segment",
      "tier": "accepted",
      "status": "passed",
      "http_status": 200,
      "duration_ms": 12.3,
      "message": "200 accepted",
      "file": null,
      "line": null
    },
    {
      "id": "customerio.track",
      "route": "customerio",
      "tier": "authenticated",
      "status": "failed",
      "http_status": 401,
      "duration_ms": null,
      "message": "rejected",
      "file": null,
      "line": null,
      "hint": "check the key",
      "details": {
        "region": "us"
      }
    },
    {
      "id": "naming/x",
      "route": "lint",
      "tier": "lint",
      "status": "warning",
      "http_status": null,
      "duration_ms": null,
      "message": "é",
      "file": "a.ndjson",
      "line": 3
    }
  ],
  "summary": {
    "counts": {
      "passed": 1,
      "failed": 1,
      "warning": 1,
      "info": 0,
      "skipped": 0
    },
    "sandbox": true,
    "sandbox_target": "the embedded sandbox"
  }
}"""


def golden_report(checks: list[Check] | None = None) -> Report:
    report = Report(command="check-keys", run_id="20261202010000-abcdef", sandbox="the embedded sandbox")
    report.extend(
        [
            Check(
                id="segment.track",
                route="segment",
                tier=Tier.ACCEPTED,
                status=Status.PASSED,
                message="200 accepted",
                http_status=200,
                duration_ms=12.345,
            ),
            Check(
                id="customerio.track",
                route="customerio",
                tier=Tier.AUTHENTICATED,
                status=Status.FAILED,
                message="rejected",
                http_status=401,
                failure=FailureKind.CREDENTIAL,
                hint="check the key",
                details={"region": "us"},
            ),
            Check(
                id="naming/x", route="lint", tier=Tier.LINT, status=Status.WARNING, message="é", file="a.ndjson", line=3
            ),
        ]
        if checks is None
        else checks
    )
    return report


def test_json_output_is_byte_identical_to_the_string_vocabulary():
    assert render_json(golden_report()) == GOLDEN_JSON
    # json.dumps of the whole document (what --json promised) gives the same bytes.
    assert json.dumps(golden_report().to_dict(), indent=2, ensure_ascii=False, default=str) == GOLDEN_JSON
    # A check built from the old plain strings reports the same (values compare and hash equal).
    plain = [Check(**{"id": "a", "route": "x", "tier": "lint", "status": "warning"})]
    assert golden_report(plain).counts() == {"passed": 0, "failed": 0, "warning": 1, "info": 0, "skipped": 0}


def test_vocabulary_members_print_as_their_values():
    for member in [*Status, *Tier, *FailureKind, *Severity]:
        assert str(member) == f"{member}" == f"{member:<3}".strip() == member.value
        assert json.dumps(member) == f'"{member.value}"'
        assert orjson.dumps(member) == f'"{member.value}"'.encode()
        assert hash(member) == hash(member.value) and member == member.value
    for code in ExitCode:
        assert str(code) == f"{code}" == json.dumps(code) == str(int(code))
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 130]


def test_every_failure_kind_has_its_exit_code_and_back():
    assert {kind: exit_code_for(kind) for kind in FailureKind} == {
        FailureKind.CHECK: ExitCode.CHECK_FAILED,
        FailureKind.USAGE: ExitCode.USAGE,
        FailureKind.CREDENTIAL: ExitCode.CREDENTIAL,
        FailureKind.UNREACHABLE: ExitCode.UNREACHABLE,
        FailureKind.INTERRUPTED: ExitCode.INTERRUPTED,
    }
    for kind in FailureKind:
        assert failure_for_exit_code(exit_code_for(kind)) is kind
    assert failure_for_exit_code(0) is FailureKind.CHECK


def test_check_is_keyword_only():
    error = pytest.raises(TypeError, Check, "a", "segment", Tier.ACCEPTED, Status.PASSED)
    assert "positional" in str(error.value)

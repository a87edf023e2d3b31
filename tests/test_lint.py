"""lint.py and `cdpio lint`: each rule fires at the right line; clean data is silent."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cdpio_cli import forking, lint, messages, plan
from cdpio_cli.errors import UsageError
from cdpio_cli.fixtures import iter_records
from tests.cli_helpers import run_cli

DATA = Path(__file__).parent / "data" / "lint"
NOW = datetime(2026, 1, 11, tzinfo=timezone.utc)  # the fixtures' timestamps are 2026-01-10
CLEAN = [str(DATA / n) for n in ("clean.ndjson", "clean.yaml", "clean_batch.json")]


def lint_file(name: str, **kwargs) -> lint.LintResult:
    return lint.lint_records(iter_records([str(DATA / name)]), now=NOW, **kwargs)


def fired(result: lint.LintResult) -> set[tuple[str, int]]:
    return {(f.rule, f.line) for f in result.findings}


@pytest.mark.parametrize(
    "name,rule,line",
    [
        ("spec_no_identity.ndjson", "spec/no-identity", 2),
        ("spec_bad_timestamp.ndjson", "spec/bad-timestamp", 2),
        ("naming_title_case.ndjson", "naming/event-title-case", 2),
        ("naming_event_variants.ndjson", "naming/event-variants", 4),
        ("naming_dynamic_event.ndjson", "naming/dynamic-event-name", 2),
        ("naming_key_style.ndjson", "naming/property-key-style", 2),
        ("naming_key_variants.ndjson", "naming/key-variants", 2),
        ("identity_whitespace.ndjson", "identity/user-id-whitespace", 2),
        ("identity_case.ndjson", "identity/user-id-variants", 2),
        ("identity_mixed_kinds.ndjson", "identity/mixed-id-kinds", 3),
        ("identity_unlinked_anonymous.ndjson", "identity/unlinked-anonymous", 2),
        ("identity_no_email.ndjson", "identity/identify-without-email", 2),
        ("cio_page_without_url.ndjson", "customerio/page-without-url", 2),
        ("cio_device_without_token.ndjson", "customerio/device-without-token", 2),
        ("cio_device_without_user.ndjson", "customerio/device-without-user-id", 2),
        ("cio_ms_timestamp.ndjson", "customerio/millisecond-timestamp", 2),
        ("cio_old_event.ndjson", "customerio/old-event", 2),
        ("cio_event_name_too_long.ndjson", "customerio/event-name-too-long", 2),
        ("cio_attribute_value_too_long.ndjson", "customerio/attribute-value-too-long", 2),
        ("cio_too_many_attributes.ndjson", "customerio/too-many-attributes", 2),
        ("cio_id_too_long.ndjson", "customerio/id-too-long", 2),
        ("traits_type_drift.ndjson", "traits/type-drift", 2),
        ("properties_type_drift.ndjson", "properties/type-drift", 3),
        ("bad_lines.ndjson", "input/unreadable", 3),
    ],
)
def test_rule_fires_at_the_right_line(name, rule, line):
    result = lint_file(name)
    assert (rule, line) in fired(result), [(f.rule, f.line, f.message) for f in result.findings]
    finding = next(f for f in result.findings if f.rule == rule)
    assert finding.file == str(DATA / name)
    expected = lint.RULES[rule].severity if rule in lint.RULES else "error"
    assert finding.severity == expected
    # nothing fires on the clean first line of any problem fixture
    assert all(f.line != 1 for f in result.findings)


def test_clean_data_set_produces_no_findings():
    result = lint.lint_records(iter_records(CLEAN), now=NOW)
    assert result.messages == 30
    assert result.findings == [], [(f.rule, f.location(), f.message) for f in result.findings]


def test_clean_data_set_without_a_clock_has_no_warnings():
    # Real "now": the fixtures are old, which is info only.
    result = lint.lint_records(iter_records(CLEAN))
    assert result.errors == 0 and result.warnings == 0
    assert {f.rule for f in result.findings} <= {"customerio/old-event"}


def test_spec_rules_come_from_messages_spec_problems():
    msg = {"type": "track", "userId": "u", "messageId": "m" * 150, "properties": "x"}
    expected = [(p.rule, p.severity, p.message) for p in messages.spec_problems(msg)]
    result = lint.lint_messages([msg], now=NOW)
    got = [(f.rule, f.severity, f.message) for f in result.findings if f.rule.startswith("spec/")]
    assert got == expected and len(expected) >= 3


def test_bad_lines_do_not_hide_valid_ones():
    result = lint_file("bad_lines.ndjson")
    assert result.messages == 3 and result.invalid == 1
    assert [f.rule for f in result.findings] == ["input/unreadable"]


@pytest.mark.parametrize(
    "name,variant",
    [
        ("signed up", "Signed Up"),
        ("signed_up", "Signed Up"),
        ("signedUp", "Signed Up"),
        ("Signed up", "Signed Up"),
        (" Signed Up", "Signed Up"),
    ],
)
def test_title_case_problems_and_suggestions(name, variant):
    assert lint.title_case_problem(name)
    assert lint.suggest_title_case(name) == variant


@pytest.mark.parametrize(
    "name",
    [
        "Signed Up",
        "Viewed Pricing",
        "Clicked CTA",
        "Opened on iOS",
        "Order Completed",
        "Product Added to Wishlist",
        "Email Marked as Spam",
        "Step 2 Completed",
        "Checked-In",
    ],
)
def test_title_case_accepts_ordinary_names(name):
    assert lint.title_case_problem(name) is None
    assert lint.dynamic_value(name) is None


@pytest.mark.parametrize(
    "name,value",
    [
        ("Signed Up 2026-01-09", "2026-01-09"),
        ("Order 884213 Completed", "884213"),
        ("Viewed ada@example.com", "ada@example.com"),
        ("Clicked 9b2c1e5e-1d4f-4c7a-9a53-0f6b2d1c3e4a", "9b2c1e5e-1d4f-4c7a-9a53-0f6b2d1c3e4a"),
        ("Viewed 01/09/2026", "01/09/2026"),
    ],
)
def test_dynamic_values(name, value):
    assert lint.dynamic_value(name) == value


def test_word_order_is_opt_in_info():
    msgs = [{"type": "track", "userId": "u", "event": "Signed Up"}]
    assert not lint.lint_messages(msgs, now=NOW, disable=["identity"]).findings
    result = lint.lint_messages(
        msgs, now=NOW, disable=["identity"], severity_overrides={"naming/event-object-action": "info"}
    )
    assert [(f.rule, f.severity) for f in result.findings] == [("naming/event-object-action", "info")]


def test_disable_by_id_prefix_and_severity_off():
    base = lint_file("naming_event_variants.ndjson")
    assert {"naming/event-title-case", "naming/event-variants"} <= {f.rule for f in base.findings}
    assert not lint_file("naming_event_variants.ndjson", disable=["naming/*"]).findings
    assert not lint_file("naming_event_variants.ndjson", disable=["naming"]).findings
    only = lint_file("naming_event_variants.ndjson", disable=["naming/event-title-case"])
    assert {f.rule for f in only.findings} == {"naming/event-variants"}
    off = lint_file("naming_event_variants.ndjson", severity_overrides={"naming/*": "off"})
    assert not off.findings
    up = lint_file(
        "naming_event_variants.ndjson", severity_overrides={"naming/*": "info", "naming/event-variants": "error"}
    )
    assert {(f.rule, f.severity) for f in up.findings} == {
        ("naming/event-title-case", "info"),
        ("naming/event-variants", "error"),
    }


def test_spec_rules_can_be_disabled_and_input_errors_cannot():
    assert not lint_file("spec_no_identity.ndjson", disable=["spec/no-identity", "customerio"]).findings
    assert [f.rule for f in lint_file("bad_lines.ndjson", disable=["input/unreadable"]).findings] == [
        "input/unreadable"
    ]


def test_unknown_rule_is_a_usage_error_with_a_suggestion():
    with pytest.raises(UsageError, match="did you mean naming/event-title-case"):
        lint.lint_messages([], disable=["naming/event-titlecase"])
    with pytest.raises(UsageError, match="error, warning, info, off"):
        lint.lint_messages([], severity_overrides={"naming/*": "loud"})


def test_findings_per_rule_are_capped_but_counted():
    msgs = [{"type": "page", "userId": f"u{i}"} for i in range(30)]
    result = lint.lint_messages(msgs, now=NOW, max_per_rule=5, disable=["identity"])
    listed = [f for f in result.findings if f.rule == "customerio/page-without-url"]
    assert len(listed) == 5
    assert result.by_rule["customerio/page-without-url"] == 30
    assert result.suppressed["customerio/page-without-url"] == 25
    assert result.errors == 30


def test_findings_to_checks_map_severity_honestly():
    result = lint.lint_records(
        iter_records(
            [
                str(DATA / "identity_unlinked_anonymous.ndjson"),
                str(DATA / "naming_title_case.ndjson"),
                str(DATA / "cio_page_without_url.ndjson"),
                str(DATA / "bad_lines.ndjson"),
            ]
        ),
        now=NOW,
    )
    checks = {c.id: c for c in lint.findings_to_checks(result)}
    assert checks["customerio/page-without-url"].status == "failed"
    assert checks["customerio/page-without-url"].exit_code() == 1
    assert checks["naming/event-title-case"].status == "warning"
    info = checks["identity/unlinked-anonymous"]
    assert info.status == "info" and info.exit_code() == 0
    assert info.details["severity"] == "info"
    assert checks["input/unreadable"].exit_code() == 2
    assert checks["spec/no-identity" if "spec/no-identity" in checks else "input/unreadable"].tier == "spec"


def _state_size(blob_size: int) -> int:
    import sys

    from cdpio_cli.fixtures import Record

    linter = lint.Linter(now=NOW)
    msgs = [
        {"type": "identify", "userId": "u1", "traits": {"email": "a@b.co", "bio": "x" * blob_size}},
        {"type": "track", "userId": "u1", "event": "Signed Up", "properties": {"blob": "x" * blob_size}},
        {"type": "track", "userId": "u1", "event": "Signed Up", "properties": {"blob": 1}},
    ]
    for i, msg in enumerate(msgs, 1):
        linter.add(Record("f", i, msg))

    def size(obj, seen):
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        total = sys.getsizeof(obj)
        if isinstance(obj, dict):
            total += sum(size(k, seen) + size(v, seen) for k, v in obj.items())
        elif isinstance(obj, (list, tuple, set)):
            total += sum(size(v, seen) for v in obj)
        return total

    return size({k: v for k, v in vars(linter).items() if k.startswith("_")}, set())


def test_aggregates_do_not_keep_message_values():
    assert _state_size(50_000) - _state_size(10) < 500


# --- CLI ----------------------------------------------------------------------


def test_cli_clean_exits_0_and_json_is_alone_on_stdout(tmp_path):
    res = run_cli("lint", *CLEAN, "--json", cwd=tmp_path)
    assert res.code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["command"] == "lint" and doc["ok"] is True
    assert doc["summary"]["messages"] == 30
    assert doc["summary"]["findings"]["error"] == 0 and doc["summary"]["findings"]["warning"] == 0
    assert "30 message(s) read" in res.stderr


def test_cli_errors_exit_1_with_locations(tmp_path):
    res = run_cli("lint", str(DATA / "cio_page_without_url.ndjson"), "--json", cwd=tmp_path)
    assert res.code == 1
    doc = res.json
    check = next(c for c in doc["checks"] if c["id"] == "customerio/page-without-url")
    assert check["status"] == "failed" and check["line"] == 2
    assert check["details"]["severity"] == "error"


def test_cli_warnings_pass_unless_strict(tmp_path):
    path = str(DATA / "naming_title_case.ndjson")
    assert run_cli("lint", path, cwd=tmp_path).code == 0
    strict = run_cli("lint", path, "--strict", cwd=tmp_path)
    assert strict.code == 1 and "naming/event-title-case" in strict.stderr
    assert run_cli("lint", path, "--strict", "--disable", "naming/*", cwd=tmp_path).code == 0


def test_cli_reads_the_config_lint_section_without_its_secrets(tmp_path):
    (tmp_path / "cdpio.yaml").write_text(
        "version: 1\nsegment:\n  write_key: ${SEGMENT_WRITE_KEY}\n"
        "lint:\n  disable: [naming/event-title-case]\n  severity: {customerio/page-without-url: warning}\n"
    )
    assert run_cli("lint", str(DATA / "naming_title_case.ndjson"), "--strict", cwd=tmp_path).code == 0
    res = run_cli("lint", str(DATA / "cio_page_without_url.ndjson"), "--json", cwd=tmp_path)
    assert res.code == 0, res.output
    assert res.json["summary"]["config"].endswith("cdpio.yaml")


def test_cli_unreadable_record_exits_2_but_reports_the_rest(tmp_path):
    res = run_cli(
        "lint", str(DATA / "bad_lines.ndjson"), str(DATA / "naming_title_case.ndjson"), "--json", cwd=tmp_path
    )
    assert res.code == 2
    ids = [c["id"] for c in res.json["checks"]]
    assert "input/unreadable" in ids and "naming/event-title-case" in ids
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "make,expect",
    [
        (lambda d: d / "missing.ndjson", "no such file"),
        (lambda d: d, "is a directory"),
        (
            lambda d: _write(
                d / "bomb.yaml",
                "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
                + "".join(f"{n}: &{n} [{','.join(['*' + p] * 10)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)),
            ),
            "alias bomb",
        ),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, make, expect):
    res = run_cli("lint", str(make(tmp_path)), cwd=tmp_path)
    assert res.code == 2
    assert expect in res.stderr and "Traceback" not in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.startswith("cdpio: error:")]) == 1


@pytest.mark.parametrize(
    "name,content,expect",
    [
        ("empty.ndjson", b"", "file is empty"),
        ("bin.ndjson", bytes(range(256)) * 8, "binary file"),
        ("utf.ndjson", b'{"type": "track", "event": "\xff"}\n', "invalid UTF-8"),
        ("trunc.json", b'[{"type": "track", "userId": "u", "event": "A"},\n {"type"', "truncated"),
        ("deep.json", b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        ("huge.ndjson", b'{"a": "' + b"x" * (3 * 1024 * 1024) + b'"}\n', "over 1,024 KB"),
    ],
)
def test_cli_bad_content_is_located_exit_2(tmp_path, name, content, expect):
    path = tmp_path / name
    path.write_bytes(content)
    res = run_cli("lint", str(path), "--json", cwd=tmp_path)
    assert res.code == 2, res.output
    check = next(c for c in res.json["checks"] if c["id"] == "input/unreadable")
    assert expect in check["message"] and check["file"] == str(path) and check["line"] >= 1
    assert "Traceback" not in res.stderr


def test_cli_stdin_and_unknown_rule(tmp_path):
    line = json.dumps({"type": "page", "userId": "u", "properties": {"title": "x"}}) + "\n"
    res = run_cli("lint", "-", "--json", cwd=tmp_path, input=line)
    assert res.code == 1 and res.json["checks"][0]["file"] == "-"
    bad = run_cli("lint", "-", "--disable", "nope/rule", cwd=tmp_path, input=line)
    assert bad.code == 2 and "unknown lint rule" in bad.stderr


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_two_core_path_gives_the_one_process_result(tmp_path, monkeypatch):
    """Past PARALLEL_AFTER records a worker computes the per-message verdicts:
    same findings, same order, same file:line, same totals and notes."""
    from cdpio_cli.lint import parallel

    monkeypatch.setattr(forking, "forkable", lambda: True)  # whatever threads the test process runs

    pipelines: list[parallel._Pipeline] = []
    start = parallel._Pipeline.__init__

    def spy(self, linter):
        start(self, linter)
        pipelines.append(self)

    monkeypatch.setattr(parallel._Pipeline, "__init__", spy)
    corpus = _past_threshold_corpus(tmp_path, parallel.PARALLEL_AFTER + 15_000)
    for kwargs in ({"max_per_rule": 0}, {}, {"max_per_rule": None}):
        one = lint.lint_records(iter_records([str(corpus)]), now=NOW, parallel=False, **kwargs)
        two = lint.lint_records(iter_records([str(corpus)]), now=NOW, **kwargs)
        assert two == one
        assert [(f.rule, f.file, f.line, f.message) for f in two.findings] == [
            (f.rule, f.file, f.line, f.message) for f in one.findings
        ]
    assert len(pipelines) == 3 and all(p.sent > 0 for p in pipelines)
    assert one.invalid > 0 and len(one.by_rule) > 15
    # Findings past the threshold, input errors included, keep their lines.
    late = {f.rule for f in two.findings if f.line and f.line > parallel.PARALLEL_AFTER}
    assert {"input/unreadable", "spec/bad-timestamp", "customerio/id-too-long"} <= late


def test_two_core_path_whichever_process_computes_the_verdicts(tmp_path, monkeypatch):
    """The main process computes a chunk's verdicts, or leaves them to the worker
    when the worker was idle: both kinds of chunk, interleaved, give the
    one-process result (records without a raw line included)."""
    from cdpio_cli.lint import parallel

    monkeypatch.setattr(forking, "forkable", lambda: True)  # whatever threads the test process runs

    turns = iter(range(10**9))
    monkeypatch.setattr(parallel._Pipeline, "worker_hungry", lambda self: next(turns) % 3 == 0)
    sent: list[bool] = []
    send = parallel._Pipeline.send

    def spy(self, chunk):
        sent.append(chunk[4] is None)
        send(self, chunk)

    monkeypatch.setattr(parallel._Pipeline, "send", spy)
    corpus = _past_threshold_corpus(tmp_path, parallel.PARALLEL_AFTER + 8_000)
    files = [str(corpus), str(DATA / "clean_batch.json"), str(DATA / "clean.yaml"), str(corpus)]
    one = lint.lint_records(iter_records(files), now=NOW, parallel=False, max_per_rule=None)
    two = lint.lint_records(iter_records(files), now=NOW, max_per_rule=None)
    assert two == one
    assert True in sent and False in sent
    # With a plan, the process that computes a chunk's verdicts runs the plan checker too.
    tracking_plan = plan.load_plan(str(Path(__file__).parent.parent / "examples" / "tracking-plan.yaml"))
    one = lint.lint_records(iter_records(files), now=NOW, parallel=False, max_per_rule=None, plan=tracking_plan)
    two = lint.lint_records(iter_records(files), now=NOW, max_per_rule=None, plan=tracking_plan)
    assert two == one
    assert any(f.rule.startswith("plan/") and f.line > parallel.PARALLEL_AFTER for f in two.findings)


def _past_threshold_corpus(tmp_path, size: int):
    """Every rule's fixture (bad JSON lines, batches, long ids...) repeated to
    `size` lines, with a unique id per copy so the aggregates keep growing."""
    lines: list[str] = []
    sources = sorted(DATA.glob("*.ndjson"))
    copy = 0
    while len(lines) < size:
        copy += 1
        for src in sources:
            lines += [line.replace("usr_2001", f"usr_{copy}") for line in src.read_text().splitlines()]
    corpus = tmp_path / "corpus.ndjson"
    corpus.write_text("\n".join(lines) + "\n")
    return corpus

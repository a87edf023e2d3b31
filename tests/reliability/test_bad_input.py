"""Bad input: broken configs and fixtures give one located error line and
exit 2 -- no traceback, no hang -- through every command that reads them.
Plus property-based tests over the message validator and the config loader.

The corpus is generated into tmp_path (no committed binaries).  Every run is
a subprocess with a timeout: finishing before it is the "no hang" proof.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cdpio_cli import messages
from cdpio_cli.config import load_config
from cdpio_cli.errors import ConfigError
from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.runner import EmbeddedSandbox
from tests.reliability._support import assert_clean_failure, one_error_line, run_all, run_bounded

# A long sweep (the bad-input corpus: every broken config and fixture through every
# command): .ci/run runs it with -m slow.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLEAN_FIXTURE = str(ROOT / "examples" / "fixtures" / "mobile.yaml")
GOOD = json.dumps({"type": "track", "userId": "u1", "event": "Signed Up", "properties": {}})

# Root reads files whatever their mode, so chmod 000 proves nothing there; a
# FIFO is the unreadable file that still bites root: opening one for reading
# blocks until a writer comes, i.e. a hang unless the reader checks first.
RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def alias_bomb(prefix: str = "") -> str:
    # 9 levels of 10 aliases each: 10**9 values once expanded.
    lines = [f"{prefix}a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{prefix}{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def unreadable(path: Path) -> Path:
    if RUNNING_AS_ROOT:
        os.mkfifo(path)
    else:
        path.write_text("version: 1\n")
        path.chmod(0)
    return path


# --- configs ------------------------------------------------------------------------------
# (id, writer, what the error line must say, line number or None for whole-file errors)

CONFIG_CASES = [
    ("empty", lambda p: p.write_text(""), "empty", None),
    ("whitespace-only", lambda p: p.write_text("\n\n   \n"), "empty", None),
    ("binary", lambda p: p.write_bytes(b"\x00\x01PK\x03\x04" * 200), "binary", None),
    ("invalid-utf8", lambda p: p.write_bytes(b"version: 1\nsegment:\n  write_key: \xff\xfe\n"), "UTF-8", 3),
    ("truncated-quote", lambda p: p.write_text('version: 1\nsegment:\n  write_key: "abc\n'), "invalid YAML", 3),
    ("truncated-flow", lambda p: p.write_text("version: 1\nreplay: {rate: 5, concurrency: [1,\n"), "invalid YAML", 3),
    ("tab-indent", lambda p: p.write_text("version: 1\nsegment:\n\twrite_key: x\n"), "invalid YAML", 3),
    ("alias-bomb", lambda p: p.write_text("version: 1\n" + alias_bomb()), "alias bomb", 2),
    ("merge-key", lambda p: p.write_text("version: 1\nbase: &b {region: us}\nsegment:\n  <<: *b\n"), "merge", 4),
    ("top-level-list", lambda p: p.write_text("- segment\n- customerio\n"), "mapping", 1),
    ("top-level-scalar", lambda p: p.write_text("42\n"), "mapping", 1),
    ("version-string", lambda p: p.write_text('version: "one"\n'), "version", 1),
    ("section-int", lambda p: p.write_text("version: 1\nsegment: 5\n"), "segment", 2),
    ("section-list", lambda p: p.write_text("version: 1\ncustomerio: [a, b]\n"), "customerio", 2),
    ("key-list", lambda p: p.write_text("version: 1\nsegment: {write_key: [1, 2]}\n"), "segment.write_key", 2),
    ("key-int", lambda p: p.write_text("version: 1\n\ncustomerio:\n  site_id: 12345\n"), "customerio.site_id", 4),
    ("key-date", lambda p: p.write_text("version: 1\nsegment: {write_key: 2024-01-01}\n"), "segment.write_key", 2),
    ("rate-string", lambda p: p.write_text("version: 1\nreplay:\n  rate: fast\n"), "replay.rate", 3),
    ("rate-negative", lambda p: p.write_text("version: 1\nreplay:\n  rate: -1\n"), "replay.rate", 3),
    ("timeout-bool", lambda p: p.write_text("version: 1\nverify:\n  timeout: true\n"), "verify.timeout", 3),
    ("timeout-nonsense", lambda p: p.write_text("version: 1\nreplay: {timeout: 10 lightyears}\n"), "replay.timeout", 2),
    ("events-string", lambda p: p.write_text("version: 1\nsend_test: {events: x}\n"), "send_test.events", 2),
    (
        "events-bad-type",
        lambda p: p.write_text("version: 1\nsend_test: {events: [{type: 5}]}\n"),
        "send_test.events",
        2,
    ),
    ("lint-disable-int", lambda p: p.write_text("version: 1\nlint: {disable: 3}\n"), "lint.disable", 2),
    ("severity-bad", lambda p: p.write_text("version: 1\nlint: {severity: {a: loud}}\n"), "lint.severity", 2),
    ("sandbox-string", lambda p: p.write_text('version: 1\nsandbox: "yes"\n'), "sandbox", 2),
    ("region-null", lambda p: p.write_text("version: 1\nsegment: {region: null}\n"), "segment.region", 2),
    ("complex-key", lambda p: p.write_text("version: 1\n? [a, b]\n: c\n"), "key", 2),
    ("duplicate-key", lambda p: p.write_text("version: 1\nsegment:\n  write_key: a\n  write_key: b\n"), "twice", 4),
    (
        "python-tag",
        lambda p: p.write_text("version: 1\nsegment: {write_key: !!python/object:os.system x}\n"),
        "constructor",
        2,
    ),
    ("unknown-key", lambda p: p.write_text("version: 1\nsegment:\n  writekey: x\n"), "unknown key", 3),
    (
        "unset-env-var",
        lambda p: p.write_text("version: 1\nsegment:\n  write_key: ${CDPIO_TEST_SURELY_UNSET}\n"),
        "CDPIO_TEST_SURELY_UNSET",
        3,
    ),
    ("directory", lambda p: p.mkdir(), "directory", None),
    # Past sys.int_info.str_digits_check_threshold Python's int() raises ValueError.
    ("huge-int", lambda p: p.write_text("version: 1\nreplay:\n  rate: " + "1" * 10_000 + "\n"), "too long", 3),
    (
        "huge-int-in-list",
        lambda p: p.write_text("version: 1\nlint:\n  disable:\n    - " + "9" * 5_000 + "\n"),
        "too long",
        4,
    ),
]


CONFIG_COMMANDS = {"check-keys": ("check-keys", "--offline"), "lint": ("lint", CLEAN_FIXTURE)}
# lint loads the config through the same loader: a sample of cases proves it
# surfaces the errors the same way (the full corpus runs through check-keys).
LINT_CONFIG_CASES = {
    "empty",
    "binary",
    "invalid-utf8",
    "truncated-quote",
    "alias-bomb",
    "section-list",
    "rate-string",
    "directory",
}


@pytest.fixture(scope="module")
def config_results(tmp_path_factory):
    jobs = {}
    for name, write, _, _ in CONFIG_CASES:
        for command, args in CONFIG_COMMANDS.items():
            if command == "lint" and name not in LINT_CONFIG_CASES:
                continue
            d = tmp_path_factory.mktemp(f"cfg-{name}-{command}")
            write(d / "cdpio.yaml")
            jobs[(name, command)] = (("-c", str(d / "cdpio.yaml"), *args), {"cwd": d, "timeout": 30})
    return run_all(jobs)


CONFIG_PARAMS = [
    pytest.param(*case, command, id=f"{command}-{case[0]}")
    for command in CONFIG_COMMANDS
    for case in CONFIG_CASES
    if command != "lint" or case[0] in LINT_CONFIG_CASES
]


@pytest.mark.parametrize("name,write,says,line,command", CONFIG_PARAMS)
def test_broken_config_is_one_located_line_exit_2(config_results, name, write, says, line, command):
    res = config_results[(name, command)]
    assert res is not None, "no answer within 30 s (hang)"
    assert_clean_failure(res, 2)
    text = one_error_line(res)
    assert says in text, text
    path = text.split("cdpio: error: ", 1)[1]
    assert path.startswith("/") and "cdpio.yaml" in path, text
    if line:
        assert f"cdpio.yaml:{line}:" in text, text


def test_huge_integer_in_the_config_is_one_json_config_error(tmp_path):
    path = tmp_path / "cdpio.yaml"
    path.write_text("version: 1\nsend_test:\n  traits:\n    plan: " + "7" * 10_000 + "\n")
    res = run_bounded("-c", str(path), "--json", "check-keys", "--offline", cwd=tmp_path, timeout=30)
    assert_clean_failure(res, 2)
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 2 and doc["ok"] is False
    assert [(p["line"], "too long" in p["message"]) for p in doc["error"]["problems"]] == [(4, True)]


def test_unreadable_config(tmp_path):
    path = unreadable(tmp_path / "cdpio.yaml")
    res = run_bounded("-c", str(path), "check-keys", "--offline", cwd=tmp_path, timeout=60)
    assert_clean_failure(res, 2)
    assert str(path) in one_error_line(res)


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nsend_test:\n  traits:\n    a: " + "[" * 3000 + "]" * 3000 + "\n",
        "version: 1\n" + "".join("  " * i + f"k{i}:\n" for i in range(2000)),
    ],
    ids=["flow", "block"],
)
def test_deeply_nested_config(tmp_path, text):
    path = tmp_path / "cdpio.yaml"
    path.write_text(text)
    res = run_bounded("-c", str(path), "check-keys", "--offline", cwd=tmp_path, timeout=30)
    assert_clean_failure(res, 2)
    assert f"{path}:" in one_error_line(res)


def test_config_with_a_huge_line_is_refused_quickly(tmp_path):
    path = tmp_path / "cdpio.yaml"
    path.write_text("version: 1\nsegment:\n  write_key: " + "a" * (16 * 1024 * 1024) + "\n")
    res = run_bounded("-c", str(path), "check-keys", "--offline", cwd=tmp_path, timeout=60)
    assert_clean_failure(res, 2)
    assert str(path) in one_error_line(res)


# --- fixtures -------------------------------------------------------------------------------
# (file name, writer, location line(s) or None for whole-file errors, what the error says).
# Run from the file's directory with a relative path, as a user would.


def _huge(p: Path) -> None:
    with open(p, "w") as fh:
        fh.write(GOOD + "\n")
        fh.write('{"type": "track", "userId": "u", "event": "E", "properties": {"x": "')
        fh.write("a" * (8 * 1024 * 1024))
        fh.write('"}}\n' + GOOD + "\n")


FIXTURE_CASES = [
    ("empty.ndjson", lambda p: p.write_text(""), 1, "empty"),
    ("empty.json", lambda p: p.write_text("   \n"), (1, 2), "empty"),
    ("empty.yaml", lambda p: p.write_text(""), 1, "empty"),
    ("binary.ndjson", lambda p: p.write_bytes(bytes(range(256)) * 16), 1, "binary"),
    ("binary.json", lambda p: p.write_bytes(b"\x00" * 64 + b"\xff" * 64), 1, "binary"),
    (
        "latin1.ndjson",
        lambda p: p.write_bytes((GOOD + "\n").encode() + b'{"type":"track","userId":"Jos\xe9","event":"X"}\n'),
        2,
        "UTF-8",
    ),
    ("bad-utf8.yaml", lambda p: p.write_bytes(b"- type: track\n  userId: \xff\xfe\n  event: X\n"), 2, "UTF-8"),
    ("truncated.json", lambda p: p.write_text("[" + GOOD + ",\n" + GOOD[:30]), 2, "invalid JSON"),
    ("truncated.ndjson", lambda p: p.write_text(GOOD + "\n" + GOOD[:30] + "\n"), 2, "invalid JSON"),
    ("truncated.yaml", lambda p: p.write_text("- type: track\n  userId: 'u1\n"), (2, 3), "invalid YAML"),
    (
        "nested.json",
        lambda p: p.write_text(
            '{"type":"track","userId":"u","event":"E","properties":' + '{"a":' * 100_000 + "1" + "}" * 100_000 + "}"
        ),
        1,
        "nested too deeply",
    ),
    (
        "nested.ndjson",
        lambda p: p.write_text(
            GOOD + "\n" + '{"type":"track","userId":"u","event":"E","p":' + "[" * 100_000 + "]" * 100_000 + "}\n"
        ),
        2,
        "nested too deeply",
    ),
    ("nested.yaml", lambda p: p.write_text("- " + "[" * 5000 + "]" * 5000 + "\n"), 1, "nesting"),
    ("huge-line.ndjson", _huge, 2, "over 1,024 KB"),
    ("not-json.ndjson", lambda p: p.write_text(GOOD + "\nhello world\n"), 2, "invalid JSON"),
    ("alias-bomb.yaml", lambda p: p.write_text(alias_bomb()), None, "alias"),
    ("a-directory.ndjson", lambda p: p.mkdir(), None, "directory"),
    ("missing.ndjson", lambda p: None, None, "no such file"),
]

FIXTURE_COMMANDS = {"lint": ("lint",), "explain": ("explain",), "replay": ("replay", "--dry-run")}


@pytest.fixture(scope="module")
def fixture_results(tmp_path_factory):
    jobs = {}
    for name, write, _, _ in FIXTURE_CASES:
        d = tmp_path_factory.mktemp("fixture")
        write(d / name)
        for command, args in FIXTURE_COMMANDS.items():
            jobs[(name, command)] = ((*args, name), {"cwd": d, "timeout": 30})
    return run_all(jobs)


@pytest.mark.parametrize("name,write,line,says", FIXTURE_CASES, ids=[c[0] for c in FIXTURE_CASES])
@pytest.mark.parametrize("command", list(FIXTURE_COMMANDS))
def test_broken_fixture_is_located_exit_2(fixture_results, name, write, line, says, command):
    res = fixture_results[(name, command)]
    assert res is not None, "no answer within 30 s (hang)"
    assert_clean_failure(res, 2)
    if line is None:
        text = one_error_line(res)
        assert name in text and says in text, text
    else:
        # Record-level: reported at its file:line (the other records are still read).
        lines = line if isinstance(line, tuple) else (line,)
        located = [x for x in res.stderr.splitlines() if any(f"{name}:{n}" in x for n in lines)]
        assert located and any(says in x for x in located), res.stderr


@pytest.mark.parametrize("command", ["lint", "explain"])
def test_location_survives_a_long_path(tmp_path, command):
    deep = tmp_path / "a-fairly-long-directory-name" / "events-from-production"
    deep.mkdir(parents=True)
    path = deep / "recorded-2026-03-01.ndjson"
    path.write_text(GOOD + "\n{broken\n")
    res = run_bounded(command, str(path), cwd=tmp_path, timeout=30)
    assert_clean_failure(res, 2)
    assert f"{path.name}:2" in res.stderr, res.stderr


@pytest.mark.parametrize("command", list(FIXTURE_COMMANDS))
def test_unreadable_fixture(tmp_path, command):
    path = unreadable(tmp_path / "events.ndjson")
    res = run_bounded(*FIXTURE_COMMANDS[command], str(path), cwd=tmp_path, timeout=60)
    assert_clean_failure(res, 2)
    text = one_error_line(res)
    assert str(path) in text


WRONG_TYPES = [
    [1, 2],
    5,
    "a string",
    None,
    True,
    {"type": 5, "userId": "u"},
    {"type": ["track"], "userId": "u", "event": "E"},
    {"type": "track", "userId": ["a"], "event": {"x": 1}, "properties": "p"},
    {"type": "identify", "userId": True, "traits": [1]},
    {"type": "page", "anonymousId": {"a": 1}, "name": 7, "context": "ctx"},
    {"type": "alias", "userId": None, "previousId": 3.5, "timestamp": 1700000000},
    {"type": "track", "userId": "u", "event": "E", "messageId": 12, "timestamp": "tomorrow"},
]


def _wrong_types(tmp_path: Path) -> Path:
    path = tmp_path / "wrong-types.ndjson"
    path.write_text("".join(json.dumps(v) + "\n" for v in WRONG_TYPES))
    return path


def test_wrong_types_everywhere_replay_names_every_line(tmp_path):
    path = _wrong_types(tmp_path)
    res = run_bounded("replay", "--dry-run", str(path), cwd=tmp_path, timeout=30)
    assert_clean_failure(res, 2)
    listed = [f"{path}:{i}:" for i in range(1, len(WRONG_TYPES) + 1)]
    shown = [loc for loc in listed if any(line.startswith(loc) for line in res.stderr.splitlines())]
    assert shown == listed[: len(shown)] and len(shown) >= 5, res.stderr  # replay lists the first 5
    assert f"{len(WRONG_TYPES)} invalid" in res.stderr


def test_wrong_types_everywhere_lint_reports_each_line_as_an_error(tmp_path):
    # Well-formed JSON with wrong types is lint's subject matter, not unreadable
    # input: each line is a located spec error, and lint exits 1 (checks failed).
    path = _wrong_types(tmp_path)
    res = run_bounded("--json", "lint", str(path), cwd=tmp_path, timeout=30)
    assert_clean_failure(res, 1)
    lines = {c["line"] for c in res.json["checks"] if c["status"] == "failed"}
    assert lines == set(range(1, len(WRONG_TYPES) + 1))


def test_wrong_types_everywhere_explain(tmp_path):
    path = _wrong_types(tmp_path)
    # explain describes what would happen to each message: every line gets a
    # verdict (the broken ones are dropped, with a warning), and only the last
    # line is a valid track call.
    res = run_bounded("--json", "explain", str(path), cwd=tmp_path, timeout=30)
    assert res.code == 0 and "internal error" not in res.stderr, res.stderr
    assert "Traceback" not in res.output
    verdicts = {c["line"]: c["status"] for c in res.json["checks"]}
    assert verdicts == {**{i: "warning" for i in range(1, len(WRONG_TYPES))}, len(WRONG_TYPES): "passed"}


# --- property-based: the message validator --------------------------------------------------

KEYS = [
    "type",
    "userId",
    "anonymousId",
    "event",
    "name",
    "properties",
    "traits",
    "context",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "messageId",
    "groupId",
    "previousId",
    "integrations",
]

# Any size: JSON and YAML allow integers beyond 64 bits, which orjson refuses.
json_ints = st.integers()
json_scalars = st.none() | st.booleans() | json_ints | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
message_like = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(json_values, message_like))
def test_spec_problems_never_raises_and_is_well_formed(value):
    problems = messages.spec_problems(value)
    assert isinstance(problems, list)
    for p in problems:
        assert p.severity in (messages.Severity.ERROR, messages.Severity.WARNING, messages.Severity.INFO)
        assert p.rule.startswith("spec/") and p.message
    if not isinstance(value, dict):
        assert [p.rule for p in problems] == ["spec/not-an-object"]


BIG = 2**64  # valid JSON and YAML; orjson alone would refuse it


def test_spec_problems_on_an_integer_beyond_64_bits():
    msg = {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"order_id": BIG}}
    assert isinstance(messages.spec_problems(msg), list)


@pytest.mark.parametrize("command", list(FIXTURE_COMMANDS))
def test_integer_beyond_64_bits_in_a_json_fixture(tmp_path, command):
    (tmp_path / "big.json").write_text(
        json.dumps([{"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"order_id": BIG}}])
    )
    res = run_bounded(*FIXTURE_COMMANDS[command], "big.json", cwd=tmp_path, timeout=30)
    assert "internal error" not in res.stderr and "Traceback" not in res.output, res.stderr


@settings(max_examples=100, deadline=None, database=None, phases=[Phase.generate])
@given(message_like)
def test_describe_never_raises(value):
    assert isinstance(messages.describe(value), str)


ids = st.one_of(st.text(min_size=1, max_size=12), json_ints, st.just(""), st.none())
timestamps = st.one_of(
    st.none(),
    st.just("2026-03-01T10:00:00.000Z"),
    st.just("2026-03-01 10:00:00+02:00"),
    st.just("yesterday"),
    json_ints,
    st.just("2026-03-01"),
)
plausible = st.fixed_dictionaries(
    {"type": st.sampled_from(list(messages.MESSAGE_TYPES) + ["bogus"])},
    optional={
        "userId": ids,
        "anonymousId": ids,
        "event": st.one_of(st.text(max_size=20), json_ints),
        "name": st.one_of(st.text(max_size=10), json_ints),
        "groupId": ids,
        "previousId": ids,
        "properties": st.one_of(st.dictionaries(st.text(max_size=6), json_scalars, max_size=3), json_scalars),
        "traits": st.one_of(st.dictionaries(st.text(max_size=6), json_scalars, max_size=3), json_scalars),
        "timestamp": timestamps,
        "messageId": st.one_of(st.text(max_size=12), json_ints, st.just("m" * 101)),
    },
)


@pytest.fixture(scope="module")
def strict_sandbox():
    with EmbeddedSandbox(SandboxOptions()) as sb:
        yield sb


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(msg=plausible)
def test_a_message_the_validator_passes_is_accepted_by_the_sandbox(strict_sandbox, msg):
    errors = [p for p in messages.spec_problems(msg) if p.severity == messages.Severity.ERROR]
    if errors:
        return
    from cdpio_cli.sandbox import defaults

    httpx.post(strict_sandbox.url + "/_sandbox/reset")
    # Pipelines in strict mode answers 400 for any message it would not take.
    res = httpx.post(
        strict_sandbox.url + "/pipelines/v1/batch",
        json={"batch": [msg]},
        headers={"Authorization": f"Bearer {defaults.PIPELINES_API_KEY}", "X-Strict-Mode": "1"},
    )
    assert res.status_code == 200, (msg, res.text)
    # Segment answers 200 either way; what matters is that it is not discarded on ingest.
    msg = {**msg, "messageId": str(uuid.uuid4())}
    res = httpx.post(strict_sandbox.url + "/segment/v1/batch", json={"batch": [msg], "writeKey": defaults.WRITE_KEY})
    assert res.status_code == 200
    (row,) = httpx.get(strict_sandbox.url + "/_sandbox/deliveries", params={"route": "segment"}).json()["deliveries"]
    assert messages.ingest_drop_reason(msg) is None
    assert row["status"] == "delivered" or not str(row["reason"]).startswith(
        ("no_user_anon_id", "event_not", "id_required", "bad_request", "properties_not", "traits_not", "name_not")
    ), (msg, row)


# --- property-based: the config loader ------------------------------------------------------

_yaml_fragments = st.sampled_from(
    [
        "version: 1\n",
        "segment:\n",
        "  write_key: ",
        "customerio:\n",
        "  region: ",
        "replay: {rate: ",
        "}",
        "[",
        "]",
        "{",
        "- ",
        "&a ",
        "*a ",
        "<<: ",
        "!!binary ",
        "!!python/name:os.system ",
        "${",
        "${X:-",
        "}",
        "'",
        '"',
        "\t",
        "\n",
        "  ",
        "? ",
        ": ",
        "#",
        "---\n",
        "...\n",
        "%YAML 1.1\n",
        "\ufeff",
        "\x00",
        "send_test: {events: [",
        "{type: track}",
        "verify: {timeout: ",
        "90s",
        "true",
        "null",
        "~",
        "1e999",
    ]
)
yaml_like = st.lists(st.one_of(_yaml_fragments, st.text(max_size=6)), max_size=40).map("".join)


@settings(max_examples=400, deadline=None, database=None)
@given(st.one_of(yaml_like, st.text(max_size=200), st.binary(max_size=200)))
def test_config_loader_only_ever_raises_config_error(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cdpio.yaml"
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        try:
            loaded = load_config(path, env={"X": "value"})
        except ConfigError as exc:
            text = exc.one_line()
            assert "\n" not in text and str(path) in text, text
        else:
            assert loaded.config.version == 1

"""Config discovery, interpolation and every error path a new user hits."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdpio_cli.config import find_config_path, load_config, parse_duration
from cdpio_cli.errors import ConfigError
from tests.cli_helpers import run_cli, write_config


def load_text(tmp_path: Path, text: str, env=None):
    return load_config(write_config(tmp_path, text), env=env or {})


def error_of(tmp_path: Path, text: str, env=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, env)
    return info.value


def test_interpolation_required_optional_and_literal(tmp_path):
    loaded = load_text(
        tmp_path,
        (
            "version: 1\n"
            "segment:\n"
            "  write_key: ${WK}\n"
            "  public_api_token: ${TOKEN:-}\n"
            "customerio:\n"
            "  site_id: ${SID:-c0ffee0000000000000a}\n"
            "  track_api_key: pre$${NOT_A_VAR}\n"
        ),
        env={"WK": "abcdefghijklmnopqrstuvwxyz012345"},
    )
    cfg = loaded.config
    assert cfg.segment.write_key == "abcdefghijklmnopqrstuvwxyz012345"
    assert cfg.segment.public_api_token == ""
    assert cfg.customerio.site_id == "c0ffee0000000000000a"
    assert cfg.customerio.track_api_key == "pre${NOT_A_VAR}"
    assert loaded.source("segment.write_key") == "env WK (cdpio.yaml:3)"
    assert loaded.source("customerio.region") == "default"


def test_unset_env_var_is_named_with_file_and_line(tmp_path):
    err = error_of(tmp_path, "version: 1\ncustomerio:\n  site_id: x\n  track_api_key: ${CIO_KEY}\n")
    assert err.exit_code == 2
    assert "CIO_KEY" in err.message and "not set" in err.message
    assert err.one_line().startswith(f"{tmp_path / 'cdpio.yaml'}:4:")


def test_misspelt_key_suggests_the_closest(tmp_path):
    err = error_of(tmp_path, "version: 1\ncustomerio:\n  site_idd: abc\n")
    assert "unknown key 'customerio.site_idd'" in err.message
    assert err.line == 3
    assert "customerio.site_id" in err.hint


def test_misspelt_section_suggests_the_closest(tmp_path):
    err = error_of(tmp_path, "version: 1\nsegmnt:\n  write_key: abc\n")
    assert err.line == 2 and "'segment'" in err.hint


def test_wrong_type_names_the_field_and_line(tmp_path):
    err = error_of(tmp_path, "replay:\n  concurrency: lots\n")
    assert err.line == 2 and "replay.concurrency" in err.message


def test_bad_region_value(tmp_path):
    err = error_of(tmp_path, "customerio:\n  region: mars\n")
    assert "customerio.region" in err.message and "'eu'" in err.message and err.line == 2


def test_broken_yaml_points_at_the_line_to_fix(tmp_path):
    err = error_of(tmp_path, 'version: 1\nsegment:\n  write_key: "abc\n  region: us\n')
    assert err.line == 3 and "invalid YAML" in err.message


def test_empty_and_non_mapping_configs(tmp_path):
    assert "empty" in error_of(tmp_path, "").message
    assert "mapping" in error_of(tmp_path, "- a\n- b\n").message


def test_alias_bomb_is_stopped(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=False):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    err = error_of(tmp_path, "\n".join(lines) + "\n")
    assert "alias bomb" in err.message


def test_duplicate_keys_are_errors(tmp_path):
    err = error_of(tmp_path, "segment:\n  region: us\n  region: eu\n")
    assert "twice" in err.message and err.line == 3


def test_binary_and_invalid_utf8(tmp_path):
    path = tmp_path / "cdpio.yaml"
    path.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(ConfigError, match="binary"):
        load_config(path)
    path.write_bytes(b"version: 1\nsegment:\n  write_key: \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_config(path)
    assert info.value.line == 3


def test_durations():
    assert parse_duration("90s") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("500ms") == 0.5
    assert parse_duration(3) == 3
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_duration_fields(tmp_path):
    cfg = load_text(tmp_path, "verify: {timeout: 2m, poll_interval: 500ms}\nreplay: {timeout: 3s}\n").config
    assert (cfg.verify.timeout, cfg.verify.poll_interval, cfg.replay.timeout) == (120, 0.5, 3)


def test_sandbox_shorthand(tmp_path):
    assert load_text(tmp_path, "sandbox: true\n").config.sandbox.enabled
    cfg = load_text(tmp_path, "sandbox: {url: 'http://127.0.0.1:9'}\n").config
    assert cfg.sandbox.enabled and cfg.sandbox.url == "http://127.0.0.1:9"


def test_discovery_order(tmp_path, monkeypatch):
    monkeypatch.delenv("CDPIO_CONFIG", raising=False)
    assert find_config_path(cwd=tmp_path) is None
    (tmp_path / ".cdpio.yaml").write_text("version: 1\n")
    assert find_config_path(cwd=tmp_path).name == ".cdpio.yaml"
    (tmp_path / "cdpio.yaml").write_text("version: 1\n")
    assert find_config_path(cwd=tmp_path).name == "cdpio.yaml"
    other = tmp_path / "other.yaml"
    other.write_text("version: 1\n")
    monkeypatch.setenv("CDPIO_CONFIG", str(other))
    assert find_config_path(cwd=tmp_path) == other
    assert find_config_path(str(tmp_path / "cdpio.yaml"), cwd=tmp_path).name == "cdpio.yaml"


def test_directory_and_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        find_config_path(str(tmp_path))
    with pytest.raises(ConfigError, match="does not exist"):
        find_config_path(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("version: 1\ncustomerio:\n  site_idd: x\n", "unknown key 'customerio.site_idd'"),
        ("segment:\n  write_key: ${CDPIO_TEST_UNSET_VAR}\n", "CDPIO_TEST_UNSET_VAR is not set"),
        ("segment: [\n", "invalid YAML"),
    ],
)
def test_cli_config_errors_are_one_line_exit_2(tmp_path, text, expected):
    write_config(tmp_path, text)
    result = run_cli("check-keys", "--offline", cwd=tmp_path)
    assert result.code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cdpio.yaml:" in result.stderr


def test_cli_directory_as_config(tmp_path):
    result = run_cli("--config", str(tmp_path), "check-keys", "--offline")
    assert result.code == 2 and "is a directory" in result.stderr and "Traceback" not in result.output


def test_unset_env_var_never_falls_back_to_the_sandbox(tmp_path):
    write_config(tmp_path, "segment:\n  write_key: ${CDPIO_TEST_UNSET_VAR}\n")
    result = run_cli("--json", "check-keys", cwd=tmp_path)
    assert result.code == 2
    assert "sandbox" not in result.stderr
    assert result.json["ok"] is False and "CDPIO_TEST_UNSET_VAR" in result.json["error"]["message"]


def test_an_empty_required_variable_is_an_error(tmp_path):
    # CI turns an undefined secret into "": that must not skip every check.
    err = error_of(tmp_path, "segment:\n  write_key: ${WK}\n", env={"WK": "  "})
    assert "WK is empty" in err.message and err.line == 2
    assert load_text(tmp_path, "segment:\n  write_key: ${WK:-}\n", env={"WK": ""}).config.segment.write_key == ""


def test_unterminated_variable_and_bad_endpoint(tmp_path):
    assert "unterminated" in error_of(tmp_path, "segment:\n  write_key: ${NOPE\n").message
    err = error_of(tmp_path, "segment:\n  endpoint: not a url\n")
    assert "segment.endpoint" in err.message and "base URL" in err.message and err.line == 2
    assert (
        load_text(
            tmp_path, "customerio:\n  track_endpoint: 'http://127.0.0.1:9/track/'\n"
        ).config.customerio.track_endpoint
        == "http://127.0.0.1:9/track"
    )


def test_type_errors_speak_yaml_not_python(tmp_path):
    err = error_of(tmp_path, "replay:\n  concurrency: lots\n")
    assert "whole number" in err.message and "'lots'" in err.message and "str" not in err.message
    assert "got nothing" in error_of(tmp_path, "send_test:\n  traits:\n").message


def test_replay_rate_zero_means_no_limit(tmp_path):
    assert load_text(tmp_path, "replay: {rate: 0}\n").config.replay.rate == 0


def test_no_credentials_at_all_is_never_ok(tmp_path):
    write_config(tmp_path, "version: 1\n")
    result = run_cli("check-keys", "--offline", "--json", cwd=tmp_path)
    assert result.code == 2 and result.json["ok"] is False
    assert "no credentials" in result.stderr


def test_report_path_and_flag_conflicts_are_checked_before_any_work(tmp_path):
    result = run_cli("--junit", str(tmp_path / "missing" / "r.xml"), "check-keys", "--offline", cwd=tmp_path)
    assert result.code == 2 and "does not exist" in result.stderr
    both = run_cli("--sandbox", "--sandbox-url", "http://127.0.0.1:9", "check-keys", cwd=tmp_path)
    assert both.code == 2 and "not both" in both.stderr
    bogus = run_cli("--json", "lint", "--bogus", "x", cwd=tmp_path)
    assert bogus.code == 2 and bogus.json["error"]["exit_code"] == 2


# --- defaults before validation; offline commands need no secrets; every problem at once ----

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ONBOARDING = str(EXAMPLES / "fixtures" / "onboarding.ndjson")


@pytest.mark.parametrize("config", ["cdpio.yaml", "sandbox.cdpio.yaml"])
def test_offline_commands_work_with_the_shipped_configs_and_no_variables_set(config):
    # The CI recipes point CDPIO_CONFIG at these files; run_cli scrubs every secret.
    env = {"CDPIO_CONFIG": str(EXAMPLES / config)}
    for args in (["lint", ONBOARDING], ["explain", ONBOARDING], ["replay", "--dry-run", ONBOARDING]):
        result = run_cli("--json", *args, env=env)
        assert result.code == 0, (args, result.stderr)
        assert result.json["ok"] is True, args


def test_a_default_applies_before_the_schema_check(tmp_path):
    # ${VAR:-default} is validated as its default, even for a command that
    # does not read the section (lint used to see a placeholder there).
    write_config(
        tmp_path, "segment:\n  write_key: ${WK}\n  region: ${SEG_REGION:-eu}\nlint:\n  disable: ['${RULE:-naming/*}']\n"
    )
    result = run_cli("--json", "lint", ONBOARDING, cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert result.json["summary"]["config"].endswith("cdpio.yaml")
    loaded = load_text(tmp_path, (tmp_path / "cdpio.yaml").read_text(), env={"WK": "k" * 32})
    assert loaded.config.segment.region == "eu" and loaded.config.lint.disable == ["naming/*"]


def test_an_unset_variable_matters_only_to_a_command_that_reads_it(tmp_path):
    write_config(tmp_path, "segment:\n  write_key: ${WK}\nlint:\n  disable: ['${RULE}']\n")
    lint = run_cli("--json", "lint", ONBOARDING, cwd=tmp_path)
    assert lint.code == 2 and "RULE is not set" in lint.json["error"]["message"]
    assert "WK" not in lint.json["error"]["message"]
    dry = run_cli("--json", "replay", "--dry-run", ONBOARDING, cwd=tmp_path)
    assert dry.code == 0, dry.stderr
    offline = run_cli("--json", "check-keys", "--offline", cwd=tmp_path)  # checks the key: needs it
    assert offline.code == 2 and "WK is not set" in offline.json["error"]["message"]


def test_every_problem_is_reported_at_once_with_its_line(tmp_path):
    write_config(
        tmp_path,
        (
            "version: 1\n"  # 1
            "segment:\n"  # 2
            "  write_key: ${WK}\n"  # 3
            "  region: mars\n"  # 4
            "customerio:\n"  # 5
            "  site_idd: x\n"  # 6
            "  track_api_key: ${TK}\n"  # 7
            "replay: {concurrency: lots}\n"  # 8
        ),
    )
    result = run_cli("--json", "check-keys", "--offline", cwd=tmp_path)
    assert result.code == 2
    problems = result.json["error"]["problems"]
    assert [(p["line"], p["message"].split(":")[0]) for p in problems] == [
        (3, "environment variable WK is not set"),
        (4, "segment.region"),
        (6, "unknown key 'customerio.site_idd'"),
        (7, "environment variable TK is not set"),
        (8, "replay.concurrency"),
    ]
    assert "did you mean 'customerio.site_id'" in problems[2]["hint"]
    # Humans get the same list on one stderr line, every line number included.
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "5 problems" in line
    assert all(f"line {n}:" in line for n in (3, 4, 6, 7, 8))


def test_duplicate_key_and_unset_variable_are_reported_together(tmp_path):
    err = error_of(tmp_path, "segment:\n  region: us\n  region: eu\n  write_key: ${WK}\n")
    assert [(p.line, p.message) for p in err.problems] == [
        (3, "key 'region' appears twice"),
        (4, "environment variable WK is not set"),
    ]


@pytest.mark.parametrize(
    "text, line",
    [
        ("version: 1\nreplay: {rate: 10}\nverify: {timeout: ${VERIFY_TIMEOUT:-90s}}\n", 3),
        ("version: 1\nreplay: {\n  rate: 10,\n  timeout: ${REPLAY_TIMEOUT:-10s}\n}\n", 4),
        ("version: 1\nsegment:\n  write_key: ${WK:-a: b}\n", 3),
    ],
)
def test_unquoted_variable_syntax_error_points_at_its_line_and_says_quote_it(tmp_path, text, line):
    err = error_of(tmp_path, text)
    assert err.line == line and err.message.startswith("invalid YAML")
    assert "quote values that contain ${...}" in err.hint
    # A syntax error with no ${...} near it keeps the plain hint.
    plain = error_of(tmp_path, "version: 1\nsegment:\n  region: us\n   write_key: x\n")
    assert plain.line == 4 and "quote" not in plain.hint and "indentation" in plain.hint


def test_lint_config_error_is_a_json_document_with_exit_2(tmp_path):
    write_config(tmp_path, "lint:\n  severity: {naming/key-style: loud}\n")
    result = run_cli("--json", "lint", ONBOARDING, cwd=tmp_path)
    assert result.code == 2 and result.json["ok"] is False
    assert result.json["error"]["problems"][0]["line"] == 2
    assert "lint.severity.naming/key-style" in result.json["error"]["problems"][0]["message"]


def test_a_bad_value_from_the_environment_is_named_by_its_variable_not_shown(tmp_path):
    # The variable may hold a secret pasted into the wrong one.
    err = error_of(tmp_path, 'replay: {rate: "${REPLAY_RATE}"}\n', env={"REPLAY_RATE": "sk_live_0123456789abcdef"})
    assert "replay.rate: must be a number (got the value of REPLAY_RATE)" in err.message
    assert "sk_live" not in err.one_line()


def test_a_new_users_init_config_lints_before_any_secret_is_set(tmp_path):
    assert run_cli("init", cwd=tmp_path).code == 0
    result = run_cli("--json", "lint", ONBOARDING, cwd=tmp_path)
    assert result.code == 0 and result.json["summary"]["config"].endswith("cdpio.yaml"), result.stderr
    send = run_cli("--json", "send-test", cwd=tmp_path)  # talks to the services: needs them
    assert send.code == 2
    assert {p["message"] for p in send.json["error"]["problems"]} == {
        "environment variable SEGMENT_WRITE_KEY is not set",
        "environment variable CUSTOMERIO_SITE_ID is not set",
        "environment variable CUSTOMERIO_TRACK_API_KEY is not set",
    }

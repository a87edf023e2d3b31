"""`cdpio sandbox` in the foreground, as a user runs it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx

from cdpio_cli.sandbox import defaults
from tests.cli_helpers import clean_env


def start(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, str, list[str]]:
    full_env = clean_env(**(env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpio_cli", "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("Ctrl-C"):
            break
    url = re.search(r"listening on (http://\S+)", "".join(lines))
    assert url, "".join(lines)
    return proc, url.group(1), lines


def test_serves_prints_credentials_and_stops_cleanly_on_ctrl_c():
    proc, url, lines = start("--region", "eu", "--throttle", "100", "--seed", "1")
    try:
        banner = "".join(lines)
        for value in (
            defaults.WRITE_KEY,
            defaults.SITE_ID,
            defaults.TRACK_API_KEY,
            defaults.APP_API_KEY,
            defaults.PIPELINES_API_KEY_EU,
            url + "/track-eu",
        ):
            assert value in banner
        assert defaults.PIPELINES_API_KEY not in banner  # an EU workspace gets the pk_eu_ key
        assert "throttle 100 req/s" in banner
        health = httpx.get(url + "/_sandbox/health").json()
        assert health["ok"] and health["region"] == "eu"
        r = httpx.get(url + "/track/api/v1/accounts/region", auth=(defaults.SITE_ID, defaults.TRACK_API_KEY))
        assert r.json()["url"] == url + "/track-eu"
        assert proc.stdout.readable()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == ""  # stdout stays clean


def test_custom_keys_and_non_local_host_warning():
    proc, url, lines = start("--host", "0.0.0.0", "--write-key", "myKey123")
    try:
        assert any(line.startswith("warning: serving on 0.0.0.0") for line in lines)
        url = url.replace("0.0.0.0", "127.0.0.1")
        r = httpx.get(url + "/segment-cdn/v1/projects/myKey123/settings")
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)


def test_bad_flags_are_usage_errors():
    r = subprocess.run(
        [sys.executable, "-m", "cdpio_cli", "sandbox", "--region", "ap"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
    )
    assert r.returncode == 2 and "--region" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "cdpio_cli", "sandbox", "--fail-rate", "3"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
    )
    assert r.returncode == 2


def test_port_in_use_is_a_usage_error(sandbox):
    r = subprocess.run(
        [sys.executable, "-m", "cdpio_cli", "sandbox", "--port", str(sandbox.port)],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
    )
    assert r.returncode == 2 and "cannot listen" in r.stderr


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = clean_env(**(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "cdpio_cli", "sandbox", *args], capture_output=True, text=True, timeout=30, env=full_env
    )


def test_record_path_is_checked_before_listening(tmp_path):
    missing = tmp_path / "no-such-dir" / "x.ndjson"
    r = run("--port", "0", "--record", str(missing))
    assert r.returncode == 2, r.stderr
    assert "--record" in r.stderr and str(missing) in r.stderr and "does not exist" in r.stderr
    assert "cannot listen" not in r.stderr and "Traceback" not in r.stderr
    r = run("--port", "0", "--record", str(tmp_path))
    assert r.returncode == 2 and "--record" in r.stderr and "is a directory" in r.stderr
    assert "cannot listen" not in r.stderr


def test_option_errors_name_the_flag():
    for args, flag in (
        (("--throttle", "0"), "--throttle must be a positive number"),
        (("--latency", "-1"), "--latency must not be negative"),
        (("--fail-status", "42"), "--fail-status must be an HTTP status code"),
    ):
        r = run("--port", "0", *args)
        assert r.returncode == 2 and flag in r.stderr, r.stderr


def test_user_credentials_are_masked_in_the_banner_and_can_come_from_env_vars():
    from cdpio_cli.credentials import mask

    mine = {
        "CDPIO_SANDBOX_WRITE_KEY": "MyOwnSegmentWriteKey42",
        "CDPIO_SANDBOX_SITE_ID": "5e5e5e5e5e5e5e5e5e51",
        "CDPIO_SANDBOX_TRACK_API_KEY": "7a7a7a7a7a7a7a7a7a72",
        "CDPIO_SANDBOX_APP_API_KEY": "abababababababababababababab9993",
        "CDPIO_SANDBOX_PIPELINES_API_KEY": "pk_us_MyOwnPipelinesKey0004",
        "CDPIO_SANDBOX_PUBLIC_API_TOKEN": "sgp_MyOwnPublicApiToken0005",
    }
    proc, url, lines = start("--pipelines-api-key", "pk_us_FromTheFlagWins00006", env=mine)
    try:
        banner = "".join(lines)
        for name, value in mine.items():
            assert value not in banner, name
        assert "pk_us_FromTheFlagWins00006" not in banner
        assert mask("MyOwnSegmentWriteKey42") in banner and mask("pk_us_FromTheFlagWins00006") in banner
        # The sandbox accepts what the environment (or the flag, which wins) says.
        r = httpx.get(url + "/segment-cdn/v1/projects/MyOwnSegmentWriteKey42/settings")
        assert r.status_code == 200
        r = httpx.get(url + "/track/api/v1/accounts/region", auth=("5e5e5e5e5e5e5e5e5e51", "7a7a7a7a7a7a7a7a7a72"))
        assert r.status_code == 200
        r = httpx.post(
            url + "/pipelines/v1/track",
            json={"type": "track", "userId": "u", "event": "E"},
            auth=("pk_us_FromTheFlagWins00006", ""),
            headers={"X-Strict-Mode": "1"},
        )
        assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    help_text = run("--help", env={"COLUMNS": "200"}).stdout
    for name in mine:
        assert name in help_text

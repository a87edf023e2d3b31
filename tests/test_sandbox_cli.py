"""`cdpio sandbox` in the foreground, as a user runs it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx

from cdpio_cli.sandbox import defaults


def start(*args: str) -> tuple[subprocess.Popen, str, list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "cdpio_cli", "sandbox", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        for value in (defaults.WRITE_KEY, defaults.SITE_ID, defaults.TRACK_API_KEY,
                      defaults.APP_API_KEY, defaults.PIPELINES_API_KEY, url + "/track-eu"):
            assert value in banner
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
    assert out == ""            # stdout stays clean


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
    r = subprocess.run([sys.executable, "-m", "cdpio_cli", "sandbox", "--region", "ap"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--region" in r.stderr
    r = subprocess.run([sys.executable, "-m", "cdpio_cli", "sandbox", "--fail-rate", "3"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2


def test_port_in_use_is_a_usage_error(sandbox):
    r = subprocess.run([sys.executable, "-m", "cdpio_cli", "sandbox", "--port", str(sandbox.port)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot listen" in r.stderr

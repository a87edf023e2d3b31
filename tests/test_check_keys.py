"""check-keys against the sandbox over real loopback sockets, as a user runs it."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET

import pytest

from cdpio_cli.sandbox import defaults
from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.runner import EmbeddedSandbox
from tests.cli_helpers import run_cli, write_config

CONFIG = """\
version: 1
segment:
  write_key: ${WK}
  public_api_token: ${TOKEN:-}
  region: ${SEGMENT_REGION:-us}
customerio:
  site_id: ${SID}
  track_api_key: ${TKEY}
  app_api_key: ${AKEY:-}
  pipelines_api_key: ${PKEY:-}
  region: ${REGION:-auto}
"""


def good_env(**overrides):
    env = {
        "WK": defaults.WRITE_KEY,
        "SID": defaults.SITE_ID,
        "TKEY": defaults.TRACK_API_KEY,
        "AKEY": defaults.APP_API_KEY,
        "PKEY": defaults.PIPELINES_API_KEY,
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def us_sandbox():
    with EmbeddedSandbox(SandboxOptions()) as sb:
        yield sb


def check(result, check_id):
    return next(c for c in result.json["checks"] if c["id"] == check_id and c["tier"] == "authenticated")


def run_keys(tmp_path, sb, env, *extra):
    write_config(tmp_path, CONFIG)
    return run_cli("--sandbox-url", sb.url, "--json", "check-keys", *extra, cwd=tmp_path, env=env)


def test_no_config_uses_the_embedded_sandbox_and_passes(tmp_path):
    result = run_cli("check-keys", "--json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "embedded sandbox" in result.stderr
    statuses = {(c["id"], c["tier"]): c["status"] for c in result.json["checks"]}
    assert statuses[("customerio.track", "authenticated")] == "passed"
    assert statuses[("customerio.app", "authenticated")] == "passed"
    assert statuses[("customerio.pipelines", "authenticated")] == "passed"
    assert statuses[("segment.write_key", "authenticated")] == "passed"
    assert result.json["summary"]["customerio_region"] == "us"


def test_every_credential_at_the_right_tier(tmp_path, us_sandbox):
    result = run_keys(tmp_path, us_sandbox, good_env(TOKEN=defaults.PUBLIC_API_TOKEN))
    assert result.code == 0, result.stderr
    track = check(result, "customerio.track")
    assert track["http_status"] == 200 and f"workspace {defaults.WORKSPACE_ID}" in track["message"]
    assert check(result, "segment.write_key")["status"] == "passed"
    assert "unofficial" in check(result, "segment.write_key")["message"]
    assert check(result, "segment.source")["status"] == "passed"
    assert check(result, "segment.destination")["status"] == "passed"
    # Nothing is claimed beyond `authenticated`.
    assert {c["tier"] for c in result.json["checks"]} <= {"format", "authenticated"}


def test_key_with_stray_whitespace_passes_with_a_warning_and_never_leaks(tmp_path, us_sandbox):
    junit = tmp_path / "keys.xml"
    env = good_env(TKEY=defaults.TRACK_API_KEY + "\n", WK=" " + defaults.WRITE_KEY + "\u200b")
    write_config(tmp_path, CONFIG)
    result = run_cli(
        "--sandbox-url", us_sandbox.url, "check-keys", "--json", "--junit", str(junit), cwd=tmp_path, env=env
    )
    assert result.code == 0, result.stderr
    fmt = next(c for c in result.json["checks"] if c["id"] == "customerio.track_api_key")
    assert fmt["status"] == "warning" and "removed a trailing newline" in fmt["message"]
    wk = next(c for c in result.json["checks"] if c["id"] == "segment.write_key" and c["tier"] == "format")
    assert "removed a leading space" in wk["message"] and "zero-width space" in wk["message"]
    assert check(result, "customerio.track")["status"] == "passed"
    text = result.stdout + result.stderr + junit.read_text()
    for secret in (
        defaults.TRACK_API_KEY,
        defaults.WRITE_KEY,
        defaults.SITE_ID,
        defaults.APP_API_KEY,
        defaults.PIPELINES_API_KEY,
    ):
        assert secret not in text
    ET.parse(junit)  # valid XML


def test_wrong_track_credentials_exit_3(tmp_path, us_sandbox):
    result = run_keys(tmp_path, us_sandbox, good_env(TKEY="0" * 20))
    assert result.code == 3
    track = check(result, "customerio.track")
    assert track["status"] == "failed" and track["http_status"] == 401
    assert "Track API Keys" in track["hint"]


def test_wrong_write_key_is_caught_by_the_settings_lookup(tmp_path, us_sandbox):
    result = run_keys(tmp_path, us_sandbox, good_env(WK="x" * 32))
    assert result.code == 3
    wk = check(result, "segment.write_key")
    assert wk["status"] == "failed" and "200" in wk["message"]


def test_wrong_pipelines_key_exit_3(tmp_path, us_sandbox):
    result = run_keys(tmp_path, us_sandbox, good_env(PKEY="pk_us_notTheRightKey000"))
    assert result.code == 3
    assert check(result, "customerio.pipelines")["http_status"] == 401


def test_wrong_app_key_exit_3(tmp_path, us_sandbox):
    result = run_keys(tmp_path, us_sandbox, good_env(AKEY="f" * 32))
    assert result.code == 3
    assert check(result, "customerio.app")["status"] == "failed"


def test_eu_workspace_detected_and_a_wrong_configured_region_fails(tmp_path):
    with EmbeddedSandbox(SandboxOptions(region="eu")) as sb:
        # The sandbox puts its Segment workspace in the same region.
        eu_key = defaults.PIPELINES_API_KEY_EU  # an EU workspace's Pipelines key
        auto = run_keys(tmp_path, sb, good_env(SEGMENT_REGION="eu", PKEY=eu_key))
        assert auto.code == 0, auto.stderr
        assert check(auto, "customerio.region")["details"]["region"] == "eu"
        assert check(auto, "customerio.app")["status"] == "passed"  # asked the EU App host
        pinned = run_keys(tmp_path, sb, good_env(SEGMENT_REGION="eu", REGION="us", PKEY=eu_key))
        assert pinned.code == 1
        region = check(pinned, "customerio.region")
        assert region["status"] == "failed" and "customerio.region: eu" in region["hint"]


def test_destination_not_connected(tmp_path):
    with EmbeddedSandbox(SandboxOptions(segment_destination_enabled=False)) as sb:
        result = run_keys(tmp_path, sb, good_env(TOKEN=defaults.PUBLIC_API_TOKEN))
    assert result.code == 1
    dest = check(result, "segment.destination")
    assert dest["status"] == "failed" and "never reach Customer.io" in dest["message"]


def test_bad_public_api_token_exit_3(tmp_path, us_sandbox):
    result = run_keys(tmp_path, us_sandbox, good_env(TOKEN="sgp_wrong_token_123456"))
    assert result.code == 3
    assert check(result, "segment.public_api_token")["status"] == "failed"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_service_exit_4_and_offline_needs_no_network(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    write_config(tmp_path, CONFIG)
    result = run_cli("--sandbox-url", url, "--json", "check-keys", "--timeout", "2", cwd=tmp_path, env=good_env())
    assert result.code == 4
    assert "could not" in check(result, "customerio.track")["message"]
    assert "Traceback" not in result.stderr
    offline = run_cli("--sandbox-url", url, "check-keys", "--offline", cwd=tmp_path, env=good_env())
    assert offline.code == 0, offline.stderr


def test_eu_customerio_with_a_us_segment_workspace(tmp_path):
    # Segment and Customer.io regions are independent: a common real setup.
    with EmbeddedSandbox(SandboxOptions(region="eu", segment_region="us")) as sb:
        result = run_keys(tmp_path, sb, good_env(TOKEN=defaults.PUBLIC_API_TOKEN, PKEY=defaults.PIPELINES_API_KEY_EU))
    assert result.code == 0, result.stderr
    assert check(result, "customerio.region")["details"]["region"] == "eu"
    assert check(result, "segment.destination")["status"] == "passed"


def test_embedded_sandbox_mirrors_the_configured_regions(tmp_path):
    write_config(tmp_path, "sandbox: {enabled: true, region: eu}\nsegment: {region: us}\n")
    result = run_cli("--json", "send-test", cwd=tmp_path)
    assert result.code == 0, result.stderr
    delivered = [c for c in result.json["checks"] if c["tier"] == "delivered"]
    assert delivered and all(c["status"] == "passed" for c in delivered)


def test_an_unreachable_sandbox_gets_the_sandbox_hint_not_status_pages(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    write_config(tmp_path, CONFIG)
    result = run_cli("--sandbox-url", url, "--json", "check-keys", "--timeout", "1", cwd=tmp_path, env=good_env())
    track = check(result, "customerio.track")
    assert "cdpio sandbox" in track["hint"] and "status.customer.io" not in track["hint"]

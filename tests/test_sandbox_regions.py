"""An EU sandbox advertises and accepts an EU Pipelines key (pk_eu_), so runs
against it do not warn that "the Pipelines key is for the US region"."""

from __future__ import annotations

from cdpio_cli.sandbox import defaults
from cdpio_cli.sandbox.options import SandboxOptions
from tests.cli_helpers import run_cli, write_config


def checks(result) -> dict[str, dict]:
    return {c["id"]: c for c in result.json["checks"]}


def test_options_pick_the_regions_default_pipelines_key():
    assert SandboxOptions().pipelines_api_key == defaults.PIPELINES_API_KEY
    assert SandboxOptions(region="eu").pipelines_api_key == defaults.PIPELINES_API_KEY_EU
    assert SandboxOptions().with_(region="eu").pipelines_api_key == defaults.PIPELINES_API_KEY_EU
    assert SandboxOptions(region="eu").with_(region="us").pipelines_api_key == defaults.PIPELINES_API_KEY
    mine = "pk_us_someoneChoseThisKey01"
    assert SandboxOptions(region="eu", pipelines_api_key=mine).pipelines_api_key == mine


def test_embedded_eu_sandbox_fills_the_eu_pipelines_key(tmp_path):
    write_config(tmp_path, "version: 1\nsandbox: {enabled: true, region: eu}\nsegment: {region: eu}\n")
    result = run_cli("--json", "check-keys", cwd=tmp_path)
    assert result.code == 0, result.stderr
    found = checks(result)
    assert "customerio.pipelines_region" not in found, found.get("customerio.pipelines_region")
    assert "pk_eu_" in found["customerio.pipelines_api_key"]["message"]
    assert found["customerio.pipelines"]["status"] == "passed"


def test_embedded_eu_sandbox_accepts_a_configured_key_as_configured(tmp_path):
    # Even the US default, written into the config: the embedded sandbox
    # accepts the config's credentials exactly.
    write_config(
        tmp_path,
        "version: 1\nsandbox: {enabled: true, region: eu}\nsegment: {region: eu}\n"
        f"customerio: {{pipelines_api_key: {defaults.PIPELINES_API_KEY}}}\n",
    )
    result = run_cli("--json", "check-keys", cwd=tmp_path)
    assert checks(result)["customerio.pipelines"]["status"] == "passed", result.stdout


def test_sandbox_url_uses_the_configs_sandbox_region_for_the_default_key(sandbox_factory, tmp_path):
    sb = sandbox_factory(region="eu")
    write_config(tmp_path, "version: 1\nsandbox: {region: eu}\nsegment: {region: eu}\n")
    result = run_cli("--sandbox-url", sb.url, "--json", "check-keys", cwd=tmp_path)
    assert result.code == 0, result.stderr
    found = checks(result)
    assert "customerio.pipelines_region" not in found
    assert found["customerio.pipelines"]["status"] == "passed"
    # Without a config the sandbox's region is unknown: the US default stays.
    us = sandbox_factory()
    bare = tmp_path / "no-config"
    bare.mkdir()
    plain = run_cli("--sandbox-url", us.url, "--json", "check-keys", cwd=bare)
    assert plain.code == 0, plain.stderr
    assert "pk_us_" in checks(plain)["customerio.pipelines_api_key"]["message"]

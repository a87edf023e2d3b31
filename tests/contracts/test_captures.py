"""`send-test --capture DIR` and the captures kept in tests/contracts/captures/.

A capture from a real workspace is the evidence that settles an UNCONFIRMED
fact (docs/contracts.md): every capture checked in here must hold to the
contract for its kind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdpio_cli.sandbox import defaults
from tests.cli_helpers import run_cli, write_config
from tests.contracts._schemas import capture_problems

CAPTURES = Path(__file__).parent / "captures"


@pytest.mark.parametrize("path", sorted(CAPTURES.glob("*-*.json")), ids=lambda p: p.name)
def test_checked_in_capture_holds_to_the_contract(path):
    assert capture_problems(json.loads(path.read_text())) == []


def test_send_test_capture_writes_every_app_api_response_without_credentials(sandbox, tmp_path):
    # A trait holding the App API key must come back masked: secrets are masked
    # wherever they appear, not only in headers.
    write_config(
        tmp_path,
        f"verify: {{timeout: 5s, poll_interval: 100ms}}\nsend_test: {{traits: {{note: '{defaults.APP_API_KEY}'}}}}\n",
    )
    out = tmp_path / "captures"
    result = run_cli(
        "--sandbox-url",
        sandbox.url,
        "--json",
        "send-test",
        "--route",
        "customerio",
        "--capture",
        str(out),
        cwd=tmp_path,
    )
    assert result.code == 0, result.stderr
    index = json.loads((out / "capture.json").read_text())
    assert index["run_id"] == result.json["run_id"]
    assert result.json["summary"]["capture"]["responses"] == len(index["responses"]) > 0
    assert result.json["summary"]["app_api_polls"] == len(index["responses"])
    kinds = set()
    for name in index["responses"]:
        text = (out / name).read_text()
        for secret in (defaults.APP_API_KEY, defaults.TRACK_API_KEY):
            assert secret not in text, name
        record = json.loads(text)
        kinds.add(record["kind"])
        assert record["response"]["status"] == 200
        assert "authorization" not in {k.lower() for k in record["response"]["headers"]}
        assert record["response"]["headers"].get("content-type", "").startswith("application/json")
        assert capture_problems(record) == [], name
    assert {"attributes", "activities"} <= kinds
    attributes = next(json.loads((out / n).read_text()) for n in index["responses"] if "attributes" in n)
    assert attributes["response"]["body"]["customer"]["attributes"]["note"].startswith("[")


def test_capture_into_a_file_is_a_usage_error(sandbox, tmp_path):
    write_config(tmp_path, "verify: {timeout: 2s, poll_interval: 100ms}\n")
    (tmp_path / "taken").write_text("")
    result = run_cli("--sandbox-url", sandbox.url, "--json", "send-test", "--capture", "taken", cwd=tmp_path)
    assert result.code == 2
    assert result.json["ok"] is False
    assert "--capture taken is a file, not a directory" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr

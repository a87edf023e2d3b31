"""Live contract tests: cdpio against real Segment and Customer.io accounts.

Never part of the default run (pyproject deselects the `live` marker).  Run
them with `pytest -m live` and these variables (docs/contracts.md, "Live
contract tests"):

    CDPIO_LIVE_CUSTOMERIO_APP_API_KEY        required: delivery is read from the App API
    CDPIO_LIVE_SEGMENT_WRITE_KEY             the Segment route
    CDPIO_LIVE_CUSTOMERIO_SITE_ID            \\ the Track API route
    CDPIO_LIVE_CUSTOMERIO_TRACK_API_KEY      /
    CDPIO_LIVE_CUSTOMERIO_PIPELINES_API_KEY  the Pipelines route
    CDPIO_LIVE_CUSTOMERIO_REGION             us | eu | auto (default auto)
    CDPIO_LIVE_SEGMENT_REGION                us | eu (default us)
    CDPIO_LIVE_CAPTURE_DIR                   keep the App API responses here (default: a temp dir)

At least one route must be configured.  Every App API response behind a
verdict is captured and must hold to the contract in tests/contracts/.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli, write_config
from tests.contracts._schemas import capture_problems

pytestmark = pytest.mark.live

VARIABLES = {
    "SEGMENT_WRITE_KEY": "CDPIO_LIVE_SEGMENT_WRITE_KEY",
    "CUSTOMERIO_SITE_ID": "CDPIO_LIVE_CUSTOMERIO_SITE_ID",
    "CUSTOMERIO_TRACK_API_KEY": "CDPIO_LIVE_CUSTOMERIO_TRACK_API_KEY",
    "CUSTOMERIO_APP_API_KEY": "CDPIO_LIVE_CUSTOMERIO_APP_API_KEY",
    "CUSTOMERIO_PIPELINES_API_KEY": "CDPIO_LIVE_CUSTOMERIO_PIPELINES_API_KEY",
    "CUSTOMERIO_REGION": "CDPIO_LIVE_CUSTOMERIO_REGION",
    "SEGMENT_REGION": "CDPIO_LIVE_SEGMENT_REGION",
}
ROUTE_NEEDS = {
    "segment": ["CDPIO_LIVE_SEGMENT_WRITE_KEY"],
    "customerio": ["CDPIO_LIVE_CUSTOMERIO_SITE_ID", "CDPIO_LIVE_CUSTOMERIO_TRACK_API_KEY"],
    "pipelines": ["CDPIO_LIVE_CUSTOMERIO_PIPELINES_API_KEY"],
}

# Every secret comes from the environment, never from this file.
CONFIG = """\
version: 1
segment:
  write_key: ${SEGMENT_WRITE_KEY:-}
  region: ${SEGMENT_REGION:-us}
customerio:
  site_id: ${CUSTOMERIO_SITE_ID:-}
  track_api_key: ${CUSTOMERIO_TRACK_API_KEY:-}
  app_api_key: ${CUSTOMERIO_APP_API_KEY}
  pipelines_api_key: ${CUSTOMERIO_PIPELINES_API_KEY:-}
  region: ${CUSTOMERIO_REGION:-auto}
send_test:
  user_id: "cdpio-live-{run_id}"
  traits: {email: "cdpio-live+{run_id}@example.com", plan_type: Pro}
verify: {timeout: 120s, poll_interval: 3s}
"""


def _routes() -> list[str]:
    return [r for r, needs in ROUTE_NEEDS.items() if all(os.environ.get(v) for v in needs)]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """(workdir, env) for the CLI, or a skip that names what is missing."""
    if not os.environ.get("CDPIO_LIVE_CUSTOMERIO_APP_API_KEY"):
        pytest.skip(
            "live contract tests need CDPIO_LIVE_CUSTOMERIO_APP_API_KEY (delivery is read from "
            "Customer.io's App API) and the keys of at least one route; see docs/contracts.md"
        )
    if not _routes():
        pytest.skip(
            "live contract tests need the keys of at least one route: CDPIO_LIVE_SEGMENT_WRITE_KEY, "
            "CDPIO_LIVE_CUSTOMERIO_SITE_ID + CDPIO_LIVE_CUSTOMERIO_TRACK_API_KEY, or "
            "CDPIO_LIVE_CUSTOMERIO_PIPELINES_API_KEY"
        )
    workdir = tmp_path_factory.mktemp("live")
    write_config(workdir, CONFIG)
    env = {name: os.environ[live_name] for name, live_name in VARIABLES.items() if os.environ.get(live_name)}
    return workdir, env


def _capture_dir(workdir: Path, name: str) -> Path:
    root = Path(os.environ.get("CDPIO_LIVE_CAPTURE_DIR") or workdir / "captures")
    root.mkdir(parents=True, exist_ok=True)
    return root / name


def _assert_captures_hold(directory: Path) -> None:
    index = json.loads((directory / "capture.json").read_text())
    assert index["responses"], "no App API response was captured"
    broken = {}
    for name in index["responses"]:
        found = capture_problems(json.loads((directory / name).read_text()))
        if found:
            broken[name] = found
    assert broken == {}, f"the real App API broke the contract (files in {directory}): {broken}"


def test_check_keys(live):
    workdir, env = live
    result = run_cli("--json", "check-keys", cwd=workdir, env=env, timeout=120)
    assert result.code == 0, result.output
    assert all(c["status"] != "failed" for c in result.json["checks"]), result.json["checks"]


def test_send_test_proves_delivery_on_every_route(live):
    workdir, env = live
    captures = _capture_dir(workdir, "per-run-person")
    result = run_cli("--json", "send-test", "--verify", "--capture", str(captures), cwd=workdir, env=env, timeout=400)
    assert result.code == 0, result.output
    for route in _routes():
        delivery = next(c for c in result.json["checks"] if c["id"] == f"{route}.delivery")
        assert delivery["status"] == "passed", delivery
        assert delivery["details"]["evidence"], delivery
    _assert_captures_hold(captures)
    # `cdpio verify` finds what send-test sent, by name only.
    route = _routes()[0]
    user_id = result.json["summary"]["routes"][route]["user_id"]
    found = run_cli(
        "--json",
        "verify",
        "--user-id",
        user_id,
        "--trait",
        "plan_type=Pro",
        "--event",
        "Signed Up",
        "--within",
        "120s",
        cwd=workdir,
        env=env,
        timeout=200,
    )
    assert found.code == 0, found.output


def test_send_test_on_a_fixed_user_proves_delivery_by_time(live):
    # A fixed user id: only activities newer than this run's first send count.
    workdir, env = live
    route = _routes()[0]
    captures = _capture_dir(workdir, "fixed-user")
    result = run_cli(
        "--json",
        "send-test",
        "--verify",
        "--route",
        route,
        "--user-id",
        "cdpio-live-fixed-user",
        "--capture",
        str(captures),
        cwd=workdir,
        env=env,
        timeout=400,
    )
    assert result.code == 0, result.output
    delivery = next(c for c in result.json["checks"] if c["id"] == f"{route}.delivery")
    assert delivery["status"] == "passed", delivery
    assert set(delivery["details"]["evidence"]) <= {
        "newer than this run's first send",
        "tagged with this run's cdpio_run_id",
    }
    _assert_captures_hold(captures)

"""A route declared only through the registry reaches every consumer.

The dummy route below is registered with `registry.register(...)` and nothing
else: a Segment-shaped route with its own cdpio.yaml section (`dummy:`) and
credential, sending to the sandbox's Segment Tracking API.  Config validation,
settings, send-test, check-keys and replay's `build_sender` must all know it;
any of them still holding its own list of routes fails here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from cdpio_cli.config import load_config
from cdpio_cli.errors import ConfigError, UsageError
from cdpio_cli.keys import check_keys
from cdpio_cli.results import Status
from cdpio_cli.routes import endpoints, registry
from cdpio_cli.routes.registry import Capabilities, CredentialSpec, RouteSpec, SendOne, SendTestText
from cdpio_cli.routes.segment import SegmentStyleRoute, send_single
from cdpio_cli.sandbox import defaults
from cdpio_cli.sendtest import SendTestOptions, run_send_test
from cdpio_cli.settings import build_settings
from cdpio_cli.transport import Outcome

TITLE = "Dummy Tracking API"
WRITE_KEY = CredentialSpec("dummy.write_key", "Dummy write key", "DUMMY_WRITE_KEY", sandbox_option="write_key")


@dataclasses.dataclass
class DummyConfig:  # a section's schema is its annotated fields (cdpio_cli/config_schema.py)
    write_key: str | None = None
    endpoint: str | None = None  # base URL override (Settings.endpoint reads it)


class DummyRoute(SegmentStyleRoute):
    name = "dummy"


def _build(base_url: str, credentials: Mapping[str, str], batch_size: int, strict: bool) -> DummyRoute:
    return DummyRoute(base_url, credentials[WRITE_KEY.field], batch_size=batch_size)


def _send_one(send: SendOne, msg: dict[str, Any]) -> Outcome:
    route = DummyRoute(send.base_url, send.credentials[WRITE_KEY.field])
    return send_single(route, send.client, msg, policy=send.policy, deadline=send.deadline)


DUMMY = RouteSpec(
    name="dummy",
    title=TITLE,
    credentials=(WRITE_KEY,),
    service="segment",
    build=_build,
    send_one=_send_one,
    capabilities=Capabilities(batching=True, destination_subscriptions=True),
    config_section=("dummy", DummyConfig),
    send_test=SendTestText(accepted="{status} accepted by the dummy route", rejected_fix="check dummy.write_key"),
)


@pytest.fixture
def dummy() -> Iterator[RouteSpec]:
    registry.register(DUMMY)
    try:
        yield DUMMY
    finally:
        registry.unregister(DUMMY.name)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cdpio.yaml"
    path.write_text("version: 1\n" + text)
    return path


def test_registered_route_is_listed_after_the_built_ins(dummy):
    assert registry.route_names() == ("segment", "customerio", "pipelines", "dummy")
    assert registry.get("dummy") is dummy
    assert registry.credential("dummy.write_key") == WRITE_KEY


def test_config_accepts_the_route_and_its_section(dummy, tmp_path):
    path = _config(tmp_path, "dummy:\n  write_key: abc123\nsend_test:\n  routes: [dummy]\nreplay:\n  route: dummy\n")
    cfg = load_config(path).config
    assert cfg.send_test.routes == ["dummy"]
    assert cfg.replay.route == "dummy"
    assert cfg.dummy.write_key == "abc123"


def test_config_rejects_an_unknown_route_naming_every_registered_one(dummy, tmp_path):
    path = _config(tmp_path, "send_test:\n  routes: [dumy]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "send_test.routes.0: must be 'segment', 'customerio', 'pipelines' or 'dummy'" in str(caught.value)


def test_without_registration_the_route_and_section_are_unknown(tmp_path):
    path = _config(tmp_path, "dummy:\n  write_key: abc123\nsend_test:\n  routes: [dummy]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "unknown key 'dummy'" in text
    assert "must be 'segment', 'customerio' or 'pipelines'" in text


def test_send_test_sends_through_the_route_and_proves_delivery(dummy, sandbox, tmp_path):
    path = _config(tmp_path, "send_test:\n  routes: [dummy]\nverify: {timeout: 20s, poll_interval: 100ms}\n")
    settings = build_settings(str(path), sandbox_url=sandbox.url)
    # The credential is the sandbox's default Segment write key (sandbox_option).
    assert settings.credentials["dummy.write_key"].value == defaults.WRITE_KEY
    said: list[str] = []
    report = run_send_test(settings, SendTestOptions(), progress=said.append)
    assert f"sending through {TITLE}" in said
    accepted = [c for c in report.checks if c.route == "dummy" and c.tier == "accepted"]
    assert [c.id for c in accepted][:2] == ["dummy.identify", "dummy.track Signed Up"]
    assert all(c.status == Status.PASSED and c.message.startswith("200 accepted by the dummy route") for c in accepted)
    delivery = next(c for c in report.checks if c.id == "dummy.delivery")
    assert delivery.status == Status.PASSED, delivery.message
    assert {c.route for c in report.checks if c.tier in ("accepted", "delivered")} == {"dummy"}
    assert set(report.summary["routes"]) == {"dummy"}
    paths = [r["path"] for r in httpx.get(sandbox.url + "/_sandbox/requests").json()["requests"]]
    assert "/segment/v1/identify" in paths  # the sandbox's Segment Tracking API, the route's service


def test_check_keys_lists_the_route_credential(dummy, tmp_path):
    path = _config(tmp_path, "dummy:\n  write_key: ${DUMMY_WRITE_KEY:-}\n")
    report = check_keys(build_settings(str(path)), offline=True)
    check = next(c for c in report.checks if c.id == "dummy.write_key")
    assert check.route == "dummy" and check.status == Status.SKIPPED
    assert check.hint == "set dummy.write_key in cdpio.yaml (e.g. ${DUMMY_WRITE_KEY})"

    path = _config(tmp_path, "dummy:\n  write_key: abcdefghijklmnopqrstuvwxyz123456\n")
    report = check_keys(build_settings(str(path)), offline=True)
    check = next(c for c in report.checks if c.id == "dummy.write_key")
    assert check.status == Status.PASSED and "abcdefghij" not in check.message


def test_build_sender_builds_the_route_or_names_the_missing_field(dummy):
    sender = registry.build_sender("dummy", "http://127.0.0.1:1", {"dummy.write_key": "k" * 20}, batch_size=7)
    assert isinstance(sender, DummyRoute) and sender.batch_size == 7
    with pytest.raises(UsageError) as caught:
        registry.build_sender("dummy", "http://127.0.0.1:1", {"segment.write_key": "k" * 20})
    assert caught.value.message == "the dummy route needs a Dummy write key"
    assert caught.value.hint == "set dummy.write_key in cdpio.yaml (or use --sandbox)"


def test_replay_sends_through_the_route(dummy, sandbox, tmp_path):
    from cdpio_cli.replay import ReplayOptions, replay, route_from_settings

    src = tmp_path / "in.ndjson"
    src.write_text("".join(f'{{"type": "track", "userId": "u{i}", "event": "Dummy Event"}}\n' for i in range(25)))
    settings = build_settings(str(_config(tmp_path, "replay:\n  route: dummy\n")), sandbox_url=sandbox.url)
    route = route_from_settings(settings, settings.config.replay.route, 10, dry_run=False)
    assert isinstance(route, DummyRoute)
    result = replay([str(src)], route, ReplayOptions(rate=None, concurrency=2))
    assert (result.read, result.accepted, result.failed) == (25, 25, 0)
    paths = [r["path"] for r in httpx.get(sandbox.url + "/_sandbox/requests").json()["requests"]]
    assert paths.count("/segment/v1/batch") == 3  # 25 messages in batches of 10


def test_a_route_may_bring_its_own_service(dummy, sandbox, tmp_path, monkeypatch):
    # A new API: its real hosts and sandbox prefixes are declared by the route
    # module itself (here the sandbox's Segment ingest stands in for it).
    monkeypatch.setattr(endpoints, "REAL_ENDPOINTS", dict(endpoints.REAL_ENDPOINTS))
    monkeypatch.setattr(endpoints, "SANDBOX_PREFIXES", dict(endpoints.SANDBOX_PREFIXES))
    endpoints.add_service(
        "dummy_api",
        real={"us": "https://api.dummy.example", "eu": "https://eu.api.dummy.example"},
        sandbox={"us": "/segment", "eu": "/segment-eu"},
    )
    registry.unregister(DUMMY.name)
    registry.register(dataclasses.replace(DUMMY, service="dummy_api"))

    path = _config(tmp_path, "send_test:\n  routes: [dummy]\nverify: {timeout: 20s, poll_interval: 100ms}\n")
    settings = build_settings(str(path), sandbox_url=sandbox.url)
    assert settings.endpoint("dummy_api") == sandbox.url + "/segment"
    report = run_send_test(settings, SendTestOptions())
    delivery = next(c for c in report.checks if c.id == "dummy.delivery")
    assert delivery.status == Status.PASSED, delivery.message

    real = build_settings(str(_config(tmp_path, "dummy:\n  write_key: abc\n")))
    assert real.endpoint("dummy_api", "eu") == "https://eu.api.dummy.example"
    moved = build_settings(str(_config(tmp_path, "dummy:\n  write_key: abc\n  endpoint: http://127.0.0.1:9/x/\n")))
    assert moved.endpoint("dummy_api") == "http://127.0.0.1:9/x"


def test_a_service_is_declared_once_per_region(monkeypatch):
    monkeypatch.setattr(endpoints, "REAL_ENDPOINTS", dict(endpoints.REAL_ENDPOINTS))
    monkeypatch.setattr(endpoints, "SANDBOX_PREFIXES", dict(endpoints.SANDBOX_PREFIXES))
    with pytest.raises(ValueError, match="a URL for each of us, eu"):
        endpoints.add_service("half", real={"us": "https://a.example"}, sandbox={"us": "/a", "eu": "/a-eu"})
    with pytest.raises(ValueError, match="already declared"):
        endpoints.add_service("segment", real={"us": "https://x", "eu": "https://y"}, sandbox={"us": "/s", "eu": "/s"})

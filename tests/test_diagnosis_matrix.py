"""The diagnosis matrix: broken Segment -> Customer.io setups, each run through
send-test and doctor against the sandbox, each asserting from the JSON report:

- the verdict (exit code) and the first failing check and tier;
- the cause id on that check and the fact it rests on;
- that no cause the run's facts rule out appears anywhere in the report.

The commands run in-process (the same core and the same JSON the CLI prints);
one test runs the real CLI to prove `--json` carries the causes.  A last test
applies every config fix cdpio suggests and checks the setup then passes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest
import yaml

from cdpio_cli import doctor, mapping, sendtest
from cdpio_cli.results import render_json
from cdpio_cli.routes.endpoints import SANDBOX_PREFIXES
from cdpio_cli.sandbox import defaults
from cdpio_cli.sandbox.options import SandboxOptions
from cdpio_cli.sandbox.runner import EmbeddedSandbox
from cdpio_cli.settings import build_settings
from tests.cli_helpers import run_cli

# Delivery in the sandbox is immediate: a short wait is enough to call it missing.  Not shorter:
# each request may take max(1 s, the wait) and the whole command the wait plus two of those, and
# on a loaded CI machine (three workers on two cores, sandboxes in-process) 500 ms once failed a
# doctor run's Customer.io check with exit 4 where 1 was expected (not reproduced alone or loaded).
FAST = {"verify": {"timeout": "1500ms", "poll_interval": "50ms"}}
OTHER_SITE = "c0ffee00000000000fff"


@dataclass
class Expect:
    code: int
    check: str  # the first failing check
    tier: str
    cause: str | None = None  # the first cause on it
    fact: str | None = None
    ruled_out: tuple[str, ...] = ()


@dataclass
class Case:
    name: str
    sandbox: dict = field(default_factory=dict)  # SandboxOptions overrides
    config: dict = field(default_factory=dict)  # merged into the config
    direct: bool = False  # explicit credentials + endpoints (no sandbox defaults, no token)
    token: bool = True  # direct only: configure the Public API token
    segment_region: str = "us"  # direct only: configured segment.region (its endpoints follow it)
    routes: list[str] | None = None
    send_test: Expect | None = None
    doctor: Expect | None = None
    setup: Callable | None = None  # prepare the sandbox (e.g. a person already there)
    elsewhere: str | None = None  # direct only: this service ("app", "pipelines") is another workspace's
    cdn_down: bool = False  # direct only: the settings lookup cannot be reached
    anonymous_flow: bool = False  # send-test --anonymous-flow


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _direct(sb, case: Case, other_url: str | None) -> dict:
    """A config for real accounts whose endpoints are the sandbox's: nothing is
    filled in by cdpio, so a missing Public API token stays missing."""
    p, seg = SANDBOX_PREFIXES, case.segment_region
    cio = sb.options.region
    segment = {
        "region": seg,
        "write_key": defaults.WRITE_KEY,
        "endpoint": sb.url + p["segment"][seg],
        "cdn_endpoint": (_closed_port_url() if case.cdn_down else sb.url) + p["segment_cdn"]["us"],
        "public_api_endpoint": sb.url + p["segment_api"][seg],
    }
    if case.token:
        segment["public_api_token"] = defaults.PUBLIC_API_TOKEN
    return {
        "segment": segment,
        "customerio": {
            "region": cio,
            "site_id": defaults.SITE_ID,
            "track_api_key": defaults.TRACK_API_KEY,
            "app_api_key": defaults.APP_API_KEY,
            "pipelines_api_key": defaults.pipelines_api_key(cio),
            "track_endpoint": sb.url + p["track"][cio],
            "app_endpoint": (other_url if case.elsewhere == "app" else sb.url) + p["app"][cio],
            "pipelines_endpoint": (other_url if case.elsewhere == "pipelines" else sb.url) + p["pipelines"][cio],
        },
    }


class Setup:
    """One case's running sandbox(es) and config."""

    def __init__(self, case: Case, tmp_path: Path, sandbox: Callable[..., EmbeddedSandbox]):
        self.case = case
        self.tmp_path = tmp_path
        self.sb = sandbox(case.sandbox)
        other_url = sandbox(case.sandbox, "another workspace").url if case.elsewhere else None
        base = _direct(self.sb, case, other_url) if case.direct else {"sandbox": {"region": self.sb.options.region}}
        self.config = _merge(_merge(FAST, base), case.config)
        if case.setup:
            case.setup(self.sb)

    def run(self, command: str, config: dict | None = None) -> dict:
        path = self.tmp_path / "cdpio.yaml"
        path.write_text(yaml.safe_dump(config or self.config), encoding="utf-8")
        settings = build_settings(str(path), sandbox_url=None if self.case.direct else self.sb.url)
        if command == "send-test":
            report = sendtest.run_send_test(
                settings, sendtest.SendTestOptions(routes=self.case.routes, anonymous_flow=self.case.anonymous_flow)
            )
        else:
            report = doctor.run_doctor(settings)
        return json.loads(render_json(report))


def first_failed(doc: dict) -> dict | None:
    return next((c for c in doc["checks"] if c["status"] == "failed"), None)


def all_causes(doc: dict) -> list[dict]:
    return [cause for c in doc["checks"] for cause in (c.get("details") or {}).get("causes", [])]


def assert_expected(doc: dict, expect: Expect) -> None:
    failed = first_failed(doc)
    assert failed is not None, "the run passed"
    assert (doc["exit_code"], failed["id"], failed["tier"]) == (expect.code, expect.check, expect.tier), failed
    causes = failed.get("details", {}).get("causes", [])
    if expect.cause is None:
        assert causes == [], causes
    else:
        assert causes, failed
        assert (causes[0]["id"], causes[0]["fact"]) == (expect.cause, expect.fact), causes
        assert causes[0]["fix"] in failed["hint"]
        # The fact it rests on is one this run really established.
        assert expect.fact in {f["id"] for f in doc["summary"]["diagnosis"]["facts"]}
    named = {c["id"] for c in all_causes(doc)}
    assert not named & set(expect.ruled_out), (named & set(expect.ruled_out), all_causes(doc))


def _people_with_email(email: str) -> Callable:
    """Other people already own the email (send-test and doctor tag it per route when they
    send on several routes: `taken+segment@...`)."""
    local, _, domain = email.partition("@")

    def setup(sb):
        for n, owned in enumerate([email] + [f"{local}+{r}@{domain}" for r in ("segment", "customerio")]):
            r = httpx.put(
                f"{sb.url}/track/api/v1/customers/someone-else-{n}",
                json={"email": owned},
                auth=(defaults.SITE_ID, defaults.TRACK_API_KEY),
            )
            assert r.status_code == 200, r.text

    return setup


SEGMENT_GUESSES = (
    "segment.write_key_unknown",
    "segment.destination_not_connected",
    "segment.region_mismatch",
    "segment.destination_other_workspace",
)
ANON_EVENTS = {
    "send_test": {
        "events": [{"type": "track", "event": "Viewed Pricing", "anonymousId": "anon-never-identified", "userId": None}]
    }
}

# The workspace's own subscriptions: Track Event edited to take only "Order Completed"
# (the test's "Signed Up" is excluded), Track Page View disabled.
EDITED = tuple(
    replace(s, trigger='type = "track" and event = "Order Completed"')
    if s.action == "trackEvent"
    else replace(s, enabled=False)
    if s.action == "trackPageView"
    else s
    for s in mapping.DEFAULT_SUBSCRIPTIONS
)
EDITED_CONFIG = {
    "customerio": {
        "subscriptions": [
            {"action": s.action, "name": s.name, "trigger": s.trigger, "enabled": s.enabled} for s in EDITED
        ]
    }
}
ONLY_SIGNED_UP = {"send_test": {"events": [{"type": "track", "event": "Signed Up"}]}}
ONLY_PAGE = {
    "send_test": {"events": [{"type": "page", "name": "Pricing", "properties": {"url": "https://example.com/pricing"}}]}
}
SUBSCRIPTION_GUESSES = SEGMENT_GUESSES + (
    "mapping.dropped",
    "destination.event_subscription",
    "segment.destination_drops",
)

CASES = [
    Case(
        "segment_eu_config_us_no_token",
        sandbox={"segment_region": "eu"},
        direct=True,
        token=False,
        send_test=Expect(
            1,
            "segment.delivery",
            "delivered",
            "segment.region_mismatch",
            "segment.region.differs",
            ("segment.write_key_unknown", "segment.destination_not_connected"),
        ),
        doctor=Expect(
            1,
            "segment.region",
            "authenticated",
            "segment.region_mismatch",
            "segment.region.differs",
            ("segment.write_key_unknown", "segment.destination_not_connected"),
        ),
    ),
    Case(
        "segment_eu_config_us_with_token",
        sandbox={"segment_region": "eu"},
        send_test=Expect(
            1,
            "segment.delivery",
            "delivered",
            "segment.region_mismatch",
            "segment.region.differs",
            ("segment.public_api_token_rejected", "segment.write_key_unknown"),
        ),
        doctor=Expect(
            1,
            "segment.region",
            "authenticated",
            "segment.region_mismatch",
            "segment.region.differs",
            ("segment.public_api_token_rejected", "segment.write_key_unknown"),
        ),
    ),
    Case(
        "customerio_region_mismatch",
        sandbox={"region": "eu", "segment_region": "us"},
        config={"customerio": {"region": "us"}},
        send_test=Expect(
            1,
            "customerio.region",
            "authenticated",
            "customerio.region_mismatch",
            "customerio.region.differs",
            ("customerio.app_rejected", "customerio.track_rejected"),
        ),
        doctor=Expect(
            1,
            "customerio.region",
            "authenticated",
            "customerio.region_mismatch",
            "customerio.region.differs",
            ("customerio.app_rejected",),
        ),
    ),
    Case(
        "wrong_write_key_with_token",
        sandbox={"write_key": "theRealSourceKey0000000000000099"},
        send_test=Expect(
            1,
            "segment.delivery",
            "delivered",
            "segment.write_key_unknown",
            "segment.lookup.unknown",
            ("segment.destination_not_connected", "segment.region_mismatch"),
        ),
        doctor=Expect(
            3,
            "segment.write_key",
            "authenticated",
            "segment.write_key_unknown",
            "segment.lookup.unknown",
            ("segment.destination_not_connected",),
        ),
    ),
    Case(
        "wrong_write_key_no_token",
        sandbox={"write_key": "theRealSourceKey0000000000000099"},
        direct=True,
        token=False,
        send_test=Expect(
            1,
            "segment.delivery",
            "delivered",
            "segment.write_key_unknown",
            "segment.lookup.unknown",
            ("segment.destination_not_connected", "segment.region_mismatch"),
        ),
        doctor=Expect(
            3,
            "segment.write_key",
            "authenticated",
            "segment.write_key_unknown",
            "segment.lookup.unknown",
            ("segment.destination_not_connected",),
        ),
    ),
    Case(
        "wrong_write_key_settings_lookup_down",
        sandbox={"write_key": "theRealSourceKey0000000000000099"},
        direct=True,
        token=False,
        cdn_down=True,
        send_test=Expect(
            1,
            "segment.delivery",
            "delivered",
            "segment.write_key_unknown",
            "segment.person_missing",
            ("sandbox.not_running", "segment.public_api_token_rejected"),
        ),
        doctor=Expect(
            1,
            "segment.delivered",
            "delivered",
            "segment.write_key_unknown",
            "segment.person_missing",
            ("sandbox.not_running",),
        ),
    ),
    Case(
        "destination_not_connected",
        sandbox={"segment_destination_enabled": False},
        send_test=Expect(
            1,
            "segment.delivery",
            "delivered",
            "segment.destination_not_connected",
            "segment.destination.missing",
            ("segment.write_key_unknown", "segment.region_mismatch"),
        ),
        doctor=Expect(
            1,
            "segment.destination",
            "authenticated",
            "segment.destination_not_connected",
            "segment.destination.missing",
            ("segment.write_key_unknown",),
        ),
    ),
    Case(
        "destination_not_connected_no_token",
        sandbox={"segment_destination_enabled": False},
        direct=True,
        token=False,
        send_test=Expect(
            1,
            "segment.delivery",
            "delivered",
            "segment.destination_not_connected",
            "segment.lookup.no_destination",
            ("segment.write_key_unknown", "segment.region_mismatch"),
        ),
        doctor=Expect(
            1,
            "segment.delivered",
            "delivered",
            "segment.destination_not_connected",
            "segment.lookup.no_destination",
            ("segment.write_key_unknown",),
        ),
    ),
    Case(
        "destination_writes_to_another_workspace",
        sandbox={"segment_destination_site_id": OTHER_SITE},
        send_test=Expect(
            1,
            "segment.delivery",
            "delivered",
            "segment.destination_other_workspace",
            "segment.destination.site_differs",
            ("segment.write_key_unknown", "segment.destination_not_connected", "segment.region_mismatch"),
        ),
        doctor=Expect(
            1,
            "segment.delivered",
            "delivered",
            "segment.destination_other_workspace",
            "segment.destination.site_differs",
            ("segment.write_key_unknown", "segment.destination_not_connected"),
        ),
    ),
    Case(
        "wrong_track_key",
        sandbox={"track_api_key": "1234567890abcdef1234"},
        send_test=Expect(
            3,
            "customerio.track",
            "authenticated",
            "customerio.track_rejected",
            "customerio.track.rejected",
            ("sandbox.not_running",),
        ),
        doctor=Expect(
            3,
            "customerio.track",
            "authenticated",
            "customerio.track_rejected",
            "customerio.track.rejected",
            ("sandbox.not_running",),
        ),
    ),
    Case(
        "wrong_site_id",
        sandbox={"site_id": "1234567890abcdef1234"},
        send_test=Expect(
            3, "customerio.track", "authenticated", "customerio.track_rejected", "customerio.track.rejected"
        ),
        doctor=Expect(3, "customerio.track", "authenticated", "customerio.track_rejected", "customerio.track.rejected"),
    ),
    Case(
        "wrong_app_key",
        sandbox={"app_api_key": "0123456789abcdef0123456789abcdef"},
        send_test=Expect(
            3,
            "customerio.app",
            "authenticated",
            "customerio.app_rejected",
            "customerio.app.rejected",
            ("customerio.region_mismatch",),
        ),
        doctor=Expect(
            3,
            "customerio.app",
            "authenticated",
            "customerio.app_rejected",
            "customerio.app.rejected",
            ("customerio.region_mismatch",),
        ),
    ),
    Case(
        "app_key_from_another_workspace",
        direct=True,
        elsewhere="app",
        routes=["customerio"],
        send_test=Expect(
            1,
            "customerio.delivery",
            "delivered",
            "customerio.app_other_workspace",
            "customerio.person_missing",
            ("customerio.track_rejected", "customerio.app_rejected"),
        ),
        doctor=Expect(
            1,
            "customerio.delivered",
            "delivered",
            "customerio.app_other_workspace",
            "customerio.person_missing",
            ("customerio.track_rejected", "customerio.app_rejected"),
        ),
    ),
    Case(
        "pipelines_key_from_another_workspace",
        direct=True,
        elsewhere="pipelines",
        routes=["pipelines"],
        send_test=Expect(
            1,
            "pipelines.delivery",
            "delivered",
            "pipelines.other_workspace",
            "pipelines.person_missing",
            ("pipelines.key_rejected", "customerio.app_other_workspace"),
        ),
    ),
    # Customer.io in the EU, Segment in the US, both configured right: the two regions are never
    # compared, so no Segment region advice (it would break a working config).
    Case(
        "customerio_eu_segment_us_destination_not_connected",
        sandbox={"region": "eu", "segment_region": "us", "segment_destination_enabled": False},
        direct=True,
        token=False,
        send_test=Expect(
            1,
            "segment.delivery",
            "delivered",
            "segment.destination_not_connected",
            "segment.lookup.no_destination",
            ("segment.region_mismatch", "customerio.region_mismatch"),
        ),
        doctor=Expect(
            1,
            "segment.delivered",
            "delivered",
            "segment.destination_not_connected",
            "segment.lookup.no_destination",
            ("segment.region_mismatch", "customerio.region_mismatch"),
        ),
    ),
    Case(
        "wrong_pipelines_key",
        sandbox={"pipelines_api_key": "pk_us_someOtherPipelinesKey0002"},
        routes=["pipelines"],
        send_test=Expect(
            3,
            "pipelines.identify",
            "accepted",
            "pipelines.key_rejected",
            "pipelines.key.rejected",
            ("customerio.region_mismatch",),
        ),
        doctor=Expect(
            3,
            "customerio.pipelines",
            "authenticated",
            "pipelines.key_rejected",
            "pipelines.key.rejected",
            ("customerio.region_mismatch",),
        ),
    ),
    Case(
        "page_without_url",
        routes=["customerio"],
        config={"send_test": {"events": [{"type": "page", "name": "Pricing"}]}},
        send_test=Expect(
            1,
            "customerio.page Pricing",
            "delivered",
            "mapping.dropped",
            "customerio.mapping_drop",
            ("customerio.app_other_workspace",),
        ),
    ),
    Case(
        "application_installed_without_token",
        routes=["segment"],
        config={"send_test": {"events": [{"type": "track", "event": "Application Installed"}]}},
        send_test=Expect(
            1,
            "segment.track Application Installed",
            "delivered",
            "mapping.dropped",
            "segment.mapping_drop",
            SEGMENT_GUESSES,
        ),
    ),
    Case(
        "track_event_subscription_excludes_the_event",
        routes=["segment"],
        sandbox={"subscriptions": EDITED},
        config=_merge(EDITED_CONFIG, ONLY_SIGNED_UP),
        send_test=Expect(
            1,
            "segment.track Signed Up",
            "delivered",
            "destination.subscription_excludes_event",
            "destination.subscription_excludes",
            SUBSCRIPTION_GUESSES,
        ),
        doctor=Expect(
            1,
            "segment.subscriptions",
            "mapping",
            "destination.subscription_excludes_event",
            "destination.subscription_excludes",
            SUBSCRIPTION_GUESSES,
        ),
    ),
    # No customerio.subscriptions: doctor reads them through the Public API with your token.
    Case(
        "subscription_excludes_the_event_read_through_the_public_api",
        routes=["segment"],
        direct=True,
        sandbox={"subscriptions": EDITED},
        config=ONLY_SIGNED_UP,
        doctor=Expect(
            1,
            "segment.subscriptions",
            "mapping",
            "destination.subscription_excludes_event",
            "destination.subscription_excludes",
            SUBSCRIPTION_GUESSES,
        ),
    ),
    Case(
        "page_subscription_disabled",
        routes=["segment"],
        sandbox={"subscriptions": EDITED},
        config=_merge(EDITED_CONFIG, ONLY_PAGE),
        send_test=Expect(
            1,
            "segment.page Pricing",
            "delivered",
            "destination.subscription_disabled",
            "destination.subscription_disabled",
            SUBSCRIPTION_GUESSES + ("destination.subscription_excludes_event",),
        ),
        doctor=Expect(
            1,
            "segment.subscriptions",
            "mapping",
            "destination.subscription_disabled",
            "destination.subscription_disabled",
            SUBSCRIPTION_GUESSES + ("destination.subscription_excludes_event",),
        ),
    ),
    Case(
        "anonymous_event_never_identified",
        config=ANON_EVENTS,
        routes=["segment"],
        send_test=Expect(
            1,
            "segment.delivery",
            "delivered",
            "plan.anonymous_never_identified",
            "segment.event_anonymous",
            SEGMENT_GUESSES + ("destination.event_subscription",),
        ),
        doctor=Expect(
            1,
            "segment.delivered",
            "delivered",
            "plan.anonymous_never_identified",
            "segment.event_anonymous",
            SEGMENT_GUESSES + ("destination.event_subscription",),
        ),
    ),
    Case(
        "attribute_conflict",
        routes=["customerio"],
        setup=_people_with_email("taken@example.com"),
        config={"send_test": {"traits": {"email": "taken@example.com", "plan_type": "Pro"}}},
        send_test=Expect(
            1,
            "customerio.delivery",
            "delivered",
            "customerio.attribute_update_failed",
            "customerio.attribute_failed",
            ("customerio.app_other_workspace", "customerio.track_rejected", "destination.identify_subscription"),
        ),
        doctor=Expect(
            1,
            "traits",
            "delivered",
            "customerio.attribute_update_failed",
            "segment.attribute_failed",
            ("destination.identify_subscription",),
        ),
    ),
    Case(
        "service_answers_503",
        sandbox={"fail_rate": 1.0, "fail_status": 503},
        routes=["customerio"],
        send_test=Expect(
            4,
            "customerio.track",
            "authenticated",
            "service.error_5xx",
            "service.error_5xx",
            ("sandbox.not_running", "customerio.track_rejected"),
        ),
        doctor=Expect(
            4,
            "customerio.track",
            "authenticated",
            "service.error_5xx",
            "service.error_5xx",
            ("sandbox.not_running", "customerio.track_rejected"),
        ),
    ),
]

SLOW_CASES = [
    Case(
        "rate_limit_storm",
        sandbox={"fail_rate": 1.0, "fail_status": 429},
        routes=["customerio"],
        send_test=Expect(
            4,
            "customerio.track",
            "authenticated",
            "service.rate_limited",
            "service.rate_limited",
            ("sandbox.not_running", "customerio.track_rejected"),
        ),
        doctor=Expect(
            4,
            "customerio.track",
            "authenticated",
            "service.rate_limited",
            "service.rate_limited",
            ("sandbox.not_running", "customerio.track_rejected"),
        ),
    ),
    Case(
        "slow_service",
        sandbox={"latency": 2.5},
        routes=["customerio"],
        send_test=Expect(
            4,
            "customerio.track",
            "authenticated",
            "service.slow",
            "service.timed_out",
            ("sandbox.not_running", "service.unreachable"),
        ),
        doctor=Expect(
            4,
            "customerio.track",
            "authenticated",
            "service.slow",
            "service.timed_out",
            ("sandbox.not_running", "service.unreachable"),
        ),
    ),
]

HEALTHY = [
    Case("healthy_us_us"),
    Case(
        "healthy_customerio_eu_segment_us",
        sandbox={"region": "eu", "segment_region": "us"},
        config={"customerio": {"region": "eu"}},
    ),
    Case(
        "healthy_customerio_us_segment_eu",
        sandbox={"region": "us", "segment_region": "eu"},
        direct=True,
        segment_region="eu",
    ),
    Case("healthy_eu_eu_no_token", sandbox={"region": "eu"}, direct=True, token=False, segment_region="eu"),
    Case("healthy_anonymous_flow", routes=["segment"], anonymous_flow=True),
]


def _params(cases):
    out = []
    for case in cases:
        for command in ("send-test", "doctor"):
            expect = case.send_test if command == "send-test" else case.doctor
            if expect is not None:
                out.append(pytest.param(case, command, expect, id=f"{case.name}-{command}"))
    return out


@pytest.fixture(scope="module")
def _sandboxes():
    """One running sandbox per set of options (starting one costs a third of a second)."""
    running: dict[tuple, EmbeddedSandbox] = {}
    yield running
    for sb in running.values():
        sb.stop()


@pytest.fixture
def setup_for(tmp_path, _sandboxes):
    def sandbox(options: dict, role: str = "") -> EmbeddedSandbox:
        key = (role, tuple(sorted(options.items())))
        if key not in _sandboxes:
            _sandboxes[key] = EmbeddedSandbox(SandboxOptions(**options)).start()
        sb = _sandboxes[key]
        sb.reset()  # empty, as if new
        return sb

    return lambda case: Setup(case, tmp_path, sandbox)


@pytest.mark.slow  # the whole matrix is a sweep: .ci/run runs it with -m slow
@pytest.mark.parametrize("case, command, expect", _params(CASES))
def test_matrix(setup_for, case, command, expect):
    assert_expected(setup_for(case).run(command), expect)


@pytest.mark.slow
@pytest.mark.parametrize("case, command, expect", _params(SLOW_CASES))
def test_matrix_slow_services(setup_for, case, command, expect):
    assert_expected(setup_for(case).run(command), expect)


@pytest.mark.slow
def test_slow_service_is_called_slow_not_unreachable(setup_for):
    doc = setup_for(SLOW_CASES[1]).run("doctor")
    failed = first_failed(doc)
    assert "answered too slowly" in failed["message"] and "could not reach" not in failed["message"]
    assert "sandbox" not in failed["hint"]


@pytest.mark.slow  # a sweep: .ci/run runs it with -m slow
@pytest.mark.parametrize("case", HEALTHY, ids=[c.name for c in HEALTHY])
def test_healthy_setups_pass_and_name_no_cause(setup_for, case):
    setup = setup_for(case)
    options = setup.sb.options
    for command in ("send-test", "doctor"):
        doc = setup.run(command)
        assert doc["ok"] is True, (command, first_failed(doc))
        assert all_causes(doc) == []
        # Each service's region is learned from that service: Customer.io's from the Track API,
        # Segment's from the settings lookup's API host.
        facts = {f["id"]: f for f in doc["summary"]["diagnosis"]["facts"]}
        assert facts["customerio.track.ok"]["data"]["region"] == options.region_of("customerio")
        assert facts["segment.lookup.known"]["data"]["region"] == options.region_of("segment")


def test_sandbox_not_running_only_for_a_refused_loopback(tmp_path):
    (tmp_path / "cdpio.yaml").write_text(yaml.safe_dump(FAST), encoding="utf-8")
    settings = build_settings(str(tmp_path / "cdpio.yaml"), sandbox_url=_closed_port_url())
    doc = json.loads(render_json(doctor.run_doctor(settings)))
    assert_expected(
        doc,
        Expect(
            4,
            "customerio.track",
            "authenticated",
            "sandbox.not_running",
            "service.refused_loopback",
            ("service.error_5xx", "customerio.track_rejected"),
        ),
    )
    assert first_failed(doc)["hint"] == "Fix: is the sandbox still running? (`cdpio sandbox`)"


def test_region_mismatch_run_uses_the_detected_region_and_says_so(setup_for):
    case = CASES[2]
    doc = setup_for(case).run("send-test")
    region = next(c for c in doc["checks"] if c["id"] == "customerio.region")
    assert "used the detected EU region" in region["message"]
    # Sends and App API reads went to EU: every route's delivery is proven.
    assert [c["status"] for c in doc["checks"] if c["tier"] == "delivered"] == ["passed"] * 3
    assert doc["summary"]["customerio_region"] == "eu"


def test_check_keys_agrees_segment_region_comes_from_the_settings_lookup(setup_for):
    from cdpio_cli import keys

    setup = setup_for(CASES[0])  # an EU Segment source, segment.region us, no token
    path = setup.tmp_path / "cdpio.yaml"
    path.write_text(yaml.safe_dump(setup.config), encoding="utf-8")
    doc = json.loads(render_json(keys.check_keys(build_settings(str(path)))))
    failed = first_failed(doc)
    assert (doc["exit_code"], failed["id"]) == (1, "segment.region")
    assert (
        "events.eu1.segmentapis.com" in failed["message"] and failed["hint"] == "set segment.region: eu in cdpio.yaml"
    )
    # A Customer.io workspace in the EU with a US Segment source is fine: no Segment region advice.
    healthy = setup_for(HEALTHY[1])
    path.write_text(yaml.safe_dump(healthy.config), encoding="utf-8")
    doc = json.loads(render_json(keys.check_keys(build_settings(str(path), sandbox_url=healthy.sb.url))))
    assert doc["ok"] is True and "segment.region" not in json.dumps([c.get("hint") for c in doc["checks"]])


def test_cli_json_carries_causes_and_facts(sandbox_factory, tmp_path):
    sb = sandbox_factory(segment_region="eu")
    (tmp_path / "cdpio.yaml").write_text(yaml.safe_dump(FAST), encoding="utf-8")
    result = run_cli("--sandbox-url", sb.url, "--json", "doctor", cwd=tmp_path)
    assert result.code == 1, result.stderr
    failed = first_failed(result.json)
    assert failed["id"] == "segment.region" and failed["hint"] == "Fix: set segment.region: eu in cdpio.yaml"
    cause = failed["details"]["causes"][0]
    assert cause["config"] == {"segment.region": "eu"}
    assert "events.eu1.segmentapis.com" in cause["text"]
    assert "segment.region.differs" in {f["id"] for f in result.json["summary"]["diagnosis"]["facts"]}


def _with(config: dict, dotted: str, value: str) -> dict:
    section, key = dotted.split(".", 1)
    return _merge(config, {section: {key: value}})


CONFIG_FIXED = [
    c
    for c in CASES
    if c.name in ("segment_eu_config_us_no_token", "segment_eu_config_us_with_token", "customerio_region_mismatch")
]


@pytest.mark.slow  # a sweep: .ci/run runs it with -m slow
@pytest.mark.parametrize("case", CONFIG_FIXED, ids=[c.name for c in CONFIG_FIXED])
def test_suggested_config_fixes_make_the_setup_pass(setup_for, case):
    """Every config change cdpio suggests, applied, gives a passing run of both commands."""
    setup = setup_for(case)
    for command in ("send-test", "doctor"):
        doc = setup.run(command)
        fixes = [cause["config"] for cause in all_causes(doc) if cause.get("config")]
        assert fixes, command
        config = setup.config
        for fix in fixes:
            for dotted, value in fix.items():
                config = _with(config, dotted, value)
                if case.direct and dotted == "segment.region":
                    # With explicit endpoints the user also points them at that region.
                    for name, service in (("endpoint", "segment"), ("public_api_endpoint", "segment_api")):
                        config = _with(config, f"segment.{name}", setup.sb.url + SANDBOX_PREFIXES[service][value])
        for again in ("send-test", "doctor"):
            fixed = setup.run(again, config)
            assert fixed["ok"] is True, (command, again, first_failed(fixed))


def test_every_suggested_config_fix_names_a_known_cause():
    """A config fix is only ever offered by a rule whose fact shows the real value."""
    from cdpio_cli import diagnosis

    ev = diagnosis.Evidence()
    ev.add("customerio.region.differs", "x", configured="us", detected="eu")
    ev.add("segment.region.differs", "y", configured="us", actual="eu", source="settings lookup")
    ev.add("segment.person_missing", "z")
    found = {c.id: c.config for c in diagnosis.causes(ev, "doctor")}
    assert found["customerio.region_mismatch"] == {"customerio.region": "eu"}
    assert found["segment.region_mismatch"] == {"segment.region": "eu"}
    # Facts never compare the two services' regions: no Customer.io fact suggests a Segment region.
    ev2 = diagnosis.Evidence()
    ev2.add("customerio.region.differs", "x", configured="us", detected="eu")
    assert all("segment.region" not in c.config for c in diagnosis.causes(ev2, "doctor"))


def test_an_app_key_working_only_in_the_other_region_is_another_workspace_once_track_named_the_region():
    """Without Track credentials the App key's region is the only evidence (fix: the region); once
    the Track API has named the workspace's region, changing it would break Track."""
    from cdpio_cli import diagnosis

    seen = "App API key works only in the EU region, but cdpio used US"
    guessed = diagnosis.Evidence()
    guessed.add("customerio.app.other_region", seen, region="eu", detected=None)
    [cause] = diagnosis.causes(guessed, "customerio")
    assert (cause.id, cause.config) == ("customerio.region_mismatch", {"customerio.region": "eu"})
    known = diagnosis.Evidence()
    known.add("customerio.track.ok", "Track API accepted", region="us")
    known.add("customerio.app.other_region", seen, region="eu", detected="us")
    [cause] = diagnosis.causes(known, "customerio")
    assert (cause.id, cause.config) == ("customerio.app_other_workspace", {})


@pytest.mark.parametrize(
    "message, status, cause",
    [
        (
            "could not reach the Customer.io Track API: could not connect to 127.0.0.1:8975 (refused)",
            None,
            "sandbox.not_running",
        ),
        (
            "could not reach the Customer.io Track API: could not connect to track.customer.io (refused)",
            None,
            "service.unreachable",
        ),
        (
            "could not reach the Customer.io Track API: timed out connecting to 127.0.0.1:8975",
            None,
            "service.unreachable",
        ),
        (
            "the Customer.io Track API answered too slowly: timed out waiting for a response from 127.0.0.1:8975",
            None,
            "service.slow",
        ),
        ("the Customer.io Track API answered 503", 503, "service.error_5xx"),
        ("the Customer.io Track API answered 429", 429, "service.rate_limited"),
    ],
)
def test_service_failures_each_have_their_own_cause(message, status, cause):
    """ "Is the sandbox still running?" only for a refused connection to a loopback address."""
    from cdpio_cli import diagnosis
    from cdpio_cli.errors import FailureKind
    from cdpio_cli.results import Check, Status, Tier

    check = Check(
        id="customerio.track",
        route="customerio",
        tier=Tier.AUTHENTICATED,
        status=Status.FAILED,
        message=message,
        http_status=status,
        failure=FailureKind.UNREACHABLE,
    )
    found = diagnosis.diagnose(diagnosis.Evidence(), check)
    assert [c.id for c in found] == [cause]
    assert ("sandbox" in check.hint) == (cause == "sandbox.not_running")


def test_when_every_segment_link_checks_out_only_the_destinations_own_settings_remain():
    from cdpio_cli import diagnosis

    ev = diagnosis.Evidence()
    ev.add("segment.lookup.known", "known", api_host="api.segment.io/v1", region="us")
    ev.add("segment.lookup.destination", "listed")
    ev.add("segment.destination.enabled", "enabled", site_id="[20 chars, ends 000a]")
    ev.add("segment.person_missing", "missing")
    assert [c.id for c in diagnosis.causes(ev, "segment")] == ["segment.destination_drops"]


def test_doctor_warns_when_the_public_api_subscriptions_cannot_be_used(setup_for):
    """A subscription of an action cdpio does not know: doctor says it assumes the defaults, and goes on."""
    unknown = (*mapping.DEFAULT_SUBSCRIPTIONS, mapping.Subscription("sendEmail", 'type = "track"', True, "Send Email"))
    doc = setup_for(Case("unknown_action", direct=True, sandbox={"subscriptions": unknown})).run("doctor")
    link = next(c for c in doc["checks"] if c["id"] == "segment.subscriptions")
    assert link["status"] == "warning"
    assert link["message"] == (
        "using the destination's default subscriptions: subscription 'Send Email' uses "
        "action 'sendEmail', which cdpio does not know"
    )
    assert doc["ok"] is True and all_causes(doc) == []

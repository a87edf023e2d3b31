"""send-test against the sandbox over real loopback sockets, as a user runs it.

The honest tiers are the point: a 200 is `accepted`; only finding the person
and events through the App API is `delivered`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from cdpio_cli.sandbox import defaults
from tests.cli_helpers import run_cli, write_config

# Short polling so failing-delivery tests end in seconds.
FAST = "verify: {timeout: 3s, poll_interval: 100ms}\n"


def run(sb, tmp_path, *args, config=FAST, env=None):
    write_config(tmp_path, config)
    return run_cli("--sandbox-url", sb.url, *args, cwd=tmp_path, env=env)


def checks(result, **match):
    return [c for c in result.json["checks"] if all(c.get(k) == v for k, v in match.items())]


def one(result, check_id, tier):
    found = checks(result, id=check_id, tier=tier)
    assert len(found) == 1, (check_id, tier, [c["id"] for c in result.json["checks"]])
    return found[0]


def test_no_config_runs_against_the_embedded_sandbox_and_passes(tmp_path):
    result = run_cli("send-test", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "embedded sandbox" in result.stderr
    assert result.stdout == ""
    for route in ("segment", "customerio", "pipelines"):
        assert f"{route}.delivery" in result.stderr
    assert "OK:" in result.stderr and "failed" not in result.stderr


def test_default_run_json_has_accepted_and_delivered_tiers_per_route(sandbox, tmp_path):
    result = run(sandbox, tmp_path, "--json", "send-test")
    assert result.code == 0, result.stderr
    doc = result.json
    assert doc["ok"] is True and doc["command"] == "send-test"
    for route in ("segment", "customerio", "pipelines"):
        sent = checks(result, route=route, tier="accepted")
        assert [c["id"] for c in sent] == [
            f"{route}.identify",
            f"{route}.track Signed Up",
            f"{route}.page Pricing",
            f"{route}.screen Home",
        ]
        assert all(c["status"] == "passed" and c["http_status"] == 200 for c in sent)
        delivered = one(result, f"{route}.delivery", "delivered")
        assert delivered["status"] == "passed"
        assert "3 traits, 3 events" in delivered["message"]
        assert delivered["details"]["seconds_to_delivery"] >= 0
        # No event data in the default sandbox's activities: the per-run person proves it.
        assert delivered["details"]["evidence"] == ["new person for this run"]
    # Every route had its own person, and each person really exists.
    users = {r: v["user_id"] for r, v in doc["summary"]["routes"].items()}
    assert len(set(users.values())) == 3 and all(doc["run_id"] in u for u in users.values())
    for route, user_id in users.items():
        assert user_id.endswith(f"-{route}")
        r = httpx.get(
            f"{sandbox.url}/app/v1/customers/{user_id}/attributes",
            headers={"Authorization": f"Bearer {defaults.APP_API_KEY}"},
        )
        attrs = r.json()["customer"]["attributes"]
        assert attrs["plan_type"] == "Pro" and attrs["is_trial"] == "true"
        assert attrs["email"] == f"cdpio+{doc['run_id']}-{route}@example.com"


def test_wrong_write_key_is_accepted_with_200_but_never_delivered(sandbox_factory, tmp_path):
    # The sandbox's source has another write key than the config sends.
    sb = sandbox_factory(write_key="someOtherSourceWriteKey000000042")
    result = run(sb, tmp_path, "--json", "send-test", "--route", "segment")
    assert result.code == 1, result.stderr
    accepted = checks(result, route="segment", tier="accepted")
    assert accepted and all(c["status"] == "passed" and c["http_status"] == 200 for c in accepted)
    assert all("not proof of delivery" in c["message"] for c in accepted)
    delivery = one(result, "segment.delivery", "delivered")
    assert delivery["status"] == "failed"
    assert "accepted the events (200) but none reached Customer.io" in delivery["message"]
    assert "wrong write key" in delivery["message"]
    # The settings lookup said so; a destination it cannot even see is not named.
    causes = delivery["details"]["causes"]
    assert [(c["id"], c["fact"]) for c in causes] == [("segment.write_key_unknown", "segment.lookup.unknown")]
    # The human table says the same on stderr.
    assert "none reached Customer.io" in result.stderr
    # And the sandbox confirms: accepted, then dropped for the unknown key.
    rows = httpx.get(f"{sb.url}/_sandbox/deliveries").json()
    rows = rows.get("deliveries", rows) if isinstance(rows, dict) else rows
    assert rows and all(row["status"] == "dropped" for row in rows)


def test_wrong_track_credentials_exit_3(sandbox_factory, tmp_path):
    sb = sandbox_factory(track_api_key="0123456789abcdef0123")
    result = run(sb, tmp_path, "--json", "send-test", "--route", "customerio")
    assert result.code == 3, result.stderr
    track = one(result, "customerio.track", "authenticated")
    assert track["status"] == "failed" and track["http_status"] == 401
    assert one(result, "customerio.send", "accepted")["status"] == "skipped"


def test_wrong_pipelines_key_is_rejected_in_strict_mode(sandbox_factory, tmp_path):
    sb = sandbox_factory(pipelines_api_key="pk_us_theSandboxOnlyKnowsThis01")
    result = run(sb, tmp_path, "--json", "send-test", "--route", "pipelines")
    assert result.code == 3, result.stderr
    identify = one(result, "pipelines.identify", "accepted")
    assert identify["status"] == "failed" and identify["http_status"] == 401


def test_page_without_url_is_named_as_dropped_by_the_mapping(sandbox, tmp_path):
    config = (
        FAST
        + """\
send_test:
  events:
    - {type: track, event: Signed Up}
    - {type: page, name: Pricing}
"""
    )
    result = run(sandbox, tmp_path, "--json", "send-test", "--route", "segment", "--route", "customerio", config=config)
    assert result.code == 1, result.stderr
    assert 'warning: page "Pricing" will be dropped by the Customer.io (Actions) destination mapping' in " ".join(
        result.stderr.split()
    ).replace("\\", "")
    for route in ("segment", "customerio"):
        dropped = one(result, f"{route}.page Pricing", "delivered")
        assert dropped["status"] == "failed"
        assert "dropped by the destination mapping: MESSAGE_REJECTED" in dropped["message"]
        assert "properties.url" in dropped["message"]
        # Everything else of the route arrived.
        assert one(result, f"{route}.delivery", "delivered")["status"] == "passed"
    # Segment takes the page (200); the Track route does not send what the destination would drop.
    assert one(result, "segment.page Pricing", "accepted")["status"] == "passed"
    assert one(result, "customerio.page Pricing", "accepted")["status"] == "skipped"


def test_anonymous_flow_is_merged_into_one_person(sandbox, tmp_path):
    result = run(sandbox, tmp_path, "--json", "send-test", "--route", "segment", "--anonymous-flow")
    assert result.code == 0, result.stderr
    ids = [c["id"] for c in checks(result, tier="accepted")]
    assert ids[:2] == ["segment.anonymous track Viewed Pricing", "segment.identify"]
    delivery = one(result, "segment.delivery", "delivered")
    assert delivery["status"] == "passed" and "merged" in delivery["message"]
    route = result.json["summary"]["routes"]["segment"]
    auth = {"Authorization": f"Bearer {defaults.APP_API_KEY}"}
    acts = httpx.get(
        f"{sandbox.url}/app/v1/customers/{route['user_id']}/activities",
        params={"type": "event", "name": "Viewed Pricing"},
        headers=auth,
    ).json()["activities"]
    assert len(acts) == 1
    merges = httpx.get(
        f"{sandbox.url}/app/v1/customers/{route['user_id']}/activities", params={"type": "anon_merge"}, headers=auth
    ).json()["activities"]
    assert merges  # an anon_merge's name/data are undocumented: only its type is relied on


def test_device_registration_is_checked(sandbox, tmp_path):
    result = run(
        sandbox,
        tmp_path,
        "--json",
        "send-test",
        "--route",
        "customerio",
        "--device-token",
        "apns-token-123",
        "--platform",
        "ios",
    )
    assert result.code == 0, result.stderr
    assert "1 device" in one(result, "customerio.delivery", "delivered")["message"]


def test_event_and_user_id_flags(sandbox, tmp_path):
    result = run(
        sandbox,
        tmp_path,
        "--json",
        "send-test",
        "--route",
        "segment",
        "--user-id",
        "qa-{run_id}",
        "--event",
        "Trial Started",
    )
    assert result.code == 0, result.stderr
    ids = [c["id"] for c in checks(result, tier="accepted")]
    assert "segment.track Trial Started" in ids and "segment.track Signed Up" not in ids
    assert result.json["summary"]["routes"]["segment"]["user_id"].startswith("qa-")


def test_eu_workspace_end_to_end(sandbox_factory, tmp_path):
    sb = sandbox_factory(region="eu", pipelines_api_key="pk_eu_cdpioSandboxPipelines0001")
    config = (
        FAST
        + """\
segment: {region: eu}
customerio: {region: auto, pipelines_api_key: pk_eu_cdpioSandboxPipelines0001}
"""
    )
    result = run(sb, tmp_path, "--json", "send-test", config=config)
    assert result.code == 0, result.stderr
    assert result.json["summary"]["customerio_region"] == "eu"
    assert "region EU (detected)" in one(result, "customerio.region", "authenticated")["message"]
    # The App API answers 401 on the US host of an EU workspace: delivery proves the EU hosts were used.
    for route in ("segment", "customerio", "pipelines"):
        assert one(result, f"{route}.delivery", "delivered")["status"] == "passed"


def test_no_verify_says_delivery_was_not_verified(sandbox, tmp_path):
    result = run(sandbox, tmp_path, "--json", "send-test", "--route", "segment", "--no-verify")
    assert result.code == 0, result.stderr
    delivery = one(result, "segment.delivery", "delivered")
    assert delivery["status"] == "skipped" and "not verified" in delivery["message"]
    assert "not proof of delivery" in one(result, "segment.identify", "accepted")["message"]


def test_json_is_alone_on_stdout_and_junit_has_one_case_per_check(sandbox_factory, tmp_path):
    keys = {
        "WK": "wkSecretValue0000000000000000001",
        "SID": "5ec0000000000000000a",
        "TKEY": "5ec0000000000000000b",
        "AKEY": "5ec00000000000000000000000000abc",
        "PKEY": "pk_us_secretPipelinesValue0001",
    }
    # The sandbox knows every credential except the write key: one route fails delivery.
    sb = sandbox_factory(
        write_key="aDifferentWriteKey00000000000001",
        site_id=keys["SID"],
        track_api_key=keys["TKEY"],
        app_api_key=keys["AKEY"],
        pipelines_api_key=keys["PKEY"],
    )
    config = (
        FAST
        + """\
segment: {write_key: "${WK}"}
customerio: {site_id: "${SID}", track_api_key: "${TKEY}", app_api_key: "${AKEY}", pipelines_api_key: "${PKEY}"}
"""
    )
    junit = tmp_path / "report.xml"
    result = run(sb, tmp_path, "--json", "--junit", str(junit), "send-test", config=config, env=keys)
    assert result.code == 1, result.stderr
    doc = result.json  # the whole of stdout is one JSON document
    assert doc["schema_version"] == 1 and doc["ok"] is False
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(doc["checks"])
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == 1
    body = failures[0].find("failure").text
    assert "none reached Customer.io" in body
    text = result.stdout + result.stderr + junit.read_text()
    for secret in keys.values():
        assert secret not in text


def test_bad_flags_exit_2(sandbox, tmp_path):
    for args in (
        ["--route", "nowhere"],
        ["--timeout", "soon"],
        ["--device-token", "t"],
        ["--device-token", "t", "--platform", "windows"],
    ):
        result = run(sandbox, tmp_path, "send-test", *args)
        assert result.code == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().count("\n") <= 3, result.stderr


def test_unreachable_service_exits_4_quickly(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_config(tmp_path, FAST)
    result = run_cli("--sandbox-url", f"http://127.0.0.1:{port}", "--json", "send-test", cwd=tmp_path)
    assert result.code == 4, result.stderr
    sent = [c for c in result.json["checks"] if c["tier"] == "accepted"]
    failed = [c for c in sent if c["status"] == "failed"]
    # One failed send per route; the rest are not attempted.
    assert {c["route"] for c in failed} == {"segment", "pipelines"}
    assert all("could not reach" in c["message"] for c in failed)
    assert all(c["status"] == "skipped" for c in sent if c not in failed)


# ---------------------------------------------------------------------------
# A fixed test user: delivery counts only what carries this run's id
# ---------------------------------------------------------------------------

FIXED_USER = (
    FAST
    + """\
send_test:
  user_id: qa-fixed-user
  traits: {plan_type: Pro, is_trial: true}
"""
)
WRONG_WRITE_KEY = 'segment: {write_key: "wrongWriteKeyNobodyKnows00000001"}\n'


@pytest.mark.parametrize("activity_data", ["none", "properties"])
def test_a_fixed_user_never_passes_on_an_earlier_runs_data(sandbox, sandbox_factory, tmp_path, activity_data):
    sb = sandbox if activity_data == "none" else sandbox_factory(activity_data="properties")
    if activity_data == "properties":
        first = run(sb, tmp_path, "--json", "send-test", "--route", "segment", config=FIXED_USER)
        assert first.code == 0, first.stderr
        assert one(first, "segment.delivery", "delivered")["status"] == "passed"
    else:
        # Without event data only time tells runs apart: an earlier run an hour ago.
        import time as _time

        old = int(_time.time()) - 3600
        auth = (defaults.SITE_ID, defaults.TRACK_API_KEY)
        base = f"{sb.url}/track/api/v1/customers/qa-fixed-user"
        httpx.put(
            base,
            json={"cdpio_run_id": "an-earlier-run", "plan_type": "Pro", "is_trial": True, "_timestamp": old},
            auth=auth,
        ).raise_for_status()
        for body in (
            {"name": "Signed Up"},
            {"name": "https://example.com/pricing", "type": "page"},
            {"name": "Home", "type": "screen"},
        ):
            httpx.post(base + "/events", json={**body, "timestamp": old}, auth=auth).raise_for_status()
    # Same person, but Segment drops everything now (200 for an unknown write key).
    # A short wait: this run must fail, and the sandbox shows what arrived at once.
    second = run(
        sb,
        tmp_path,
        "--json",
        "send-test",
        "--route",
        "segment",
        "--timeout",
        "1s",
        config=FIXED_USER + WRONG_WRITE_KEY,
    )
    assert second.code == 1, second.stderr
    delivery = one(second, "segment.delivery", "delivered")
    assert delivery["status"] == "failed"
    assert "none reached Customer.io" in delivery["message"]
    assert "earlier runs" in delivery["message"]
    accepted = checks(second, route="segment", tier="accepted")
    assert accepted and all("not proof of delivery" in c["message"] for c in accepted)
    assert "delivery verified" not in second.stdout + second.stderr


@pytest.mark.parametrize("activity_data", ["none", "properties"])
def test_delivery_proof_names_its_evidence(sandbox, sandbox_factory, tmp_path, activity_data):
    # Identify, track, page and screen through every route, with event data off and on.
    sb = sandbox if activity_data == "none" else sandbox_factory(activity_data="properties")
    # The run id is used whenever the activity carries it; otherwise the person
    # being new, or (a fixed user) the activity being newer than the first send.
    tagged = "tagged with this run's cdpio_run_id"
    with_data = activity_data == "properties"
    runs = [
        (
            run(sb, tmp_path, "--json", "send-test", "--route", "pipelines", config=FIXED_USER),
            tagged if with_data else "newer than this run's first send",
            ("pipelines",),
        )
    ]
    if with_data:  # per-run person without data: test_default_run_json_has_accepted_...
        runs.append((run(sb, tmp_path, "--json", "send-test"), tagged, ("segment", "customerio", "pipelines")))
    for result, proof, routes in runs:
        assert result.code == 0, result.stderr
        for route in routes:
            delivery = one(result, f"{route}.delivery", "delivered")
            assert delivery["status"] == "passed" and "3 events" in delivery["message"]
            assert delivery["details"]["evidence"] == [proof]
            assert proof in delivery["message"]


def test_every_test_message_carries_the_run_id(sandbox_factory, tmp_path):
    # Event data is visible only in a sandbox that returns it (--activity-data properties).
    sandbox = sandbox_factory(activity_data="properties")
    result = run(
        sandbox,
        tmp_path,
        "--json",
        "send-test",
        "--route",
        "segment",
        "--route",
        "pipelines",
        "--anonymous-flow",
        config=FIXED_USER,
    )
    assert result.code == 0, result.stderr
    run_id = result.json["run_id"]
    auth = {"Authorization": f"Bearer {defaults.APP_API_KEY}"}
    for route in ("segment", "pipelines"):
        user_id = result.json["summary"]["routes"][route]["user_id"]
        person = httpx.get(f"{sandbox.url}/app/v1/customers/{user_id}/attributes", headers=auth).json()
        assert person["customer"]["attributes"]["cdpio_run_id"] == run_id
        acts = httpx.get(
            f"{sandbox.url}/app/v1/customers/{user_id}/activities", params={"limit": 100}, headers=auth
        ).json()["activities"]
        events = [a for a in acts if a["type"] in ("event", "page", "screen")]
        assert len(events) == 4  # anonymous track, track, page, screen
        assert all(a["data"]["cdpio_run_id"] == run_id for a in events)


def test_a_second_good_run_on_a_fixed_user_passes_on_its_own_data(sandbox, tmp_path):
    for _ in range(2):
        result = run(sandbox, tmp_path, "--json", "send-test", "--route", "customerio", config=FIXED_USER)
        assert result.code == 0, result.stderr
        delivery = one(result, "customerio.delivery", "delivered")
        assert delivery["status"] == "passed" and "2 traits, 3 events" in delivery["message"]


@pytest.mark.parametrize("user_id", ["", "   ", "\t"])
def test_empty_user_id_is_a_usage_error(sandbox, tmp_path, user_id):
    result = run(sandbox, tmp_path, "send-test", "--route", "segment", "--user-id", user_id)
    assert result.code == 2, result.stderr
    assert "--user-id cannot be empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_verify_with_an_app_key_says_so(sandbox, tmp_path):
    # The sandbox's default App API key is configured: --no-verify is the only reason.
    result = run(sandbox, tmp_path, "--json", "send-test", "--route", "customerio", "--no-verify")
    assert result.code == 0, result.stderr
    delivery = one(result, "customerio.delivery", "delivered")
    assert delivery["status"] == "skipped"
    assert delivery["message"] == "delivery not verified (--no-verify)"
    assert "no App API key" not in result.stdout + result.stderr


def test_verbose_shows_message_ids_endpoints_and_what_was_found(sandbox, tmp_path):
    quiet = run(sandbox, tmp_path, "--json", "send-test", "--route", "segment")
    loud = run(sandbox, tmp_path, "--json", "--verbose", "send-test", "--route", "segment")
    assert quiet.code == loud.code == 0, loud.stderr
    track = one(loud, "segment.track Signed Up", "accepted")
    message_id = track["details"]["messageId"]
    assert track["details"]["endpoint"] == "POST /segment/v1/track"
    assert f"messageId {message_id}" in track["message"] and "POST /segment/v1/track" in track["message"]
    assert "messageId" not in one(quiet, "segment.track Signed Up", "accepted")["message"]
    delivery = one(loud, "segment.delivery", "delivered")
    assert "found: traits email, is_trial, plan_type" in delivery["message"]
    assert 'track "Signed Up" (activity ' in delivery["message"]
    assert loud.json["run_id"] in delivery["message"]
    assert delivery["details"]["found"]["traits"] == ["email", "is_trial", "plan_type"]
    assert "found:" not in one(quiet, "segment.delivery", "delivered")["message"]
    # The human table shows it too; no credential ever appears.
    human = run(sandbox, tmp_path, "-v", "send-test", "--route", "customerio")
    assert human.code == 0, human.stderr
    assert "POST /track/api/v2/entity" in human.stderr
    for secret in (defaults.WRITE_KEY, defaults.TRACK_API_KEY, defaults.APP_API_KEY):
        assert secret not in loud.stdout + loud.stderr + human.stderr


def test_unreachable_sandbox_hints_name_the_sandbox(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_config(tmp_path, FAST)
    result = run_cli("--sandbox-url", f"http://127.0.0.1:{port}", "--json", "send-test", cwd=tmp_path)
    assert result.code == 4, result.stderr
    failed = [c for c in result.json["checks"] if c["status"] == "failed"]
    assert failed and "not asked again" not in failed[0]["message"]
    assert f"could not connect to 127.0.0.1:{port}" in failed[0]["message"]
    assert all(c["hint"] == "is the sandbox still running? (`cdpio sandbox`)" for c in failed), failed
    assert "status.customer.io" not in result.stdout + result.stderr

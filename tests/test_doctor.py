"""doctor names the right broken link, against sandboxes broken in each way."""

from __future__ import annotations

import httpx

from cdpio_cli.sandbox import defaults
from tests.cli_helpers import run_cli, write_config

FAST = "verify: {timeout: 2s, poll_interval: 100ms}\n"


def run(sb, tmp_path, *args, config=FAST, env=None):
    write_config(tmp_path, config)
    return run_cli("--sandbox-url", sb.url, "--json", "doctor", *args, cwd=tmp_path, env=env)


def broken(result):
    failed = [c for c in result.json["checks"] if c["status"] == "failed"]
    assert len(failed) == 1, failed  # doctor stops at the first broken link
    return failed[0]


def not_run(result):
    return [c["id"] for c in result.json["checks"] if c["message"].startswith("not checked")]


def test_healthy_chain_passes_without_config(tmp_path):
    result = run_cli("--json", "doctor", cwd=tmp_path)
    assert result.code == 0, result.stderr
    ids = [c["id"] for c in result.json["checks"]]
    for link in (
        "config",
        "credentials",
        "customerio.track",
        "customerio.region",
        "customerio.app",
        "segment.write_key",
        "customerio.identify",
        "segment.identify",
        "customerio.delivered",
        "segment.delivered",
        "traits",
    ):
        assert link in ids
    assert all(c["status"] == "passed" for c in result.json["checks"])
    assert "embedded sandbox" in result.json["checks"][0]["message"]
    assert result.json["summary"]["broken_link"] is None


def test_wrong_write_key(sandbox_factory, tmp_path):
    sb = sandbox_factory(write_key="theRealSourceKey0000000000000099")
    result = run(sb, tmp_path)
    link = broken(result)
    assert link["id"] == "segment.write_key"
    assert "wrong write key" in link["message"] and "answers 200" in link["message"]
    assert link["hint"].startswith("Fix:")
    assert "a Segment send accepted" in not_run(result) and "delivered to Customer.io" in not_run(result)
    assert result.code == 3


def test_whitespace_in_a_key_is_warned_then_passes(sandbox, tmp_path):
    config = FAST + 'customerio: {track_api_key: "${TKEY}"}\n'
    result = run(sandbox, tmp_path, config=config, env={"TKEY": defaults.TRACK_API_KEY + " \n"})
    assert result.code == 0, result.stderr
    cred = next(c for c in result.json["checks"] if c["id"] == "credentials")
    assert cred["status"] == "warning"
    assert "customerio.track_api_key" in cred["message"] and "trailing" in cred["message"]
    assert defaults.TRACK_API_KEY not in result.stdout + result.stderr
    assert next(c for c in result.json["checks"] if c["id"] == "segment.delivered")["status"] == "passed"


def test_wrong_region_configured(sandbox_factory, tmp_path):
    sb = sandbox_factory(region="eu")
    result = run(sb, tmp_path, config=FAST + "segment: {region: eu}\ncustomerio: {region: us}\n")
    assert result.code == 1
    link = broken(result)
    assert link["id"] == "customerio.region"
    assert "wrong region" in link["message"]
    assert "customerio.region: eu" in link["hint"]
    assert link["line"] == 3  # points at the line to fix


def test_destination_not_connected(sandbox_factory, tmp_path):
    sb = sandbox_factory(segment_destination_enabled=False)
    result = run(sb, tmp_path)
    assert result.code == 1
    link = broken(result)
    assert link["id"] == "segment.destination"
    assert "destination is not connected" in link["message"]
    assert "Customer.io (Actions)" in link["hint"]


def test_wrong_track_key(sandbox_factory, tmp_path):
    sb = sandbox_factory(track_api_key="1234567890abcdef1234")
    result = run(sb, tmp_path)
    assert result.code == 3
    link = broken(result)
    assert link["id"] == "customerio.track" and "wrong key" in link["message"]


def _app_sends(sb, *messages):
    r = httpx.post(f"{sb.url}/segment/v1/batch", json={"batch": list(messages)}, auth=(defaults.WRITE_KEY, ""))
    assert r.status_code == 200


def test_traits_never_sent(sandbox, tmp_path):
    # The app tracks events for its user but never identifies them with traits.
    _app_sends(sandbox, {"type": "track", "userId": "app-user-7", "event": "Signed Up"})
    result = run(sandbox, tmp_path, "--user-id", "app-user-7", "--trait", "plan_type", "--event", "Signed Up")
    assert result.code == 1
    link = broken(result)
    assert link["id"] == "person.traits"
    assert "traits never sent" in link["message"].lower() and "plan_type" in link["message"]
    assert "identify" in link["hint"]


def test_anonymous_events_never_identified(sandbox, tmp_path):
    # Events before login carry only an anonymousId; the later identify does not link it.
    _app_sends(
        sandbox,
        {"type": "track", "anonymousId": "anon-42", "event": "Viewed Pricing"},
        {"type": "identify", "userId": "app-user-8", "traits": {"plan_type": "Pro"}},
    )
    result = run(sandbox, tmp_path, "--user-id", "app-user-8", "--trait", "plan_type=Pro", "--event", "Viewed Pricing")
    assert result.code == 1
    link = broken(result)
    assert link["id"] == "person.events"
    assert "anonymous events never identified" in link["message"]


def test_person_flags_need_a_person(sandbox, tmp_path):
    result = run(sandbox, tmp_path, "--trait", "plan_type")
    assert result.code == 2 and "Traceback" not in result.stderr


def test_unreachable_sandbox_says_start_the_sandbox(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_config(tmp_path, FAST)
    result = run_cli("--sandbox-url", f"http://127.0.0.1:{port}", "--json", "doctor", cwd=tmp_path)
    assert result.code == 4, result.stderr
    link = broken(result)
    assert f"could not connect to 127.0.0.1:{port}" in link["message"]
    assert "not asked again" not in link["message"]
    assert link["hint"] == "Fix: is the sandbox still running? (`cdpio sandbox`)"
    assert "status.customer.io" not in result.stdout + result.stderr


def test_doctor_tags_its_test_messages_with_the_run_id(sandbox_factory, tmp_path):
    # Event data is visible only in a sandbox that returns it (--activity-data properties).
    sandbox = sandbox_factory(activity_data="properties")
    result = run(sandbox, tmp_path)
    assert result.code == 0, result.stderr
    run_id = result.json["run_id"]
    auth = {"Authorization": f"Bearer {defaults.APP_API_KEY}"}
    for user_id in (f"cdpio-doctor-{run_id}-segment", f"cdpio-doctor-{run_id}-customerio"):
        person = httpx.get(f"{sandbox.url}/app/v1/customers/{user_id}/attributes", headers=auth).json()
        assert person["customer"]["attributes"]["cdpio_run_id"] == run_id
        acts = httpx.get(
            f"{sandbox.url}/app/v1/customers/{user_id}/activities", params={"type": "event"}, headers=auth
        ).json()["activities"]
        assert acts and all(a["data"]["cdpio_run_id"] == run_id for a in acts)


def test_verbose_doctor_names_what_it_found(sandbox, tmp_path):
    write_config(tmp_path, FAST)
    result = run_cli("--sandbox-url", sandbox.url, "--json", "-v", "doctor", cwd=tmp_path)
    assert result.code == 0, result.stderr
    delivered = next(c for c in result.json["checks"] if c["id"] == "segment.delivered")
    assert "found: traits" in delivered["message"] and result.json["run_id"] in delivered["message"]

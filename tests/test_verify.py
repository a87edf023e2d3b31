"""`cdpio verify`: find a person another program sent, through the sandbox's App API."""

from __future__ import annotations

import httpx
import pytest

from cdpio_cli.sandbox import defaults
from cdpio_cli.verify import parse_trait, values_match
from tests.cli_helpers import run_cli, write_config

FAST = "verify: {timeout: 3s, poll_interval: 100ms}\n"


def app_sends(sb, *messages, write_key=defaults.WRITE_KEY, prefix="/segment"):
    """What an app's own test would do: send through Segment's Tracking API."""
    r = httpx.post(f"{sb.url}{prefix}/v1/batch", json={"batch": list(messages)}, auth=(write_key, ""))
    assert r.status_code == 200


def run(sb, tmp_path, *args, config=FAST):
    write_config(tmp_path, config)
    return run_cli("--sandbox-url", sb.url, "--json", "verify", *args, cwd=tmp_path)


def statuses(result):
    return {c["id"]: c["status"] for c in result.json["checks"]}


ADA = [
    {
        "type": "identify",
        "userId": "ada-1",
        "traits": {"email": "ada@example.com", "plan_type": "Pro", "is_trial": True, "seats": 5},
    },
    {"type": "track", "userId": "ada-1", "event": "Signed Up", "properties": {"plan_type": "Pro"}},
]


def test_found_by_user_id_with_traits_and_events(sandbox, tmp_path):
    app_sends(sandbox, *ADA)
    result = run(
        sandbox,
        tmp_path,
        "--user-id",
        "ada-1",
        "--trait",
        "plan_type=Pro",
        "--trait",
        "is_trial=true",
        "--trait",
        "seats=5",
        "--event",
        "Signed Up",
        "--within",
        "5s",
    )
    assert result.code == 0, result.stderr
    assert statuses(result) == {
        "person": "passed",
        "trait plan_type": "passed",
        "trait is_trial": "passed",
        "trait seats": "passed",
        'event "Signed Up"': "passed",
    }


def test_found_by_email(sandbox, tmp_path):
    app_sends(sandbox, *ADA)
    result = run(sandbox, tmp_path, "--email", "ada@example.com", "--event", "Signed Up")
    assert result.code == 0, result.stderr
    assert statuses(result)["person"] == "passed"


def test_not_found_within_the_time_exits_1(sandbox, tmp_path):
    result = run(sandbox, tmp_path, "--user-id", "nobody-here", "--event", "Signed Up", "--within", "1s")
    assert result.code == 1
    person = result.json["checks"][0]
    assert person["status"] == "failed" and "no person with id nobody-here" in person["message"]
    assert result.json["summary"]["app_api_polls"] >= 2  # it polled, it did not give up at once


def test_wrong_trait_value_and_missing_event_fail(sandbox, tmp_path):
    app_sends(sandbox, *ADA)
    result = run(
        sandbox, tmp_path, "--user-id", "ada-1", "--trait", "plan_type=Basic", "--event", "Churned", "--within", "1s"
    )
    assert result.code == 1
    by_id = {c["id"]: c for c in result.json["checks"]}
    assert by_id["person"]["status"] == "passed"
    assert "is Pro, expected Basic" in by_id["trait plan_type"]["message"]
    assert by_id['event "Churned"']["status"] == "failed"


def test_event_arriving_while_polling_is_found(sandbox, tmp_path):
    import threading

    app_sends(sandbox, ADA[0])
    timer = threading.Timer(1.0, app_sends, args=(sandbox, ADA[1]))
    timer.start()
    try:
        result = run(sandbox, tmp_path, "--user-id", "ada-1", "--event", "Signed Up", "--within", "20s")
    finally:
        timer.join()
    assert result.code == 0, result.stderr


def test_eu_workspace_uses_the_eu_app_api(sandbox_factory, tmp_path):
    sb = sandbox_factory(region="eu")
    app_sends(sb, *ADA, prefix="/segment-eu")
    result = run(
        sb,
        tmp_path,
        "--user-id",
        "ada-1",
        "--event",
        "Signed Up",
        config=FAST + "segment: {region: eu}\ncustomerio: {region: auto}\n",
    )
    assert result.code == 0, result.stderr
    assert result.json["summary"]["customerio_region"] == "eu"


def test_rejected_app_key_exits_3(sandbox_factory, tmp_path):
    sb = sandbox_factory(app_api_key="f" * 32)
    result = run(sb, tmp_path, "--user-id", "ada-1")
    assert result.code == 3
    assert result.json["checks"][0]["id"] == "customerio.app"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--user-id", "a", "--email", "a@example.com"],
        ["--user-id", "a", "--trait", "novalue"],
        ["--user-id", "a", "--within", "5 parsecs"],
        ["--user-id", ""],
    ],
)
def test_bad_flags_exit_2(sandbox, tmp_path, args):
    result = run(sandbox, tmp_path, *args)
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.json["ok"] is False and result.json["error"]["message"]


@pytest.mark.parametrize(
    "expected, actual",
    [
        (True, "true"),
        ("true", "true"),
        ("TRUE", "true"),
        (5, "5"),
        ("5", "5.0"),
        (1.5, "1.5"),
        ("Pro", "Pro"),
        ({"a": 1}, '{"a":1}'),
        ("[1,2]", "[1, 2]"),
    ],
)
def test_values_match_app_api_strings(expected, actual):
    assert values_match(expected, actual)


@pytest.mark.parametrize(
    "expected, actual",
    [
        (True, "false"),
        ("Pro", "pro"),
        (5, "6"),
        ("5", None),
        (False, "0"),
        ("x", ""),
    ],
)
def test_values_that_differ(expected, actual):
    assert not values_match(expected, actual)


def test_parse_trait():
    assert parse_trait("plan_type=Pro") == ("plan_type", "Pro")
    assert parse_trait("url=https://x?a=b") == ("url", "https://x?a=b")
    with pytest.raises(ValueError):
        parse_trait("=x")


def _dead_port() -> int:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_sandbox_shows_the_real_reason_first(tmp_path):
    port = _dead_port()
    write_config(tmp_path, FAST)
    result = run_cli("--sandbox-url", f"http://127.0.0.1:{port}", "--json", "verify", "--user-id", "x", cwd=tmp_path)
    assert result.code == 4, result.stderr
    rows = [c for c in result.json["checks"] if f"127.0.0.1:{port}" in c["message"]]
    assert rows, result.json["checks"]
    # The first answer from the dead host says why; only later ones say "not asked again".
    assert "could not connect to" in rows[0]["message"]
    assert "not asked again" not in rows[0]["message"]
    assert all("not asked again" in c["message"] for c in rows[1:])
    # A loopback URL is a sandbox that is not running, not a network problem.
    for check in result.json["checks"]:
        if check["status"] in ("failed", "warning"):
            assert check["hint"] == "is the sandbox still running? (`cdpio sandbox`)", check
    assert "status.customer.io" not in result.stdout + result.stderr


def test_unreachable_hints_name_the_sandbox_only_for_loopback():
    from cdpio_cli.keys import SANDBOX_HINT, unreachable_hint
    from cdpio_cli.verify import activity_run_id

    for url in ("http://127.0.0.1:8787/app", "http://localhost:1", "http://[::1]:9/x"):
        assert unreachable_hint(url, "net") == SANDBOX_HINT
    for url in ("https://api.customer.io", "https://api.eu.segmentapis.com", None, ""):
        assert unreachable_hint(url, "net") == "net"
    assert activity_run_id({"data": {"cdpio_run_id": "r1"}}) == "r1"
    assert activity_run_id({"data": {"data": {"cdpio_run_id": "r2"}}}) == "r2"
    assert activity_run_id({"data": {}}) is None and activity_run_id({}) is None


def test_verify_has_no_run_id_and_matches_by_name(sandbox, tmp_path):
    # `verify` checks a person something else sent: untagged events still count.
    app_sends(sandbox, *ADA)
    result = run(sandbox, tmp_path, "--user-id", "ada-1", "--event", "Signed Up")
    assert result.code == 0, result.stderr
    assert "cdpio_run_id" not in result.stdout


def _look(sb, *, new_person: bool, type_="event", name="Signed Up", user_id="u1"):
    """One poll of the real client against the sandbox, as send-test polls."""
    from cdpio_cli import keys
    from cdpio_cli.verify import AppApi, ExpectedActivity, Target, poll_once

    target = Target(
        "segment",
        user_id=user_id,
        run_id="run-2",
        new_person=new_person,
        activities=[ExpectedActivity(type_, name, f"{type_} {name}")],
    )
    http = keys.ServiceHttp(5.0, (defaults.APP_API_KEY,))
    api = AppApi(http, sb.url + "/app", defaults.APP_API_KEY)
    try:
        poll_once(api, target)
    finally:
        http.close()
    return target.activities[0], api


def _track_v1(sb, path, body):
    auth = (defaults.SITE_ID, defaults.TRACK_API_KEY)
    httpx.request(
        "PUT" if not path else "POST", f"{sb.url}/track/api/v1/customers/u1{path}", json=body, auth=auth
    ).raise_for_status()


@pytest.mark.parametrize("activity_data", ["none", "properties"])
def test_which_activities_are_this_runs(sandbox, sandbox_factory, activity_data):
    # Event data in activities is undocumented (off by default in the sandbox):
    # delivery is proven with it and without it, and each proof says what it used.
    import time as _time

    sb = sandbox if activity_data == "none" else sandbox_factory(activity_data="properties")
    _track_v1(sb, "", {"cdpio_run_id": "run-2"})
    now = int(_time.time())
    _track_v1(sb, "/events", {"name": "Signed Up", "data": {}, "timestamp": now - 3600})
    _track_v1(sb, "/events", {"name": "Signed Up", "data": {"cdpio_run_id": "run-1"}, "timestamp": now - 3000})
    # A fixed user id: activities from before this run never count.
    stale, _ = _look(sb, new_person=False)
    assert stale.found_at is None and stale.earlier_only
    # A per-run person is new: any matching activity on it is this run's.
    fresh, _ = _look(sb, new_person=True)
    assert fresh.found_at is not None and fresh.evidence == "new_person"
    _track_v1(sb, "/events", {"name": "Signed Up", "data": {"cdpio_run_id": "run-2"}, "timestamp": now + 1})
    ours, _ = _look(sb, new_person=False)
    # The run id is used only when the App API returns event data.
    assert ours.found_at is not None
    assert ours.evidence == ("run_id" if activity_data == "properties" else "timestamp")


def test_pages_match_on_url_across_pages_of_activities(sandbox):
    # Regression: pages were looked up with ?type=page&name=<url>, which the App
    # API does not document (pages carry `url`); and only the first page was read.
    _track_v1(sandbox, "", {"cdpio_run_id": "run-2"})
    urls = ["https://x.test/pricing"] + [f"https://x.test/{i}" for i in range(120)]
    ops = [
        {"type": "person", "action": "page", "identifiers": {"id": "u1"}, "name": url, "timestamp": 1_700_000_000 + i}
        for i, url in enumerate(urls)
    ]  # newer ones push it past 100
    httpx.post(
        f"{sandbox.url}/track/api/v2/batch", json={"batch": ops}, auth=(defaults.SITE_ID, defaults.TRACK_API_KEY)
    ).raise_for_status()
    found, api = _look(sandbox, new_person=True, type_="page", name="https://x.test/pricing")
    assert found.found_at is not None and found.evidence == "new_person"
    assert api.calls == 3  # attributes + two pages of 100
    missing, _ = _look(sandbox, new_person=True, type_="page", name="https://x.test/nowhere")
    assert missing.found_at is None and not missing.earlier_only


def test_app_api_reads_stay_within_ten_per_second():
    from cdpio_cli.verify import RateWindow

    clock = [0.0]
    sent = []
    limit = RateWindow(10, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    for _ in range(35):
        limit.wait()
        sent.append(clock[0])
    assert sent[:10] == [0.0] * 10  # a burst of ten costs nothing
    for i in range(10, 35):  # never an 11th within one second
        assert sent[i] - sent[i - 10] >= 1.0 - 1e-9
    assert sent[-1] == pytest.approx(3.0)

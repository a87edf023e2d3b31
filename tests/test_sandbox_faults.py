"""Fault injection: errors and 429s reject before processing; dropped connections
happen after processing; deterministic with a seed; never on /_sandbox/*."""

from __future__ import annotations

import httpx
import pytest

from cdpio_cli.sandbox import defaults

# One pooled client: a fresh httpx client per call costs more than the call.
HTTP = httpx.Client(timeout=30)

AUTH = (defaults.WRITE_KEY, "")


def send(sb, msg, **kw):
    return HTTP.post(sb.url + "/segment/v1/track", json=msg, auth=AUTH, **kw)


def summary(sb):
    return HTTP.get(sb.url + "/_sandbox/deliveries").json()["summary"]


def test_injected_error_rejects_before_processing(sandbox_factory):
    sb = sandbox_factory(fail_rate=1.0, fail_status=503)
    r = send(sb, {"userId": "u1", "event": "E"})
    assert r.status_code == 503 and r.json()["code"] == "injected_fault"
    assert summary(sb)["received"] == 0
    assert HTTP.get(sb.url + "/_sandbox/health").status_code == 200  # control is never faulted
    [row] = HTTP.get(sb.url + "/_sandbox/requests").json()["requests"]
    assert (row["status"], row["fault"]) == (503, "injected_fault")


def test_throttle_answers_429_with_retry_after(sandbox_factory):
    sb = sandbox_factory(throttle=0.01)  # one request, then one per 100 s
    assert send(sb, {"userId": "u1", "event": "A", "messageId": "a"}).status_code == 200
    r = send(sb, {"userId": "u1", "event": "B", "messageId": "b"})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "100" and int(r.headers["retry-after"]) >= 1
    rows = HTTP.get(sb.url + "/_sandbox/deliveries").json()["deliveries"]
    assert [d["messageId"] for d in rows] == ["a"]  # B was never processed


def test_throttle_also_covers_track_and_app(sandbox_factory):
    sb = sandbox_factory(throttle=0.01)
    HTTP.get(sb.url + "/app/v1/workspaces", headers={"authorization": f"Bearer {defaults.APP_API_KEY}"})
    r = HTTP.get(sb.url + "/track/api/v1/accounts/region", auth=(defaults.SITE_ID, defaults.TRACK_API_KEY))
    assert r.status_code == 429


def test_dropped_connection_after_processing(sandbox_factory):
    sb = sandbox_factory(drop_connections=1.0)
    msg = {"userId": "u1", "event": "Paid", "messageId": "m-1"}
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        send(sb, msg)
    # The client saw a failure, but the message arrived; a retry is deduped.
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        send(sb, msg)
    rows = HTTP.get(sb.url + "/_sandbox/deliveries", params={"messageId": "m-1"}).json()["deliveries"]
    assert [(d["status"], d["reason"]) for d in rows] == [("delivered", None), ("dropped", "duplicate_message_id")]
    requests = HTTP.get(sb.url + "/_sandbox/requests").json()["requests"]
    assert {r["fault"] for r in requests} == {"dropped_connection"}


def test_faults_are_deterministic_with_a_seed(sandbox_factory):
    def statuses(sb):
        out = []
        for i in range(30):
            try:
                out.append(send(sb, {"userId": "u", "event": "E", "messageId": f"m{i}"}).status_code)
            except httpx.TransportError:
                out.append("dropped")
        return out

    a = statuses(sandbox_factory(fail_rate=0.3, drop_connections=0.3, seed=7))
    b = statuses(sandbox_factory(fail_rate=0.3, drop_connections=0.3, seed=7))
    assert a == b
    assert {200, 500, "dropped"} <= set(a)


def test_latency_still_answers(sandbox_factory):
    sb = sandbox_factory(latency=0.05)
    assert send(sb, {"userId": "u1", "event": "E"}).status_code == 200
    assert summary(sb)["delivered"] == 1


def test_reset_restarts_the_fault_sequence(sandbox_factory):
    sb = sandbox_factory(fail_rate=0.5, seed=3)
    first = [send(sb, {"userId": "u", "event": "E"}).status_code for _ in range(10)]
    HTTP.post(sb.url + "/_sandbox/reset")
    again = [send(sb, {"userId": "u", "event": "E"}).status_code for _ in range(10)]
    assert first == again


def test_options_are_validated():
    from cdpio_cli.sandbox.options import SandboxOptions

    for bad in ({"region": "ap"}, {"fail_rate": 2}, {"throttle": 0}, {"drop_connections": -1}, {"fail_status": 42}):
        with pytest.raises(ValueError):
            SandboxOptions(**bad)

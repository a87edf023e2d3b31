"""Routes (Segment, Pipelines, Customer.io Track) against the sandbox over loopback."""

from __future__ import annotations

import httpx
import orjson
import pytest

from cdpio_cli import transport
from cdpio_cli.routes import customerio, pipelines, segment
from cdpio_cli.sandbox import defaults


@pytest.fixture
def client():
    with transport.make_client(5.0) as c:
        yield c


def deliveries(sb, **params):
    return httpx.get(sb.url + "/_sandbox/deliveries", params=params).json()


def app_get(sb, path, region=None, **params):
    """Read the sandbox's Customer.io workspace through its App API, as verify does."""
    return httpx.get(
        sb.endpoint("app", region) + path, params=params, headers={"Authorization": f"Bearer {defaults.APP_API_KEY}"}
    )


def person_activities(sb, user, region=None, **params):
    res = app_get(sb, f"/v1/customers/{user}/activities", region, limit=100, **params)
    return None if res.status_code == 404 else res.json()["activities"]


def person_attributes(sb, user, region=None):
    res = app_get(sb, f"/v1/customers/{user}/attributes", region)
    return None if res.status_code == 404 else res.json()["customer"]["attributes"]


def track(user="u1", event="Signed Up", **extra):
    return {"type": "track", "userId": user, "event": event, "properties": {"plan": "pro"}, **extra}


# --- Segment ---------------------------------------------------------------


def test_segment_single_send_is_accepted_and_delivered(sandbox, client):
    msg = track()
    out = segment.send_message(client, sandbox.endpoint("segment"), defaults.WRITE_KEY, msg)
    assert out.ok and out.http_status == 200 and out.error is None
    assert out.endpoint.startswith("POST ") and out.endpoint.endswith("/segment/v1/track")
    assert msg["messageId"]  # fixed before the send, visible to the caller
    rows = deliveries(sandbox, messageId=msg["messageId"])["deliveries"]
    assert [r["status"] for r in rows] == ["delivered"]


def test_segment_unknown_write_key_is_200_but_dropped(sandbox, client):
    msg = track()
    out = segment.send_message(client, sandbox.endpoint("segment"), "WrongKeyWrongKeyWrongKey00", msg)
    assert out.ok and out.http_status == 200  # what Segment really does
    rows = deliveries(sandbox, messageId=msg["messageId"])["deliveries"]
    assert rows[0]["status"] == "dropped"


def test_segment_batch_send(sandbox, client):
    msgs = [track(user=f"b{i}") for i in range(3)]
    out = segment.send_batch(client, sandbox.endpoint("segment"), defaults.WRITE_KEY, msgs)
    assert out.ok and out.requests == 1
    assert deliveries(sandbox)["summary"]["delivered"] == 3


def test_segment_oversized_message_is_not_sent(sandbox, client):
    msg = track(properties={"blob": "x" * 40_000})
    out = segment.send_message(client, sandbox.endpoint("segment"), defaults.WRITE_KEY, msg)
    assert not out.ok and out.requests == 0 and "32,768" in out.dropped
    assert deliveries(sandbox)["summary"]["received"] == 0


def test_segment_route_batch_body_shape():
    route = segment.SegmentRoute("http://127.0.0.1:1/segment", "K" * 24, batch_size=5000)
    assert route.batch_size == 2500
    items = [route.prepare({"type": "track", "event": "E", "userId": str(i)}).items[0] for i in range(2)]
    spec = route.build_request(items, sent_at="2030-01-01T00:00:00.000Z")
    body = orjson.loads(spec.content)
    assert [m["userId"] for m in body["batch"]] == ["0", "1"] and body["sentAt"].startswith("2030")
    assert spec.url.endswith("/segment/v1/batch")
    assert spec.headers["Authorization"] == transport.basic_auth("K" * 24, "")
    # The envelope allowance covers the real envelope.
    assert len(spec.content) - sum(len(i) + 1 for i in items) <= route.envelope_bytes


# --- Pipelines -----------------------------------------------------------------


def test_pipelines_bearer_for_prefixed_keys_basic_for_legacy():
    assert pipelines.auth_header("pk_us_abc123").startswith("Bearer ")
    assert pipelines.auth_header("legacyKey123").startswith("Basic ")


def test_pipelines_strict_mode_rejects_a_bad_key(sandbox, client):
    base = sandbox.endpoint("pipelines")
    good = pipelines.send_message(client, base, defaults.PIPELINES_API_KEY, track())
    assert good.ok and good.http_status == 200
    bad = pipelines.send_message(client, base, "pk_us_notTheRightKey000", track())
    assert not bad.ok and bad.http_status == 401 and "not valid" in bad.error
    lenient = pipelines.send_message(client, base, "pk_us_notTheRightKey000", track(), strict=False)
    assert lenient.ok  # without strict mode a bad key is a silent 200


def test_pipelines_strict_mode_reports_spec_errors(sandbox, client):
    out = pipelines.send_message(
        client, sandbox.endpoint("pipelines"), defaults.PIPELINES_API_KEY, {"type": "track", "userId": "u1"}
    )
    assert out.http_status == 400 and "event" in out.error


# --- Customer.io Track -----------------------------------------------------------


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_customerio_single_send_creates_the_event(sandbox, client, api):
    out = customerio.send_message(
        client, sandbox.endpoint("track"), defaults.SITE_ID, defaults.TRACK_API_KEY, track(user=f"cio-{api}"), api=api
    )
    assert out.ok, out.error
    assert [a["name"] for a in person_activities(sandbox, f"cio-{api}")] == ["Signed Up"]


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_customerio_identify_and_page(sandbox, client, api):
    base = sandbox.endpoint("track")
    ident = {"type": "identify", "userId": f"p-{api}", "traits": {"email": "p@example.com", "plan": "pro"}}
    page = {
        "type": "page",
        "userId": f"p-{api}",
        "name": "Pricing",
        "properties": {"url": "https://example.com/pricing"},
    }
    for msg in (ident, page):
        out = customerio.send_message(client, base, defaults.SITE_ID, defaults.TRACK_API_KEY, msg, api=api)
        assert out.ok, out.error
    assert person_attributes(sandbox, f"p-{api}")["plan"] == "pro"
    assert [a["url"] for a in person_activities(sandbox, f"p-{api}", type="page")] == [
        "https://example.com/pricing"
    ]  # a page activity's URL is in `url` (activityObject)


def test_customerio_bad_key_is_401_with_service_text(sandbox, client):
    out = customerio.send_message(client, sandbox.endpoint("track"), defaults.SITE_ID, "0000000000000000dead", track())
    assert not out.ok and out.http_status == 401
    assert "Unauthorized" in out.error and "0000000000000000dead" not in out.error


def test_customerio_mapping_drop_is_not_sent(sandbox, client):
    out = customerio.send_message(
        client,
        sandbox.endpoint("track"),
        defaults.SITE_ID,
        defaults.TRACK_API_KEY,
        {"type": "page", "userId": "u1", "name": "Home"},
    )
    assert not out.ok and out.requests == 0 and "properties.url" in out.dropped
    assert httpx.get(sandbox.url + "/_sandbox/requests").json()["total"] == 0


def test_customerio_eu_account_on_us_host_is_redirected(sandbox_factory, client):
    sb = sandbox_factory(region="eu")
    out = customerio.send_message(
        client, sb.endpoint("track", "us"), defaults.SITE_ID, defaults.TRACK_API_KEY, track(user="eu-person")
    )
    assert out.ok and out.redirected_to and "/track-eu/" in out.redirected_to
    region = customerio.get_region(client, sb.endpoint("track", "us"), defaults.SITE_ID, defaults.TRACK_API_KEY)
    assert region.ok and region.body["region"] == "eu"


def test_customerio_batch_207_maps_errors_to_messages(sandbox, client):
    route = customerio.CustomerioRoute(sandbox.endpoint("track"), defaults.SITE_ID, defaults.TRACK_API_KEY)
    msgs = [track(user="ok-1"), track(user="bad", event="E" * 150), track(user="ok-2")]
    prepared = [route.prepare(m) for m in msgs]
    items = [p.items[0] for p in prepared]
    attempt = transport.send(client, route.build_request(items))
    assert attempt.status == 207
    verdict = route.interpret(attempt, len(items))
    assert verdict.accepted and list(verdict.item_errors) == [1]
    assert "100 bytes" in verdict.item_errors[1]
    assert person_activities(sandbox, "ok-2") and person_activities(sandbox, "bad") is None


def test_customerio_v1_call_translation():
    call = customerio.v1_call(
        {
            "type": "person",
            "action": "event",
            "name": "E",
            "identifiers": {"email": "a+b@example.com"},
            "attributes": {"x": 1},
        }
    )
    assert call.method == "POST" and call.path == "/api/v1/customers/a%2Bb%40example.com/events"
    assert call.body == {"name": "E", "data": {"x": 1}}
    anon = customerio.v1_call(
        {"type": "person", "action": "page", "name": "https://x", "identifiers": {"anonymous_id": "an-1"}}
    )
    assert anon.path == "/api/v1/events" and anon.body["anonymous_id"] == "an-1"
    assert anon.body["type"] == "page"
    assert isinstance(customerio.v1_call({"type": "object", "action": "identify"}), str)


def test_message_id_fixed_before_first_attempt_survives_retries(sandbox_factory, client):
    sb = sandbox_factory(drop_connections=0.5, seed=5)
    sent = []
    for i in range(10):
        msg = track(user=f"r{i}")
        out = segment.send_message(
            client, sb.endpoint("segment"), defaults.WRITE_KEY, msg, policy=transport.RetryPolicy(10, 0.001, 0.01)
        )
        assert out.ok
        sent.append(msg["messageId"])
    summary = deliveries(sb)["summary"]
    assert summary["delivered"] == 10  # each exactly once...
    assert summary["drop_reasons"].get("duplicate_message_id", 0) == summary["received"] - 10

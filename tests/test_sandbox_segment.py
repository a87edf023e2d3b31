"""Segment Tracking API, settings lookup and Public API in the sandbox, over raw HTTP.

Every status and silent drop of reference/segment-api.md §1.4-1.5.
"""

from __future__ import annotations

import gzip
import json

import httpx
import orjson
import pytest

from cdpio_cli.messages import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES
from cdpio_cli.sandbox import defaults

# One pooled client: a fresh httpx client per call costs more than the call.
HTTP = httpx.Client(timeout=30)

KEY = defaults.WRITE_KEY


def post(sb, path, body, *, auth=(KEY, ""), headers=None, raw=None):
    content = raw if raw is not None else orjson.dumps(body)
    hdrs = {"content-type": "application/json", **(headers or {})}
    return HTTP.post(sb.url + path, content=content, auth=auth, headers=hdrs)


def deliveries(sb, **params):
    return HTTP.get(sb.url + "/_sandbox/deliveries", params=params).json()


def reasons(sb):
    return [d["reason"] for d in deliveries(sb)["deliveries"]]


def person(sb, user_id):
    return sb.state.workspace.find("id", user_id)


@pytest.mark.parametrize("call", ["identify", "track", "page", "screen", "group", "alias"])
def test_each_call_answers_200_success(sandbox, call):
    body = {
        "userId": "u1",
        "event": "E",
        "groupId": "g",
        "previousId": "p",
        "properties": {"url": "https://x.test"},
        "name": "Home",
    }
    r = post(sandbox, f"/segment/v1/{call}", body)
    assert r.status_code == 200 and r.json() == {"success": True}
    [d] = deliveries(sandbox)["deliveries"]
    assert d["type"] == call and d["route"] == f"segment.{call}"


def test_write_key_in_body_without_auth_header(sandbox):
    r = post(sandbox, "/segment/v1/track", {"writeKey": KEY, "userId": "u1", "event": "Signed Up"}, auth=None)
    assert r.status_code == 200
    assert deliveries(sandbox)["deliveries"][0]["status"] == "delivered"
    assert sandbox.state.workspace.events(person(sandbox, "u1")) == [("event", "Signed Up")]


def test_unknown_write_key_is_200_and_dropped(sandbox):
    r = post(
        sandbox,
        "/segment/v1/batch",
        {"batch": [{"type": "track", "userId": "u1", "event": "A"}, {"type": "identify", "userId": "u1"}]},
        auth=("not-the-key", ""),
    )
    assert (r.status_code, r.json()) == (200, {"success": True})
    assert reasons(sandbox) == ["unknown_source", "unknown_source"]
    assert person(sandbox, "u1") is None


def test_key_with_trailing_newline_is_a_different_key(sandbox):
    post(sandbox, "/segment/v1/track", {"userId": "u1", "event": "A"}, auth=(KEY + "\n", ""))
    assert reasons(sandbox) == ["unknown_source"]


def test_missing_write_key_is_400(sandbox):
    r = post(sandbox, "/segment/v1/track", {"userId": "u1", "event": "A"}, auth=None)
    assert r.status_code == 400
    assert r.json()["code"] == "missing_write_key"


def test_invalid_json_is_400(sandbox):
    r = post(sandbox, "/segment/v1/batch", None, raw=b'{"batch": [')
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    assert deliveries(sandbox)["deliveries"] == []


def test_message_over_32kb_is_400(sandbox):
    big = {"userId": "u1", "event": "Big", "properties": {"blob": "x" * MAX_MESSAGE_BYTES}}
    r = post(sandbox, "/segment/v1/track", big)
    assert r.status_code == 400
    # The same message inside a batch fails the whole request too.
    r = post(sandbox, "/segment/v1/batch", {"batch": [{"type": "track", **big}]})
    assert r.status_code == 400
    assert deliveries(sandbox)["deliveries"] == []


def test_batch_over_500kb_is_400(sandbox):
    msgs = [
        {"type": "track", "userId": "u1", "event": "E", "properties": {"p": "y" * 20_000}}
        for _ in range(MAX_BATCH_BYTES // 20_000 + 2)
    ]
    r = post(sandbox, "/segment/v1/batch", {"batch": msgs})
    assert r.status_code == 400


def test_batch_over_2500_events_is_200_and_all_dropped(sandbox):
    msgs = [{"type": "track", "userId": "u1", "event": "E", "messageId": f"m{i}"} for i in range(2501)]
    r = post(sandbox, "/segment/v1/batch", {"batch": msgs})
    assert r.status_code == 200
    summary = deliveries(sandbox)["summary"]
    assert summary["dropped"] == 2501 and summary["delivered"] == 0
    assert summary["drop_reasons"] == {"too_many_events_in_batch": 2501}
    # Not accepted, so not deduped: the same ids go through in smaller batches.
    post(sandbox, "/segment/v1/batch", {"batch": msgs[:2500]})
    assert deliveries(sandbox)["summary"]["delivered"] == 2500


def test_ingest_drops_no_identity_and_track_without_event(sandbox):
    post(
        sandbox,
        "/segment/v1/batch",
        {
            "batch": [
                {"type": "track", "event": "No One"},
                {"type": "track", "userId": "u1"},
                {"type": "track", "userId": "u1", "event": ""},
                {"type": "track", "userId": "u1", "event": "Fine"},
            ]
        },
    )
    assert reasons(sandbox) == ["no_user_anon_id", "event_not_defined", "event_not_defined", None]


def test_duplicate_message_ids_are_dropped(sandbox):
    msg = {"type": "track", "userId": "u1", "event": "Paid", "messageId": "dup-1"}
    post(sandbox, "/segment/v1/batch", {"batch": [msg, msg]})
    post(sandbox, "/segment/v1/track", msg)
    rows = deliveries(sandbox, messageId="dup-1")["deliveries"]
    assert [r["status"] for r in rows] == ["delivered", "dropped", "dropped"]
    assert {r["reason"] for r in rows[1:]} == {"duplicate_message_id"}
    assert len(person(sandbox, "u1").activities) == 1


def test_gzip_body_and_import_alias(sandbox):
    body = gzip.compress(orjson.dumps({"batch": [{"type": "identify", "userId": "gz", "traits": {"plan": "pro"}}]}))
    r = post(sandbox, "/segment/v1/import", None, raw=body, headers={"content-encoding": "gzip"})
    assert r.status_code == 200
    assert person(sandbox, "gz").attributes["plan"] == "pro"
    r = post(sandbox, "/segment/v1/batch", None, raw=b"not gzip", headers={"content-encoding": "gzip"})
    assert r.status_code == 400


def test_batch_context_applies_to_every_item(sandbox):
    post(
        sandbox,
        "/segment/v1/batch",
        {
            "context": {"device": {"token": "tok", "type": "android"}},
            "batch": [{"type": "track", "userId": "u1", "event": "Application Installed"}],
        },
    )
    assert set(person(sandbox, "u1").devices) == {"tok"}


def test_batch_context_merges_under_an_items_own_context(sandbox):
    # Regression: an item with any context of its own lost the batch-level device token.
    post(
        sandbox,
        "/segment/v1/batch",
        {
            "context": {"device": {"token": "tok-b", "type": "ios"}},
            "integrations": {"All": True},
            "batch": [
                {
                    "type": "track",
                    "userId": "u2",
                    "event": "Application Installed",
                    "context": {"library": {"name": "analytics-node"}},
                }
            ],
        },
    )
    assert set(person(sandbox, "u2").devices) == {"tok-b"}


def test_destination_drops_are_reported(sandbox):
    post(
        sandbox,
        "/segment/v1/batch",
        {
            "batch": [
                {"type": "page", "userId": "u1", "name": "Pricing", "properties": {}},
                {
                    "type": "track",
                    "userId": "u1",
                    "event": "Application Installed",
                    "context": {"device": {"type": "ios"}},
                },
                {
                    "type": "track",
                    "anonymousId": "a1",
                    "event": "Application Opened",
                    "context": {"device": {"token": "t", "type": "ios"}},
                },
            ]
        },
    )
    got = reasons(sandbox)
    assert got[0] == (
        "MESSAGE_REJECTED: trackPageView requires properties.url (the page URL becomes the Customer.io page name)"
    )
    assert got[1].startswith("MESSAGE_REJECTED: createUpdateDevice requires context.device.token")
    assert got[2].startswith("MESSAGE_REJECTED: createUpdateDevice requires userId")


def test_customerio_limits_fail_delivery_with_the_documented_message(sandbox):
    post(sandbox, "/segment/v1/identify", {"userId": "u1", "traits": {"bio": "z" * 1001}})
    assert reasons(sandbox) == ["CUSTOMERIO_400: value for attribute 'bio' cannot be longer than 1000 bytes"]


def test_anonymous_events_join_the_person_on_identify(sandbox):
    post(
        sandbox,
        "/segment/v1/batch",
        {
            "batch": [
                {"type": "page", "anonymousId": "anon-9", "properties": {"url": "https://x.test/pricing"}},
                {"type": "track", "anonymousId": "anon-9", "event": "Viewed Pricing"},
            ]
        },
    )
    post(
        sandbox,
        "/segment/v1/identify",
        {"userId": "u9", "anonymousId": "anon-9", "traits": {"email": "u9@example.com"}},
    )
    names = set(sandbox.state.workspace.events(person(sandbox, "u9")))
    assert {("page", "https://x.test/pricing"), ("event", "Viewed Pricing")} <= names


def test_delivery_view_has_action_operations_and_filters(sandbox):
    post(
        sandbox,
        "/segment/v1/batch",
        {
            "batch": [
                {"type": "track", "userId": "a", "event": "One", "messageId": "m-a"},
                {"type": "track", "userId": "b", "event": "Two", "messageId": "m-b"},
            ]
        },
    )
    [row] = deliveries(sandbox, userId="b")["deliveries"]
    assert row["messageId"] == "m-b" and row["event"] == "Two" and row["action"] == "trackEvent"
    assert row["operations"][0]["identifiers"] == {"id": "b"}
    assert deliveries(sandbox, messageId="m-a")["deliveries"][0]["userId"] == "a"


def test_wrong_region_prefix_is_200_and_dropped(sandbox):
    r = post(sandbox, "/segment-eu/v1/track", {"userId": "u1", "event": "E"})
    assert r.status_code == 200
    assert reasons(sandbox) == ["wrong_region"]


def test_eu_workspace_accepts_on_eu_prefix_only(sandbox_factory):
    sb = sandbox_factory(region="eu")
    post(sb, "/segment-eu/v1/track", {"userId": "u1", "event": "E"})
    post(sb, "/segment/v1/track", {"userId": "u1", "event": "E"})
    assert reasons(sb) == [None, "wrong_region"]


def test_destination_not_connected(sandbox_factory):
    sb = sandbox_factory(segment_destination_enabled=False)
    assert post(sb, "/segment/v1/track", {"userId": "u1", "event": "E"}).status_code == 200
    assert reasons(sb) == ["destination not connected"]
    assert sb.state.workspace.people == {}
    connected = HTTP.get(
        f"{sb.url}/segment-api/sources/{defaults.SEGMENT_SOURCE_ID}/connected-destinations",
        headers={"authorization": f"Bearer {defaults.PUBLIC_API_TOKEN}"},
    ).json()
    assert connected["data"]["destinations"] == []


def test_requests_listing_never_shows_keys(sandbox):
    post(sandbox, "/segment/v1/track", {"writeKey": KEY, "userId": "u1", "event": "E"})
    HTTP.get(f"{sandbox.url}/segment-cdn/v1/projects/{KEY}/settings")
    listing = HTTP.get(sandbox.url + "/_sandbox/requests").text
    assert KEY not in listing and "authorization" not in listing.lower()
    rows = json.loads(listing)["requests"]
    assert [r["route"] for r in rows] == ["segment.track", "segment_cdn.settings"]
    assert rows[1]["path"] == "/segment-cdn/v1/projects/<write_key>/settings"


def test_requests_listing_shows_drops(sandbox):
    post(
        sandbox,
        "/segment/v1/batch",
        {"batch": [{"type": "track", "userId": "u"}, {"type": "track", "userId": "u", "event": "E"}]},
    )
    [row] = HTTP.get(sandbox.url + "/_sandbox/requests").json()["requests"]
    assert (row["status"], row["messages"], row["dropped"], row["drops"]) == (200, 2, 1, ["event_not_defined"])


def test_record_file_has_accepted_messages_once_without_write_key(sandbox_factory, tmp_path):
    path = tmp_path / "accepted.ndjson"
    sb = sandbox_factory(record=str(path))
    msg = {"type": "track", "userId": "u1", "event": "E", "messageId": "r1"}
    post(sb, "/segment/v1/batch", {"writeKey": KEY, "batch": [msg, msg]}, auth=None)
    post(sb, "/segment/v1/identify", {"writeKey": KEY, "userId": "u1"}, auth=None)
    post(sb, "/segment/v1/track", {"userId": "u1", "event": "E"}, auth=("bad", ""))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [m["type"] for m in lines] == ["track", "identify"]
    assert lines[0]["messageId"] == "r1" and lines[1]["messageId"]
    assert KEY not in path.read_text()


def test_settings_lookup(sandbox):
    r = HTTP.get(f"{sandbox.url}/segment-cdn/v1/projects/{KEY}/settings")
    assert r.status_code == 200 and "Customer.io (Actions)" in r.json()["integrations"]
    r = HTTP.get(f"{sandbox.url}/segment-cdn/v1/projects/wrong/settings")
    assert (r.status_code, r.text) == (404, "Invalid path or write key provided.")


def test_public_api(sandbox):
    auth = {"authorization": f"Bearer {defaults.PUBLIC_API_TOKEN}"}
    ws = HTTP.get(sandbox.url + "/segment-api/", headers=auth)
    assert ws.json() == {"data": {"workspace": defaults.SEGMENT_WORKSPACE}}
    sources = HTTP.get(sandbox.url + "/segment-api/sources", headers=auth).json()["data"]["sources"]
    assert sources[0]["writeKeys"] == [KEY]
    dests = HTTP.get(
        f"{sandbox.url}/segment-api/sources/{sources[0]['id']}/connected-destinations", headers=auth
    ).json()["data"]["destinations"]
    assert dests[0]["enabled"] and dests[0]["metadata"]["name"] == "Customer.io (Actions)"
    assert HTTP.get(sandbox.url + "/segment-api/sources/nope/connected-destinations", headers=auth).status_code == 404
    bad = HTTP.get(sandbox.url + "/segment-api/", headers={"authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["errors"][0]["type"] == "unauthorized"
    assert HTTP.get(sandbox.url + "/segment-api-eu/", headers=auth).status_code == 401


def test_reset_forgets_everything(sandbox):
    post(sandbox, "/segment/v1/track", {"userId": "u1", "event": "E", "messageId": "x"})
    assert HTTP.post(sandbox.url + "/_sandbox/reset").json() == {"ok": True}
    assert deliveries(sandbox)["deliveries"] == []
    post(sandbox, "/segment/v1/track", {"userId": "u1", "event": "E", "messageId": "x"})
    assert reasons(sandbox) == [None]  # dedupe was reset too


def test_health_and_unknown_path(sandbox):
    h = HTTP.get(sandbox.url + "/_sandbox/health").json()
    assert h["ok"] is True and h["services"]["segment"] == "/segment"
    assert HTTP.get(sandbox.url + "/nope").status_code == 404


def test_queue_drains_when_idle_without_a_read(sandbox):
    import time

    post(
        sandbox,
        "/segment/v1/batch",
        {"batch": [{"type": "track", "userId": "idle", "event": "E", "messageId": f"i{i}"} for i in range(50)]},
    )
    # Accepted messages wait in a queue; the server maps them in its idle time.
    deadline = time.monotonic() + 10
    while HTTP.get(sandbox.url + "/_sandbox/health").json()["pending"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert HTTP.get(sandbox.url + "/_sandbox/health").json()["pending"] == 0
    assert sandbox.state.counts["delivered"] == 50


def test_every_accepted_message_is_accounted_for(sandbox):
    batches = [
        [{"type": "track", "userId": f"u{j}", "event": "E", "messageId": f"m{j}-{i}"} for i in range(100)]
        for j in range(20)
    ]
    for batch in batches:
        post(sandbox, "/segment/v1/batch", {"batch": batch + batch[:5]})  # 5 duplicates each
    summary = deliveries(sandbox)["summary"]
    assert summary == {
        "received": 2100,
        "delivered": 2000,
        "dropped": 100,
        "drop_reasons": {"duplicate_message_id": 100},
    }

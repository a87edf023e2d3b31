"""The sandbox's segments, campaigns, actions and messages hold to Customer.io's
published contract (schemas/app-api-campaigns.json), page as documented, and
the App API answers 429 with `Retry-After: 1` past 10 requests per second."""

from __future__ import annotations

import time

import httpx

from cdpio_cli.sandbox import defaults
from tests.contracts._schemas import APP, CAMPAIGNS, limits, problems

TRACK_AUTH = (defaults.SITE_ID, defaults.TRACK_API_KEY)
APP_AUTH = {"authorization": f"Bearer {defaults.APP_API_KEY}"}
HTTP = httpx.Client(timeout=30)

WORKSPACE = (
    """\
segments:
  - {id: 1, name: Trial users, conditions: [{attribute: is_trial, eq: "true"}]}
  - {id: 2, name: Signed up users, conditions: [{event: Signed Up}]}
  - {id: 3, name: Big accounts, state: build, conditions: [{attribute: seats, exists: true}]}
campaigns:
  - id: 10
    name: Onboarding
    trigger: {event: Signed Up}
    actions:
"""
    + "".join(
        f"      - {{id: {100 + i}, type: email, sending_state: {'draft' if i == 11 else 'automatic'}}}\n"
        for i in range(12)
    )
    + """\
  - {id: 11, name: Trial nurture, trigger: {segment: 1}, filter_segments: [2],
     actions: [{id: 200, type: push, sending_state: automatic, failure_message: "no device"}]}
  - {id: 12, name: Paused, state: stopped, active: false, trigger: {event: Signed Up},
     actions: [{id: 300, type: email, sending_state: automatic}]}
"""
)


def _get(sb, path, **params):
    return HTTP.get(f"{sb.url}/app{path}", headers=APP_AUTH, params=params)


def _holds(pointer: str, response: httpx.Response, *, doc=CAMPAIGNS, status=200) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert problems(doc, pointer, body) == [], (response.request.url, body)
    return body


def _start(sandbox_factory, tmp_path, **options):
    path = tmp_path / "workspace.yaml"
    path.write_text(WORKSPACE)
    return sandbox_factory(workspace=str(path), **options)


def test_segments_campaigns_actions_and_messages_answer_the_documented_shapes(sandbox_factory, tmp_path):
    sb = _start(sandbox_factory, tmp_path, app_api_rate=0)
    r = HTTP.put(
        f"{sb.url}/track/api/v1/customers/u1", json={"is_trial": True, "email": "u1@example.com"}, auth=TRACK_AUTH
    )
    assert r.status_code == 200
    assert (
        HTTP.post(f"{sb.url}/track/api/v1/customers/u1/events", json={"name": "Signed Up"}, auth=TRACK_AUTH).status_code
        == 200
    )

    segments = _holds("/$defs/segmentsResponse", _get(sb, "/v1/segments"))["segments"]
    assert {s["id"]: s["state"] for s in segments} == {1: "finished", 2: "finished", 3: "build"}
    assert _holds("/$defs/segmentResponse", _get(sb, "/v1/segments/1"))["segment"]["name"] == "Trial users"
    # A segment still building lists nobody yet; the finished ones list the person.
    mine = _holds("/$defs/personSegmentsResponse", _get(sb, "/v1/customers/u1/segments"))["segments"]
    assert sorted(s["id"] for s in mine) == [1, 2]
    members = _holds("/$defs/membershipResponse", _get(sb, "/v1/segments/1/membership"))
    assert members["ids"] == ["u1"] and "next" not in members
    assert _holds("/$defs/segmentCountResponse", _get(sb, "/v1/segments/1/customer_count"))["count"] == 1

    campaigns = _holds("/$defs/campaignsResponse", _get(sb, "/v1/campaigns"))["campaigns"]
    by_id = {c["id"]: c for c in campaigns}
    assert by_id[10]["event_name"] == "Signed Up" and "trigger_segment_ids" not in by_id[10]
    assert by_id[11]["trigger_segment_ids"] == [1] and by_id[11]["filter_segment_ids"] == [2]
    assert (by_id[12]["state"], by_id[12]["active"]) == ("stopped", False)
    assert _holds("/$defs/campaignResponse", _get(sb, "/v1/campaigns/11"))["campaign"]["name"] == "Trial nurture"

    # Actions: at most 10 a page, then `next`.
    first = _holds("/$defs/campaignActionsResponse", _get(sb, "/v1/campaigns/10/actions"))
    assert len(first["actions"]) == limits(CAMPAIGNS)["actions_page_max"] and first["next"]
    second = _holds("/$defs/campaignActionsResponse", _get(sb, "/v1/campaigns/10/actions", start=first["next"]))
    assert [a["id"] for a in second["actions"]] == [110, 111] and "next" not in second
    assert second["actions"][-1]["sending_state"] == "draft"

    # Messages: one per action that is not off; metrics by sending_state.
    messages = _holds("/$defs/personMessagesResponse", _get(sb, "/v1/customers/u1/messages"))["messages"]
    by_action = {m["action_id"]: m for m in messages}
    assert set(by_action) == {*range(100, 112), 200}  # the stopped campaign sent nothing
    assert set(by_action[100]["metrics"]) == {"created", "sent", "delivered"}
    assert set(by_action[111]["metrics"]) == {"created", "drafted"}
    assert by_action[200]["failure_message"] == "no device" and "failed" in by_action[200]["metrics"]
    # Paging: limit and the opaque cursor walk every message once.
    seen, start = [], None
    while True:
        page = _holds(
            "/$defs/personMessagesResponse",
            _get(sb, "/v1/customers/u1/messages", limit=5, **({"start": start} if start else {})),
        )
        seen += [m["id"] for m in page["messages"]]
        start = page.get("next")
        if not start:
            break
    assert sorted(seen) == sorted(m["id"] for m in messages)
    # Documented errors.
    _holds("/$defs/errorEnvelope", _get(sb, "/v1/segments/99"), doc=APP, status=404)
    _holds("/$defs/errorEnvelope", _get(sb, "/v1/campaigns/99/actions"), doc=APP, status=404)
    _holds("/$defs/errorEnvelope", _get(sb, "/v1/customers/nobody/messages"), doc=APP, status=404)
    _holds(
        "/$defs/errorEnvelope",
        _get(sb, "/v1/customers/u1/messages", limit=limits(CAMPAIGNS)["messages_limit_max"] + 1),
        doc=APP,
        status=400,
    )
    _holds("/$defs/errorEnvelope", _get(sb, "/v1/customers/u1/messages", start="bogus"), doc=APP, status=400)


def test_the_app_api_answers_429_with_retry_after_past_ten_requests_a_second(sandbox_factory, tmp_path):
    sb = _start(sandbox_factory, tmp_path)  # the default: Customer.io's 10 requests/s
    rate = limits(CAMPAIGNS)["requests_per_second"]
    started = time.monotonic()
    answers = [_get(sb, "/v1/segments") for _ in range(rate + 3)]
    if time.monotonic() - started < 1.0:  # a slow machine may spread them over > 1 s
        limited = [r for r in answers if r.status_code == 429]
        assert limited, [r.status_code for r in answers]
        assert limited[0].headers["retry-after"] == str(limits(CAMPAIGNS)["retry_after_seconds"])
        body = _holds("/$defs/errorEnvelope", limited[0], doc=APP, status=429)
        assert body["errors"][0]["status"] == "429" and "rate limited" in body["errors"][0]["detail"]
    # The older App API routes share the limit; a second later it is open again.
    time.sleep(1.1)
    started = time.monotonic()
    answers = [_get(sb, "/v1/workspaces").status_code for _ in range(rate + 1)]
    if time.monotonic() - started < 1.0:
        assert answers == [200] * rate + [429]
    time.sleep(1.1)
    assert _get(sb, "/v1/segments").status_code == 200

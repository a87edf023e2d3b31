"""Every App API response the sandbox emulates holds to Customer.io's published
contract (tests/contracts/schemas/app-api.json, journeys-track.subset.json),
with event data off (the default) and on (`--activity-data properties`).

The client side of the same contract: verify.py reads only what these schemas
promise (tests/test_verify.py drives it against this sandbox).
"""

from __future__ import annotations

import time

import httpx
import pytest

from cdpio_cli.sandbox import defaults
from tests.contracts._schemas import APP, TRACK, limits, pointer_for, problems

TRACK_AUTH = (defaults.SITE_ID, defaults.TRACK_API_KEY)
APP_AUTH = {"authorization": f"Bearer {defaults.APP_API_KEY}"}
HTTP = httpx.Client(timeout=30)  # one pooled client: a fresh one per call costs more than the call


def _seed(sb) -> None:
    """One person with every kind of activity the sandbox records."""
    now = int(time.time())
    ops = [
        {
            "type": "person",
            "action": "identify",
            "identifiers": {"id": "c1"},
            "attributes": {"email": "c1@example.com", "plan": "free", "seats": 3, "trial": True},
        },
        {"type": "person", "action": "identify", "identifiers": {"id": "c1"}, "attributes": {"plan": "pro"}},
        {
            "type": "person",
            "action": "event",
            "identifiers": {"id": "c1"},
            "name": "Signed Up",
            "attributes": {"cdpio_run_id": "r1", "nested": {"a": [1, 2]}},
            "timestamp": now - 5,
        },
        {
            "type": "person",
            "action": "page",
            "identifiers": {"id": "c1"},
            "name": "https://x.test/pricing",
            "attributes": {"cdpio_run_id": "r1"},
        },
        {"type": "person", "action": "screen", "identifiers": {"id": "c1"}, "name": "Home"},
        {
            "type": "person",
            "action": "add_device",
            "identifiers": {"id": "c1"},
            "device": {"token": "tok-1", "platform": "ios", "attributes": {"app_version": "1.2"}},
        },
        {"type": "person", "action": "event", "identifiers": {"anonymous_id": "anon-1"}, "name": "Viewed"},
        {"type": "person", "action": "identify", "identifiers": {"id": "c1"}, "attributes": {"anonymous_id": "anon-1"}},
        {
            "type": "person",
            "action": "identify",
            "identifiers": {"id": "c2"},
            "attributes": {"email": "c2@example.com"},
        },
        # c2's email is taken: an Attribute Update Failure on c1
        {
            "type": "person",
            "action": "identify",
            "identifiers": {"id": "c1"},
            "attributes": {"email": "c2@example.com"},
        },
        {"type": "person", "action": "merge", "primary": {"id": "c1"}, "secondary": {"id": "c2"}},
    ] + [
        {"type": "person", "action": "event", "identifiers": {"id": "c1"}, "name": f"E{i}", "timestamp": now - 100 + i}
        for i in range(23)
    ]
    r = HTTP.post(f"{sb.url}/track/api/v2/batch", json={"batch": ops}, auth=TRACK_AUTH)
    assert r.status_code == 200, r.text


def _get(sb, path, *, headers=APP_AUTH, prefix="/app", **params):
    return HTTP.get(sb.url + prefix + path, headers=headers, params=params)


def _holds(pointer: str, response: httpx.Response, *, doc=APP, status=200) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert problems(doc, pointer, body) == [], (response.request.url, body)
    return body


@pytest.mark.parametrize("activity_data", ["none", "properties"])
def test_every_emulated_app_api_route_answers_the_documented_shape(sandbox, sandbox_factory, activity_data):
    sb = sandbox if activity_data == "none" else sandbox_factory(activity_data="properties", app_api_rate=0)
    _seed(sb)
    _holds("/$defs/workspacesResponse", _get(sb, "/v1/workspaces"))
    found = _holds("/$defs/customersByEmailResponse", _get(sb, "/v1/customers", email="c1@example.com"))
    assert found["results"]
    assert _holds("/$defs/customersByEmailResponse", _get(sb, "/v1/customers", email="no@example.com"))["results"] == []
    cio_id = found["results"][0]["cio_id"]
    for ref, id_type in (("c1", "id"), ("c1@example.com", "email"), (cio_id, "cio_id")):
        customer = _holds("/$defs/attributesResponse", _get(sb, f"/v1/customers/{ref}/attributes", id_type=id_type))[
            "customer"
        ]
        assert customer["devices"] and customer["identifiers"]["cio_id"] == cio_id

    # Activities: every page of every type, following the cursor.
    types: set[str] = set()
    start, pages = None, 0
    while True:
        body = _holds(
            "/$defs/activitiesResponse", _get(sb, "/v1/customers/c1/activities", **({"start": start} if start else {}))
        )
        pages += 1
        assert len(body["activities"]) <= limits()["activities_limit_default"]
        types |= {a["type"] for a in body["activities"]}
        start = body.get("next")
        if not start:
            break
    assert pages >= 4
    assert {
        "event",
        "page",
        "screen",
        "attribute_change",
        "failed_attribute_change",
        "device_change",
        "anon_merge",
        "profile_merge",
    } <= types
    everything = _holds(
        "/$defs/activitiesResponse", _get(sb, "/v1/customers/c1/activities", limit=limits()["activities_limit_max"])
    )
    events = [a for a in everything["activities"] if a["type"] in ("event", "page", "screen")]
    with_data = [a for a in events if "data" in a]
    # Event data is not documented: only the opt-in sandbox returns it.
    assert bool(with_data) == (activity_data == "properties")
    page = next(a for a in events if a["type"] == "page")
    assert page["url"] == "https://x.test/pricing" and "name" not in page

    # Documented errors: 400 (limit over the max, a bad cursor, a bad id_type), 401, 404.
    over = _get(sb, "/v1/customers/c1/activities", limit=limits()["activities_limit_max"] + 1)
    _holds("/$defs/errorEnvelope", over, status=400)
    _holds("/$defs/errorEnvelope", _get(sb, "/v1/customers/c1/activities", start="bogus"), status=400)
    _holds("/$defs/errorEnvelope", _get(sb, "/v1/customers/c1/attributes", id_type="phone"), status=400)
    _holds("/$defs/errorEnvelope", _get(sb, "/v1/customers/nobody/attributes"), status=404)
    _holds("/$defs/errorEnvelope", _get(sb, "/v1/workspaces", headers={"authorization": "Bearer x"}), status=401)


def test_every_object_carries_a_field_the_schema_does_not_list(sandbox):
    # "Fields get added without notice": the sandbox adds one so every client
    # test proves that cdpio ignores unknown fields.
    _seed(sandbox)
    customer = _get(sandbox, "/v1/customers/c1/attributes").json()["customer"]
    activities = _get(sandbox, "/v1/customers/c1/activities").json()["activities"]
    workspace = _get(sandbox, "/v1/workspaces").json()["workspaces"][0]
    result = _get(sandbox, "/v1/customers", email="c1@example.com").json()["results"][0]
    for obj in (customer, *activities, workspace, result, *customer["devices"]):
        assert set(obj) - {
            "id",
            "type",
            "timestamp",
            "customer_id",
            "customer_identifiers",
            "name",
            "url",
            "data",
            "delivery_id",
            "delivery_type",
            "identifiers",
            "attributes",
            "devices",
            "timestamps",
            "unsubscribed",
            "platform",
            "last_used",
            "email",
            "cio_id",
            "messages_sent",
            "billable_messages_sent",
            "people",
            "objects",
            "object_types",
        }, obj


def test_track_region_answer_matches_journeys_track(sandbox):
    pointer = pointer_for(
        "/api/v1/accounts/region", "get", "responses", "200", "content", "application~1json", "schema"
    )
    r = HTTP.get(f"{sandbox.url}/track/api/v1/accounts/region", auth=TRACK_AUTH)
    body = r.json()
    # One deliberate deviation (docs/contracts.md): `url` names the sandbox's own
    # Track prefix, not the real host the enum lists; cdpio reads only `region`.
    assert body["url"] == sandbox.url + "/track"
    assert problems(TRACK, pointer, {**body, "url": "https://track.customer.io"}) == []

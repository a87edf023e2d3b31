"""Customer.io Track (v1, v2), App API reads and Pipelines in the sandbox, over raw HTTP.

Statuses and messages from reference/customerio-api.md §1.4-1.5, §2, §4, §5.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from cdpio_cli.sandbox import defaults

# One pooled client: a fresh httpx client per call costs more than the call.
HTTP = httpx.Client(timeout=30)

TRACK_AUTH = (defaults.SITE_ID, defaults.TRACK_API_KEY)
APP = {"authorization": f"Bearer {defaults.APP_API_KEY}"}
UNAUTHORIZED = {"meta": {"error": "Unauthorized request"}}


def track(sb, method, path, body=None, *, auth=TRACK_AUTH, prefix="/track", **kw):
    content = None if body is None else orjson.dumps(body)
    return HTTP.request(
        method, sb.url + prefix + path, content=content, auth=auth, headers={"content-type": "application/json"}, **kw
    )


def app(sb, path, *, headers=APP, prefix="/app", **params):
    return HTTP.get(sb.url + prefix + path, headers=headers, params=params)


# --- Track v1 ---------------------------------------------------------------


def test_region_endpoint(sandbox):
    r = track(sandbox, "GET", "/api/v1/accounts/region")
    assert r.json() == {"url": sandbox.url + "/track", "region": "us", "environment_id": defaults.WORKSPACE_ID}


@pytest.mark.parametrize(
    "auth",
    [
        ("wrong", defaults.TRACK_API_KEY),
        (defaults.SITE_ID, "wrong"),
        (defaults.SITE_ID, defaults.TRACK_API_KEY + " "),
        None,
    ],
)
def test_bad_credentials_are_401(sandbox, auth):
    r = track(sandbox, "GET", "/api/v1/accounts/region", auth=auth)
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
    r = track(sandbox, "PUT", "/api/v1/customers/u1", {"plan": "pro"}, auth=auth)
    assert r.status_code == 401


def test_eu_workspace_region_redirect_and_us_prefix(sandbox_factory):
    sb = sandbox_factory(region="eu")
    for prefix in ("/track", "/track-eu"):  # answers on either host
        r = track(sb, "GET", "/api/v1/accounts/region", prefix=prefix)
        assert r.json()["url"] == sb.url + "/track-eu" and r.json()["region"] == "eu"
    r = track(sb, "PUT", "/api/v1/customers/u1", {"plan": "pro"})
    assert r.status_code == 307
    assert r.headers["location"] == sb.url + "/track-eu/api/v1/customers/u1"
    assert track(sb, "PUT", "/api/v1/customers/u1", {"plan": "pro"}, prefix="/track-eu").status_code == 200
    # The App API is not redirected: wrong region is 401.
    assert app(sb, "/v1/workspaces").status_code == 401
    assert app(sb, "/v1/workspaces", prefix="/app-eu").status_code == 200


def test_us_workspace_on_eu_track_host_is_401(sandbox):
    r = track(sandbox, "PUT", "/api/v1/customers/u1", {"plan": "pro"}, prefix="/track-eu")
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


def test_identify_then_read_attributes(sandbox):
    assert (
        track(
            sandbox,
            "PUT",
            "/api/v1/customers/u1",
            {"email": "U1@example.com", "plan": "pro", "seats": 3, "trial": True},
        ).json()
        == {}
    )
    body = app(sandbox, "/v1/customers/u1/attributes").json()["customer"]
    assert body["identifiers"]["email"] == "U1@example.com"
    assert body["attributes"]["seats"] == "3" and body["attributes"]["trial"] == "true"
    by_email = app(sandbox, "/v1/customers", email="u1@example.com").json()["results"]
    assert [{k: r[k] for k in ("email", "id", "cio_id")} for r in by_email] == [
        {"email": "U1@example.com", "id": "u1", "cio_id": body["identifiers"]["cio_id"]}
    ]
    cio = body["identifiers"]["cio_id"]
    assert app(sandbox, f"/v1/customers/{cio}/attributes", id_type="cio_id").status_code == 200
    assert app(sandbox, "/v1/customers/U1@example.com/attributes", id_type="email").status_code == 200


@pytest.mark.parametrize(
    "body, message",
    [
        ({f"a{i}": i for i in range(301)}, "cannot identify more than 300 attributes in one request"),
        ({"n" * 151: 1}, "attribute name cannot be longer than 150 bytes"),
        ({"bio": "é" * 501}, "value for attribute 'bio' cannot be longer than 1000 bytes"),
        ({"id": 5}, "id attribute must be a string value"),
        ({"id": ""}, "id attribute cannot be an empty string"),
    ],
)
def test_identify_limits(sandbox, body, message):
    r = track(sandbox, "PUT", "/api/v1/customers/u1", body)
    assert (r.status_code, r.json()) == (400, {"meta": {"error": message}})
    assert sandbox.state.workspace.find("id", "u1") is None


def test_identify_id_too_long(sandbox):
    r = track(sandbox, "PUT", "/api/v1/customers/" + "x" * 151, {})
    assert r.status_code == 400 and "150 bytes" in r.json()["meta"]["error"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"name": ""}, "event name must not be blank"),
        ({"name": "   "}, "event name must not be blank"),
        ({"name": "n" * 101}, "event name cannot be longer than 100 bytes"),
        ({"name": "E", "data": ""}, 'event data must be a hash (e.g., send "data":{} instead of "data":"")'),
        ({"name": "E", "data": {"blob": "x" * 100_000}}, "event data cannot be longer than 100000 bytes"),
    ],
)
def test_event_limits(sandbox, body, message):
    r = track(sandbox, "POST", "/api/v1/customers/u1/events", body)
    assert (r.status_code, r.json()) == (400, {"meta": {"errors": [message]}})


def test_events_and_activities_filters(sandbox):
    for i, (etype, name) in enumerate(
        [("event", "Signed Up"), ("page", "https://x.test/"), ("screen", "Home"), ("event", "Paid")]
    ):
        r = track(
            sandbox,
            "POST",
            "/api/v1/customers/u1/events",
            {"name": name, "type": etype, "timestamp": 1_700_000_000 + i, "data": {"i": i}},
        )
        assert r.status_code == 200
    acts = app(sandbox, "/v1/customers/u1/activities").json()
    assert "next" not in acts  # one page: no cursor
    events = [a for a in acts["activities"] if a["type"] in ("event", "page", "screen")]
    # newest first; the page URL in `url`, names only on events and screens
    assert [a.get("name") or a.get("url") for a in events] == ["Paid", "Home", "https://x.test/", "Signed Up"]
    page = next(a for a in events if a["type"] == "page")
    assert "name" not in page and page["url"] == "https://x.test/"
    one = app(sandbox, "/v1/customers/u1/activities", type="event", name="Signed Up").json()["activities"]
    # Event data is undocumented: off by default (see test_activity_data_properties).
    assert len(one) == 1 and "data" not in one[0] and one[0]["customer_id"] == "u1"
    assert "delivery_id" not in one[0] and one[0]["customer_identifiers"]["id"] == "u1"
    assert len(app(sandbox, "/v1/customers/u1/activities", type="event", limit=1).json()["activities"]) == 1
    assert app(sandbox, "/v1/customers/u1/activities", limit=101).status_code == 400


def test_activity_data_properties(sandbox_factory):
    sb = sandbox_factory(activity_data="properties")
    track(sb, "POST", "/api/v1/customers/u1/events", {"name": "Paid", "data": {"plan": "pro"}})
    track(sb, "POST", "/api/v1/customers/u1/events", {"name": "https://x.test/", "type": "page", "data": {"a": 1}})
    acts = app(sb, "/v1/customers/u1/activities").json()["activities"]
    assert {a["type"]: a.get("data") for a in acts} == {"event": {"plan": "pro"}, "page": {"a": 1}}


def test_attribute_change_data_is_from_to(sandbox):
    track(sandbox, "PUT", "/api/v1/customers/u1", {"plan": "free", "seats": 3})
    track(sandbox, "PUT", "/api/v1/customers/u1", {"plan": "pro"})
    changes = app(sandbox, "/v1/customers/u1/activities", type="attribute_change", name="plan").json()["activities"]
    assert [a["data"] for a in changes] == [
        {"plan": {"from": "free", "to": "pro"}},
        {"plan": {"from": "", "to": "free"}},
    ]
    seats = app(sandbox, "/v1/customers/u1/activities", type="attribute_change", name="seats").json()
    assert seats["activities"][0]["data"] == {"seats": {"from": "", "to": "3"}}


def test_activities_page_with_an_opaque_cursor(sandbox):
    # Regression: `start` was ignored and `next` was always "".
    for i in range(25):
        track(sandbox, "POST", "/api/v1/customers/u1/events", {"name": f"E{i}", "timestamp": 1_700_000_000 + i})
    seen, start, pages = [], None, 0
    while True:
        params = {"type": "event"} | ({"start": start} if start else {})
        body = app(sandbox, "/v1/customers/u1/activities", **params).json()
        pages += 1
        assert len(body["activities"]) <= 10  # the default limit
        seen += [a["name"] for a in body["activities"]]
        start = body.get("next")
        if not start:
            break
    assert pages == 3 and seen == [f"E{i}" for i in range(24, -1, -1)]  # newest first, no repeats
    big = app(sandbox, "/v1/customers/u1/activities", type="event", limit=100).json()
    assert len(big["activities"]) == 25 and "next" not in big
    assert app(sandbox, "/v1/customers/u1/activities", limit=0).status_code == 400
    bad = app(sandbox, "/v1/customers/u1/activities", start="not-a-cursor")
    assert bad.status_code == 400 and bad.json()["errors"][0]["status"] == "400"


def test_event_id_dedupes(sandbox):
    for _ in range(2):
        track(sandbox, "POST", "/api/v1/customers/u1/events", {"name": "Paid", "id": "01HX"})
    assert len(app(sandbox, "/v1/customers/u1/activities", type="event").json()["activities"]) == 1


def test_anonymous_events_merge_on_identify(sandbox):
    track(sandbox, "POST", "/api/v1/events", {"name": "Viewed", "anonymous_id": "anon-1"})
    track(sandbox, "POST", "/api/v1/events", {"name": "Invite"})  # no anonymous_id: kept nowhere
    track(sandbox, "PUT", "/api/v1/customers/u1", {"anonymous_id": "anon-1"})
    names = [a["name"] for a in app(sandbox, "/v1/customers/u1/activities", type="event").json()["activities"]]
    assert names == ["Viewed"]


def test_devices_add_and_delete(sandbox):
    r = track(
        sandbox,
        "PUT",
        "/api/v1/customers/u1/devices",
        {"device": {"id": "tok-1", "platform": "ios", "last_used": 1700000000}},
    )
    assert r.status_code == 200
    devices = app(sandbox, "/v1/customers/u1/attributes").json()["customer"]["devices"]
    assert [(d["id"], d["platform"]) for d in devices] == [("tok-1", "ios")]
    assert track(sandbox, "DELETE", "/api/v1/customers/u1/devices/tok-1").status_code == 200
    assert app(sandbox, "/v1/customers/u1/attributes").json()["customer"]["devices"] == []
    r = track(sandbox, "PUT", "/api/v1/customers/u1/devices", {"device": {"id": "t"}})
    assert (r.status_code, r.json()) == (400, {"meta": {"errors": ["device platform is required"]}})


def test_delete_suppress_unsuppress(sandbox):
    track(sandbox, "PUT", "/api/v1/customers/u1", {"plan": "pro"})
    assert track(sandbox, "DELETE", "/api/v1/customers/u1").status_code == 200
    assert app(sandbox, "/v1/customers/u1/attributes").status_code == 404
    assert track(sandbox, "DELETE", "/api/v1/customers/never").status_code == 200
    track(sandbox, "PUT", "/api/v1/customers/u2", {"plan": "pro"})
    assert track(sandbox, "POST", "/api/v1/customers/u2/suppress").status_code == 200
    track(sandbox, "PUT", "/api/v1/customers/u2", {"plan": "pro"})  # blocked while suppressed
    assert app(sandbox, "/v1/customers/u2/attributes").status_code == 404
    track(sandbox, "POST", "/api/v1/customers/u2/unsuppress")
    track(sandbox, "PUT", "/api/v1/customers/u2", {"plan": "pro"})
    assert app(sandbox, "/v1/customers/u2/attributes").status_code == 200


def test_merge_customers(sandbox):
    track(sandbox, "PUT", "/api/v1/customers/primary", {"plan": "pro"})
    track(sandbox, "PUT", "/api/v1/customers/old@example.com", {"source": "ads"})
    r = track(
        sandbox,
        "POST",
        "/api/v1/merge_customers",
        {"primary": {"id": "primary"}, "secondary": {"email": "old@example.com"}},
    )
    assert r.status_code == 200
    attrs = app(sandbox, "/v1/customers/primary/attributes").json()["customer"]["attributes"]
    assert attrs["source"] == "ads" and attrs["email"] == "old@example.com"
    r = track(
        sandbox,
        "POST",
        "/api/v1/merge_customers",
        {"primary": {"id": "a", "email": "a@x.io"}, "secondary": {"id": "b"}},
    )
    assert (r.status_code, r.json()) == (400, {"meta": {"error": "cannot have multiple identifiers"}})


# --- Track v2 ---------------------------------------------------------------


def test_v2_entity(sandbox):
    op = {"type": "person", "action": "identify", "identifiers": {"id": "v2"}, "attributes": {"plan": "pro"}}
    assert track(sandbox, "POST", "/api/v2/entity", op).json() == {}
    r = track(sandbox, "POST", "/api/v2/entity", {**op, "identifiers": {}})
    assert r.status_code == 400 and r.json()["errors"][0]["message"] == "id attribute must be present"
    r = track(sandbox, "POST", "/api/v2/entity", {**op, "attributes": {"x": "y" * 33_000}})
    assert r.status_code == 400


def test_v2_batch_207_with_batch_index(sandbox):
    batch = [
        {"type": "person", "action": "identify", "identifiers": {"id": "b1"}, "attributes": {"a": 1}},
        {"type": "person", "action": "event", "identifiers": {"id": "b1"}, "name": ""},
        {"type": "person", "action": "event", "identifiers": {"id": "b1"}, "name": "Ok"},
        {"type": "person", "action": "identify", "identifiers": {"id": "b2"}, "attributes": {"big": "x" * 33_000}},
    ]
    r = track(sandbox, "POST", "/api/v2/batch", {"batch": batch})
    assert r.status_code == 207
    errors = r.json()["errors"]
    assert [e["batch_index"] for e in errors] == [1, 3]
    assert errors[0]["message"] == "event name must not be blank" and errors[0]["field"] == "name"
    assert {a["name"] for a in app(sandbox, "/v1/customers/b1/activities", type="event").json()["activities"]} == {"Ok"}
    assert track(sandbox, "POST", "/api/v2/batch", {"batch": batch[:1]}).status_code == 200
    assert track(sandbox, "POST", "/api/v2/batch", {"nope": []}).status_code == 400
    big = [
        {
            "type": "person",
            "action": "event",
            "identifiers": {"id": "b1"},
            "name": "E",
            "attributes": {"p": "z" * 30_000},
        }
    ] * 18
    assert track(sandbox, "POST", "/api/v2/batch", {"batch": big}).status_code == 400


# --- App API ----------------------------------------------------------------


def test_app_api_auth_and_404(sandbox):
    r = app(sandbox, "/v1/workspaces", headers={"authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["errors"][0]["status"] == "401"
    ws = app(sandbox, "/v1/workspaces").json()["workspaces"][0]
    assert ws["id"] == defaults.WORKSPACE_ID  # an integer (journeys-app.json listWorkspaces)
    r = app(sandbox, "/v1/customers/ghost/attributes")
    assert (r.status_code, r.json()) == (
        404,
        {"errors": [{"detail": "The customer_id does not exist.", "status": "404"}]},
    )
    assert app(sandbox, "/v1/customers/ghost/activities").status_code == 404
    assert app(sandbox, "/v1/customers", email="nobody@example.com").json()["results"] == []
    assert app(sandbox, "/v1/workspaces", prefix="/app-eu").status_code == 401


# --- Pipelines --------------------------------------------------------------

PIPE_KEY = defaults.PIPELINES_API_KEY


def pipelines(sb, path, body, *, key=PIPE_KEY, bearer=False, strict=False, prefix="/pipelines"):
    headers = {"content-type": "application/json"}
    if strict:
        headers["x-strict-mode"] = "1"
    if bearer:
        headers["authorization"] = f"Bearer {key}"
    return HTTP.post(
        sb.url + prefix + path, content=orjson.dumps(body), headers=headers, auth=None if bearer else (key, "")
    )


def test_pipelines_accepts_basic_and_bearer_and_maps_to_workspace(sandbox):
    assert pipelines(sandbox, "/v1/identify", {"userId": "p1", "traits": {"plan": "pro"}}).json() == {}
    assert pipelines(sandbox, "/v1/track", {"userId": "p1", "event": "Paid"}, bearer=True).status_code == 200
    person = sandbox.state.workspace.find("id", "p1")
    assert person.attributes["plan"] == "pro"
    assert [n for _, n in sandbox.state.workspace.events(person, "event")] == ["Paid"]


def test_pipelines_identify_by_email_only(sandbox):
    pipelines(sandbox, "/v1/identify", {"traits": {"email": "only@example.com"}})
    assert sandbox.state.workspace.find("email", "only@example.com") is not None


def test_pipelines_bad_key_200_unless_strict(sandbox):
    r = pipelines(sandbox, "/v1/track", {"userId": "p1", "event": "E"}, key="bogus")
    assert r.status_code == 200
    r = pipelines(sandbox, "/v1/track", {"userId": "p1", "event": "E"}, key="bogus", strict=True)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    drops = HTTP.get(sandbox.url + "/_sandbox/deliveries").json()["summary"]["drop_reasons"]
    assert drops == {"invalid_api_key": 1}


def test_pipelines_strict_spec_errors_and_oversize(sandbox):
    r = pipelines(sandbox, "/v1/batch", {"batch": [{"type": "track", "userId": "p"}]}, strict=True)
    assert r.status_code == 400 and r.json()["message"].startswith("batch[0]: track message has no event")
    big = {"userId": "p", "event": "E", "properties": {"b": "x" * 33_000}}
    assert pipelines(sandbox, "/v1/track", big).status_code == 200  # "200, but will not go through"
    assert pipelines(sandbox, "/v1/track", big, strict=True).status_code == 400
    drops = HTTP.get(sandbox.url + "/_sandbox/deliveries").json()["summary"]["drop_reasons"]
    assert drops == {"message_too_large": 1}


@pytest.mark.parametrize(
    "call, body",
    [
        ("track", {"userId": "p", "event": "E"}),
        ("identify", {"userId": "p", "traits": {"plan": "pro"}}),
        ("page", {"userId": "p", "name": "Home", "properties": {"url": "https://x.test/"}}),
        ("screen", {"userId": "p", "name": "Home"}),
        ("group", {"userId": "p", "groupId": "g1"}),
        ("alias", {"userId": "p", "previousId": "old"}),
    ],
)
def test_pipelines_strict_per_call_needs_no_type(sandbox, call, body):
    # Regression: strict mode answered 400 "message has no type"; the path sets it
    # (the official Node Pipelines client sends none).
    r = pipelines(sandbox, f"/v1/{call}", body, strict=True)
    assert r.status_code == 200, r.text
    [row] = HTTP.get(sandbox.url + "/_sandbox/deliveries").json()["deliveries"]
    assert row["type"] == call


def test_pipelines_wrong_region(sandbox):
    assert pipelines(sandbox, "/v1/track", {"userId": "p", "event": "E"}, prefix="/pipelines-eu").status_code == 200
    assert (
        pipelines(sandbox, "/v1/track", {"userId": "p", "event": "E"}, prefix="/pipelines-eu", strict=True).status_code
        == 401
    )
    assert HTTP.get(sandbox.url + "/_sandbox/deliveries").json()["summary"]["drop_reasons"] == {"wrong_region": 1}

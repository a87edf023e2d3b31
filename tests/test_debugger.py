"""The debugger page's feeds (no browser): what they show matches /_sandbox/deliveries,
`cdpio explain` and the App API emulation; they answer only on the sandbox's own
host names, never show a credential, and page a large backlog."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from cdpio_cli import explain
from cdpio_cli.sandbox.debugger import PAGE_SIZE
from cdpio_cli.sandbox.options import SandboxOptions
from tests.cli_helpers import run_cli

# Non-default credentials: none of them may appear in any debugger answer.
CREDS = dict(
    write_key="wkDebuggerSecretWriteKey7731",
    site_id="d1e2b3u4g5s6i7t8e9i0",
    track_api_key="d1e2b3u4g5t8r7a6c5k4",
    app_api_key="debuggerappapikey000000000000f00d",
    pipelines_api_key="pk_us_debuggerSecretPipes4242",
    public_api_token="sgp_debuggerSecretToken9191",
)
DEBUG = "/_sandbox/debugger"

SEGMENT_MESSAGES = [
    {"type": "identify", "userId": "u-1", "traits": {"email": "one@example.com", "plan": "pro"}},
    {"type": "track", "userId": "u-1", "event": "Signed Up", "properties": {"plan": "pro"}},
    {"type": "page", "userId": "u-1", "name": "Home", "properties": {}},  # no url: dropped
    {"type": "track", "event": "Nobody"},  # no id: dropped
    {"type": "screen", "anonymousId": "a-9", "name": "Cart", "properties": {"items": 2}},
]
PIPELINES_MESSAGES = [
    {"type": "identify", "userId": "u-2", "traits": {"email": "two@example.com", "name": "Two"}},
    {"type": "track", "userId": "u-2", "event": "Order Completed", "properties": {"total": 9.5}},
]


@pytest.fixture
def sb(sandbox_factory):
    return sandbox_factory(SandboxOptions(**CREDS))


def _send(sb, messages=SEGMENT_MESSAGES, pipelines=PIPELINES_MESSAGES) -> list[dict]:
    """Send each message with a known messageId; returns them as sent."""
    sent = []
    with httpx.Client(base_url=sb.url, timeout=30) as c:
        for i, msg in enumerate(messages):
            msg = {**msg, "messageId": f"seg-{i}"}
            r = c.post(f"/segment/v1/{msg['type']}", json=msg, auth=(CREDS["write_key"], ""))
            assert r.status_code == 200
            sent.append(("segment", msg))
        for i, msg in enumerate(pipelines):
            msg = {**msg, "messageId": f"pipe-{i}"}
            r = c.post(
                f"/pipelines/v1/{msg['type']}",
                json=msg,
                headers={"Authorization": f"Bearer {CREDS['pipelines_api_key']}"},
            )
            assert r.status_code == 200
            sent.append(("pipelines", msg))
    return sent


_client = httpx.Client(timeout=30)  # one keep-alive client: each new connection costs


def _get(sb, path, **kw):
    r = _client.get(sb.url + path, **kw)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r


def test_every_field_matches_deliveries_explain_and_the_app_api(sb):
    sent = _send(sb)
    page = _get(sb, f"{DEBUG}/messages").json()
    deliveries = _get(sb, "/_sandbox/deliveries").json()["deliveries"]
    assert page["matched"] == len(sent) == len(deliveries)
    by_id = {d["messageId"]: d for d in deliveries}
    seqs = [row["seq"] for row in page["rows"]]
    assert seqs == sorted(seqs, reverse=True), "newest first"
    for row in page["rows"]:
        delivery = by_id[row["messageId"]]
        extra = set(row) - set(delivery)
        assert extra == {"seq", "fate"}, extra
        for key, value in delivery.items():
            assert row[key] == value, (row["messageId"], key)
    # The fate is explain's verdict, word for word, for every Segment message.
    rows = {row["messageId"]: row for row in page["rows"]}
    for route, msg in sent:
        if route == "segment":
            assert rows[msg["messageId"]]["fate"] == explain.explain_message(msg).verdict()
    assert rows["seg-2"]["status"] == "dropped" and "requires properties.url" in rows["seg-2"]["fate"]
    assert rows["seg-3"]["fate"].startswith("dropped by Segment on ingest: no_user_anon_id")
    assert rows["pipe-1"]["fate"] == "person/event 'Order Completed' id=u-2 (1 attribute)"

    # The event stream's first event is the same page.
    with httpx.stream("GET", sb.url + f"{DEBUG}/stream", timeout=30) as s:
        event = _next_event(s.iter_lines())
    assert event[0] == "page" and event[1]["rows"] == page["rows"]

    # People: exactly what the App API emulation answers for them.
    people = _get(sb, f"{DEBUG}/people").json()
    assert {p["id"] for p in people["people"]} == {"u-1", "u-2"}
    app = {"Authorization": f"Bearer {CREDS['app_api_key']}"}
    for p in people["people"]:
        shown = _get(sb, f"{DEBUG}/people/{p['cio_id']}").json()
        attrs = _get(sb, f"/app/v1/customers/{p['id']}/attributes", headers=app).json()
        acts = _get(sb, f"/app/v1/customers/{p['id']}/activities?limit=100", headers=app).json()
        assert shown["attributes"] == attrs
        assert shown["activities"] == acts
        assert p["attributes"] == len(shown["attributes"]["customer"]["attributes"]) - len(
            {"cio_id", "_created_in_customerio_at", "id", "email"} & set(attrs["customer"]["attributes"])
        )
    one = next(p for p in people["people"] if p["id"] == "u-1")
    assert _get(sb, f"{DEBUG}/people/{one['cio_id']}").json()["attributes"]["customer"]["attributes"]["plan"] == "pro"

    summary = _get(sb, f"{DEBUG}/summary").json()
    assert summary["routes"] == {
        "pipelines.identify": {"delivered": 1, "dropped": 0},
        "pipelines.track": {"delivered": 1, "dropped": 0},
        "segment.identify": {"delivered": 1, "dropped": 0},
        "segment.page": {"delivered": 0, "dropped": 1},
        "segment.screen": {"delivered": 1, "dropped": 0},
        "segment.track": {"delivered": 1, "dropped": 1},
    }
    assert summary["totals"] == _get(sb, "/_sandbox/deliveries").json()["summary"]


def test_drops_only_a_running_sandbox_decides_are_explained(sandbox_factory):
    sb = sandbox_factory(SandboxOptions(**CREDS, segment_destination_enabled=False))
    with httpx.Client(base_url=sb.url, timeout=30) as c:
        c.post("/segment/v1/track", auth=("not-the-key", ""), json={"userId": "u", "event": "E"})
        c.post(
            "/segment/v1/track", auth=(CREDS["write_key"], ""), json={"userId": "u", "event": "E", "messageId": "m1"}
        )
        c.post(
            "/segment/v1/track", auth=(CREDS["write_key"], ""), json={"userId": "u", "event": "E", "messageId": "m1"}
        )
        c.post(
            "/pipelines/v1/track",
            json={"event": "E"},
            headers={"Authorization": f"Bearer {CREDS['pipelines_api_key']}"},
        )
    fates = [r["fate"] for r in reversed(_get(sb, f"{DEBUG}/messages").json()["rows"])]
    assert fates == [
        "dropped by Segment on ingest: unknown_source (the write key is not one this sandbox accepts)",
        "not delivered: the Customer.io (Actions) destination is not connected",
        ("dropped by Segment on ingest: duplicate_message_id (a message with this messageId was already received)"),
        (
            "dropped by the Pipelines API on ingest: no_user_anon_id "
            "(message has neither userId nor anonymousId; Segment drops it on ingest)"
        ),
    ]


def test_filters_by_route_type_fate_and_text(sb):
    _send(sb)

    def ids(**params):
        return [r["messageId"] for r in _get(sb, f"{DEBUG}/messages", params=params).json()["rows"]]

    assert ids(route="pipelines") == ["pipe-1", "pipe-0"]
    assert ids(route="segment.track") == ["seg-3", "seg-1"]
    assert ids(route="segment.tr") == []  # a route, not any prefix
    assert ids(type="identify") == ["pipe-0", "seg-0"]
    assert ids(fate="dropped") == ["seg-3", "seg-2"]
    assert ids(q="SIGNED up") == ["seg-1"]
    assert ids(q="properties.url") == ["seg-2"]  # the drop reason is searchable
    assert ids(q="a-9") == ["seg-4"]
    assert ids(route="segment", fate="delivered", type="track") == ["seg-1"]


def _next_event(lines) -> tuple[str, dict]:
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind:
            return kind, json.loads(line[6:])
    raise AssertionError("the stream ended")


def test_stream_pushes_new_messages_live_and_resumes(sb):
    events: list[tuple[str, dict]] = []
    with httpx.stream("GET", sb.url + f"{DEBUG}/stream", params={"fate": "dropped"}, timeout=30) as s:
        lines = s.iter_lines()
        events.append(_next_event(lines))
        sender = threading.Thread(target=_send, args=(sb,))
        sender.start()
        deadline = time.monotonic() + 20
        got: list[str] = []
        while len(got) < 2 and time.monotonic() < deadline:
            kind, data = _next_event(lines)
            assert kind == "rows"
            got += [r["messageId"] for r in data["rows"]]
        sender.join()
    assert events[0][0] == "page" and events[0][1]["rows"] == []
    assert sorted(got) == ["seg-2", "seg-3"]  # only what the filter matches
    # A reconnect after the last seen row gets only what came after it.
    with httpx.stream("GET", sb.url + f"{DEBUG}/stream", headers={"Last-Event-ID": "3"}, timeout=30) as s:
        kind, data = _next_event(s.iter_lines())
    assert kind == "rows" and [r["seq"] for r in data["rows"]] == [7, 6, 5, 4]


def test_ten_thousand_messages_are_paged(sandbox):
    batch = [
        {
            "type": "track",
            "userId": f"u{i % 50}",
            "event": "Tick",
            "messageId": f"m{i}",
            **({} if i % 10 else {"event": ""}),
        }
        for i in range(10_000)
    ]
    with httpx.Client(base_url=sandbox.url, timeout=60) as c:
        for start in range(0, len(batch), 2500):
            r = c.post(
                "/segment/v1/batch", json={"batch": batch[start : start + 2500]}, auth=(sandbox.options.write_key, "")
            )
            assert r.status_code == 200
        page = c.get(f"{DEBUG}/messages").json()
        assert page["matched"] == 10_000 and len(page["rows"]) == PAGE_SIZE
        assert page["rows"][0]["messageId"] == "m9999"
        seen, before = len(page["rows"]), page["rows"][-1]["seq"]
        while before > 1:
            older = c.get(f"{DEBUG}/messages", params={"before": before}).json()["rows"]
            assert older and older[0]["seq"] == before - 1
            seen += len(older)
            before = older[-1]["seq"]
        assert seen == 10_000
        dropped = c.get(f"{DEBUG}/messages", params={"fate": "dropped"}).json()
        assert dropped["matched"] == 1_000
        assert {r["reason"] for r in dropped["rows"]} == {"event_not_defined"}
        with c.stream("GET", f"{DEBUG}/stream") as s:
            kind, data = _next_event(s.iter_lines())
        assert kind == "page" and len(data["rows"]) == PAGE_SIZE and data["matched"] == 10_000


def test_other_host_names_are_refused(sb):
    # The sandbox-wide guard (sandbox/guard.py) answers 421 before the page is reached.
    for host in (
        "evil.example",
        "evil.example:8975",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "[::2]:80",
        "",
    ):
        for path in (
            "/",
            f"{DEBUG}/messages",
            f"{DEBUG}/stream",
            f"{DEBUG}/summary",
            f"{DEBUG}/people",
            f"{DEBUG}/static/debugger.js",
        ):
            r = _client.get(sb.url + path, headers={"Host": host})
            assert r.status_code == 421, (path, host)
            assert "secret" not in r.text and "rows" not in r.text
            assert "DNS rebinding" in r.json()["message"]


def test_own_host_names_are_served(sb):
    port = sb.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
        r = _client.get(sb.url + "/", headers={"Host": host})
        assert r.status_code == 200 and "cdpio sandbox" in r.text, host
        assert "default-src 'none'" in r.headers["content-security-policy"]


def test_reset_needs_a_same_origin_post(sb):
    _send(sb)
    url = sb.url + f"{DEBUG}/reset"
    assert _client.post(url).status_code == 403  # no Origin
    assert _client.post(url, headers={"Origin": "http://evil.example"}).status_code == 403
    assert _client.post(url, headers={"Origin": sb.url, "Host": "evil.example"}).status_code == 421
    assert _client.get(url).status_code in (404, 405)
    assert _get(sb, f"{DEBUG}/messages").json()["matched"] == 7  # nothing reset
    assert _client.post(url, headers={"Origin": sb.url}).status_code == 200
    assert _get(sb, f"{DEBUG}/messages").json()["matched"] == 0


def test_no_credential_in_any_answer(sb):
    _send(sb)
    # The settings lookup carries the write key in its path.
    _client.get(sb.url + f"/segment-cdn/v1/projects/{CREDS['write_key']}/settings")
    people = _get(sb, f"{DEBUG}/people").json()["people"]
    bodies = [
        _get(sb, p).text
        for p in (
            "/",
            f"{DEBUG}/static/debugger.js",
            f"{DEBUG}/static/debugger.css",
            f"{DEBUG}/messages",
            f"{DEBUG}/people",
            f"{DEBUG}/summary",
        )
    ]
    bodies += [_get(sb, f"{DEBUG}/people/{p['cio_id']}").text for p in people]
    with httpx.stream("GET", sb.url + f"{DEBUG}/stream", timeout=30) as s:
        bodies.append(json.dumps(_next_event(s.iter_lines())))
    text = "\n".join(bodies)
    for name, value in CREDS.items():
        assert value not in text, name
        assert value[:12] not in text, name
    creds = _get(sb, f"{DEBUG}/summary").json()["credentials"]
    assert {c["name"]: c["source"] for c in creds}["segment write key"] == "yours"
    assert all(c["masked"].startswith("[") for c in creds)


def test_faults_never_hit_the_page(sandbox_factory):
    sb = sandbox_factory(fail_rate=1.0, fail_status=503)
    assert _client.post(sb.url + "/segment/v1/track", json={}).status_code == 503
    for path in ("/", f"{DEBUG}/messages", f"{DEBUG}/static/debugger.js"):
        assert _client.get(sb.url + path).status_code == 200, path
    assert all(r["path"] != "/" for r in _get(sb, "/_sandbox/requests").json()["requests"])


def test_send_test_against_a_running_sandbox_prints_the_debugger_url(sandbox, tmp_path):
    result = run_cli(
        "--sandbox-url", sandbox.url, "--json", "send-test", "--route", "segment", "--no-verify", cwd=tmp_path
    )
    assert result.code == 0, result.stderr[-2000:]
    assert result.json["ok"] is True  # stdout stays one JSON document
    assert result.stderr.rstrip().splitlines()[-1] == f"watch these messages: {sandbox.url}/"
    embedded = run_cli("--sandbox", "send-test", "--route", "segment", "--no-verify", cwd=tmp_path)
    assert "watch these messages" not in embedded.output

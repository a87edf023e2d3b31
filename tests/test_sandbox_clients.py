"""The official clients as real peers of the sandbox: what they send must arrive
as people and activities readable through the App API."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest
from customerio import CustomerIO, CustomerIOException
from segment.analytics import Client as SegmentClient

from cdpio_cli.sandbox import defaults

# One pooled client: a fresh httpx client per call costs more than the call.
HTTP = httpx.Client(timeout=30)

APP = {"authorization": f"Bearer {defaults.APP_API_KEY}"}


def app(sb, path, **params):
    r = HTTP.get(sb.url + "/app" + path, headers=APP, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def activity_names(sb, user_id, type_):
    """Names of events and screens; a page's URL (documented in `url`)."""
    acts = app(sb, f"/v1/customers/{user_id}/activities", type=type_, limit=100)["activities"]
    return [a["url"] if a["type"] == "page" else a["name"] for a in acts]


# --- segment-analytics-python ---------------------------------------------------


def segment_client(sb, write_key=defaults.WRITE_KEY, **kw):
    # host is the base without /v1: the client appends /v1/batch (segment-api.md §3.1).
    kw.setdefault("sync_mode", True)
    return SegmentClient(write_key, host=sb.url + "/segment", max_retries=0, **kw)


def test_segment_client_calls_land_in_customerio(sandbox):
    client = segment_client(sandbox)
    client.page(anonymous_id="anon-7", name="Pricing", properties={"url": "https://example.com/pricing"})
    client.identify("seg-1", {"email": "seg1@example.com", "plan_type": "Pro", "is_trial": True}, anonymous_id="anon-7")
    client.track("seg-1", "Signed Up", {"plan_type": "Pro"})
    client.screen("seg-1", name="Home")
    client.group("seg-1", "acme", {"objectAttributes": {"name": "Acme"}})
    client.track("seg-1", "Application Installed", context={"device": {"token": "push-tok", "type": "android"}})
    client.alias("old-id", "seg-1")

    customer = app(sandbox, "/v1/customers/seg-1/attributes")["customer"]
    assert customer["attributes"]["plan_type"] == "Pro"
    assert customer["attributes"]["is_trial"] == "true"
    assert customer["identifiers"]["email"] == "seg1@example.com"
    assert [d["id"] for d in customer["devices"]] == ["push-tok"]
    assert activity_names(sandbox, "seg-1", "event") == ["Signed Up"]
    assert activity_names(sandbox, "seg-1", "screen") == ["Home"]
    # The anonymous page view joined the person when identify linked anon-7.
    assert activity_names(sandbox, "seg-1", "page") == ["https://example.com/pricing"]
    assert ("1", "acme") in sandbox.state.workspace.objects
    summary = HTTP.get(sandbox.url + "/_sandbox/deliveries").json()["summary"]
    assert summary["received"] == 7 and summary["delivered"] == 7


def test_segment_client_batches_and_gzip_in_background_mode(sandbox):
    client = segment_client(sandbox, sync_mode=False, gzip=True, upload_size=50)
    for i in range(120):
        client.track("bulk-1", "Clicked CTA", {"i": i})
    client.flush()
    client.join()
    assert len(activity_names(sandbox, "bulk-1", "event")) == 100  # limit caps the page
    rows = HTTP.get(sandbox.url + "/_sandbox/requests", params={"route": "segment"}).json()["requests"]
    assert sum(r["messages"] for r in rows) == 120 and len(rows) >= 3


def test_segment_client_unknown_write_key_gets_200_and_nothing_arrives(sandbox):
    client = segment_client(sandbox, write_key="typo-key")
    client.track("seg-2", "Signed Up")  # sync mode raises on any non-200: it does not
    r = HTTP.get(sandbox.url + "/app/v1/customers/seg-2/attributes", headers=APP)
    assert r.status_code == 404
    [row] = HTTP.get(sandbox.url + "/_sandbox/deliveries").json()["deliveries"]
    assert (row["status"], row["reason"]) == ("dropped", "unknown_source")


# --- customerio (Track API) -----------------------------------------------------


class LoopbackCustomerIO(CustomerIO):
    """customerio 3.2.0 always builds https:// URLs (setup_base_url, and batch()
    which also ignores url_prefix).  host/port/url_prefix are its supported
    knobs; the scheme is not, so this subclass swaps it for the plain-HTTP
    loopback sandbox and points batch() at the same prefix."""

    def setup_base_url(self):
        super().setup_base_url()
        self.base_url = self.base_url.replace("https://", "http://", 1)

    def batch(self, operations):
        root = self.base_url[: -len("/api/v1")]
        return self.send_request("POST", f"{root}/api/v2/batch", {"batch": operations})


def cio_client(sb, api_key=defaults.TRACK_API_KEY):
    return LoopbackCustomerIO(
        defaults.SITE_ID, api_key, host="127.0.0.1", port=sb.port, url_prefix="/track/api/v1", retries=0
    )


def test_customerio_client_calls_land_in_customerio(sandbox):
    cio = cio_client(sandbox)
    created = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    cio.track_anonymous("anon-c", "Viewed Pricing", {"plan": "pro"})
    cio.identify("cio-1", email="cio1@example.com", plan="pro", created_at=created, anonymous_id="anon-c")
    cio.track("cio-1", "Signed Up", {"source": "ads"})
    cio.pageview("cio-1", "https://example.com/", referrer="google")
    cio.add_device("cio-1", "tok-9", "ios", last_used=created)
    cio.identify("cio-2", email="cio2@example.com", team="blue")
    cio.merge_customers("id", "cio-1", "email", "cio2@example.com")

    customer = app(sandbox, "/v1/customers/cio-1/attributes")["customer"]
    attrs = customer["attributes"]
    assert attrs["plan"] == "pro" and attrs["created_at"] == str(int(created.timestamp()))
    assert attrs["team"] == "blue"  # merged from cio-2
    assert [d["id"] for d in customer["devices"]] == ["tok-9"]
    assert sorted(activity_names(sandbox, "cio-1", "event")) == ["Signed Up", "Viewed Pricing"]
    assert activity_names(sandbox, "cio-1", "page") == ["https://example.com/"]
    assert app(sandbox, "/v1/customers", email="cio2@example.com")["results"] == []

    cio.delete_device("cio-1", "tok-9")
    cio.suppress("cio-1")
    assert HTTP.get(sandbox.url + "/app/v1/customers/cio-1/attributes", headers=APP).status_code == 404


def test_customerio_client_batch_gets_207_for_invalid_operations(sandbox):
    cio = cio_client(sandbox)
    r = cio.batch(
        [
            {"type": "person", "action": "identify", "identifiers": {"id": "batch-1"}, "attributes": {"a": 1}},
            {"type": "person", "action": "event", "identifiers": {"id": "batch-1"}, "name": "n" * 101},
        ]
    )
    assert r.status_code == 207
    assert r.json()["errors"][0]["batch_index"] == 1
    assert app(sandbox, "/v1/customers/batch-1/attributes")["customer"]["attributes"]["a"] == "1"


def test_customerio_client_wrong_key_raises_401(sandbox):
    with pytest.raises(CustomerIOException, match="401"):
        cio_client(sandbox, api_key="wrong").identify("x", plan="pro")


def test_customerio_client_limit_message_reaches_the_caller(sandbox):
    with pytest.raises(CustomerIOException, match="cannot be longer than 1000 bytes"):
        cio_client(sandbox).identify("x", bio="b" * 1001)

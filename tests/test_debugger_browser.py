"""The debugger page in a real browser: headless Chromium from the OS packages,
driven by Playwright for Python (never `playwright install`: no browser downloads).

Screenshots go to test-artifacts/ (CDPIO_TEST_ARTIFACTS overrides); with
CDPIO_UPDATE_SCREENSHOT=1 the light one also replaces docs/debugger.png.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from cdpio_cli.sandbox.options import SandboxOptions
from tests.test_debugger import CREDS

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000  # generous: CI machines are shared


def _chromium() -> str | None:
    for name in (os.environ.get("CDPIO_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _unavailable(reason: str):
    # CI installs Chromium (.ci/run): there a missing browser is a failure, not a skip.
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser test")
    pytest.skip(reason)


@pytest.fixture
def browser_page(tmp_path):
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[test]')")
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium found (apt-get install chromium, or set CDPIO_CHROMIUM)")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 860},
            color_scheme="light",
        )
        context.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _artifacts() -> Path:
    out = Path(os.environ.get("CDPIO_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _send(sb) -> None:
    with httpx.Client(base_url=sb.url, timeout=30) as c:
        auth = (CREDS["write_key"], "")
        pipes = {"Authorization": f"Bearer {CREDS['pipelines_api_key']}"}
        c.post(
            "/segment/v1/identify",
            auth=auth,
            json={"messageId": "seg-0", "userId": "u-1", "traits": {"email": "one@example.com", "plan": "pro"}},
        )
        c.post(
            "/segment/v1/track",
            auth=auth,
            json={"messageId": "seg-1", "userId": "u-1", "event": "Signed Up", "properties": {"plan": "pro"}},
        )
        c.post(
            "/segment/v1/page",
            auth=auth,
            json={  # no properties.url: dropped
                "messageId": "seg-2",
                "userId": "u-1",
                "name": "Pricing",
                "properties": {"path": "/pricing"},
            },
        )
        c.post(
            "/pipelines/v1/identify",
            headers=pipes,
            json={
                "messageId": "pipe-0",
                "userId": "u-2",
                "traits": {"email": "two@example.com", "name": "Ada Two", "company": "Initech"},
            },
        )
        c.post(
            "/pipelines/v1/track",
            headers=pipes,
            json={"messageId": "pipe-1", "userId": "u-2", "event": "Order Completed", "properties": {"total": 42}},
        )
        # The settings lookup: its path holds the write key, which must never reach the page.
        c.get(f"/segment-cdn/v1/projects/{CREDS['write_key']}/settings")


def _visible_ids(page) -> list[str]:
    return page.eval_on_selector_all("#rows tr", "rows => rows.map(r => r.dataset.messageId)")


def _wait_ids(page, expected: list[str]) -> None:
    """Wait until the stream shows exactly these rows, in this order.  (The page's
    content security policy forbids eval, so wait_for_function cannot be used.)"""
    deadline = time.monotonic() + WAIT_MS / 1000
    while (ids := _visible_ids(page)) != expected and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert ids == expected


def test_debugger_page_in_chromium(browser_page, sandbox_factory):
    from playwright.sync_api import expect

    page = browser_page
    sb = sandbox_factory(SandboxOptions(**CREDS))
    page.goto(sb.url + "/")
    rows = page.locator("#rows tr")
    page.wait_for_selector("#conn.on")  # the event stream is open
    assert page.locator("#empty").is_visible()

    _send(sb)  # after the page loaded: live
    delivered = page.locator('tr[data-message-id="seg-1"]')
    dropped = page.locator('tr[data-message-id="seg-2"]')
    delivered.wait_for()
    dropped.wait_for()
    _wait_ids(page, ["pipe-1", "pipe-0", "seg-2", "seg-1", "seg-0"])  # newest first
    assert delivered.locator(".badge").inner_text() == "delivered"
    assert delivered.locator(".verdict").inner_text() == "person/event 'Signed Up' id=u-1 (1 attribute)"
    assert dropped.locator(".badge").inner_text() == "dropped"
    assert dropped.locator(".verdict").inner_text() == (
        "dropped by the destination: MESSAGE_REJECTED: trackPageView requires properties.url "
        "(the page URL becomes the Customer.io page name)"
    )
    assert dropped.locator("td.route").inner_text() == "segment.page"
    assert page.locator('tr[data-message-id="pipe-0"] td.route').inner_text() == "pipelines.identify"
    # The Track API v2 body opens on demand.
    delivered.locator("summary").click()
    body = delivered.locator("pre").inner_text()
    assert '"action": "event"' in body and '"name": "Signed Up"' in body

    # Filters: fate, route, type, text (each narrows the rows on the page).
    page.select_option("#f-fate", "dropped")
    _wait_ids(page, ["seg-2"])
    page.select_option("#f-fate", "")
    page.select_option("#f-route", "pipelines")
    _wait_ids(page, ["pipe-1", "pipe-0"])
    page.select_option("#f-type", "track")
    _wait_ids(page, ["pipe-1"])
    page.select_option("#f-route", "")
    page.select_option("#f-type", "")
    page.fill("#f-q", "signed")
    _wait_ids(page, ["seg-1"])
    # A filtered stream stays live: a new matching message appears without reload.
    httpx.post(
        sb.url + "/segment/v1/track",
        auth=(CREDS["write_key"], ""),
        timeout=30,
        json={"messageId": "seg-3", "userId": "u-3", "event": "Signed Up Again"},
    )
    _wait_ids(page, ["seg-3", "seg-1"])
    # ...and a body opened earlier stays open while rows arrive and filters change.
    page.fill("#f-q", "")
    expect(rows).to_have_count(6)
    assert page.locator('tr[data-message-id="seg-1"] details').get_attribute("open") is not None
    page.screenshot(path=str(_artifacts() / "debugger.png"))
    if os.environ.get("CDPIO_UPDATE_SCREENSHOT") == "1":
        page.screenshot(path=str(ROOT / "docs" / "debugger.png"))
    dom = [page.content()]

    # People: a person page shows the attributes the App API emulation returns.
    page.click("#nav-people")
    page.click("#people-rows a:text-is('u-2')")
    page.wait_for_selector("#person table.attributes")
    attributes = dict(
        page.eval_on_selector_all(
            "#person table.attributes tr", "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])"
        )
    )
    assert attributes["name"] == "Ada Two" and attributes["company"] == "Initech"
    assert attributes["email"] == "two@example.com" and attributes["id"] == "u-2"
    activities = page.locator("#person table.activities tbody tr")
    assert activities.count() >= 1
    assert "Order Completed" in page.locator("#person table.activities").inner_text()
    page.screenshot(path=str(_artifacts() / "debugger-person.png"))
    dom.append(page.content())

    # Summary: counts per route and fate, regions, credentials masked.
    page.click("#nav-summary")
    page.wait_for_selector('#summary tr[data-route="segment.page"]')
    assert page.locator('#summary tr[data-route="segment.page"]').inner_text().split() == ["segment.page", "0", "1"]
    assert page.locator('#summary tr[data-route="pipelines.identify"]').inner_text().split() == [
        "pipelines.identify",
        "1",
        "0",
    ]
    creds = page.locator("#summary table.credentials").inner_text()
    assert "segment write key" in creds and "yours" in creds
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(_artifacts() / "debugger-summary-dark.png"))
    dom.append(page.content())

    # No credential anywhere in the DOM of any view.
    text = "\n".join(dom)
    for name, value in CREDS.items():
        assert value not in text, name
    page.emulate_media(color_scheme="light")

    # Reset is a same-origin POST from the page (after a confirmation).
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#reset")
    expect(page.locator("#summary tr[data-route]")).to_have_count(0)
    assert httpx.get(sb.url + "/_sandbox/deliveries", timeout=30).json()["deliveries"] == []
    page.click("#nav-live")
    expect(rows).to_have_count(0)

"""The wall display at 1920x1080 in a real headless Chromium against a real uvicorn and
database: set up once by a duty officer, it stays live through token expiries, shows the
lost state (with the time, in the site's zone) when the server goes away and recovers by
itself, and only a switched-off display says so (dashboard/static/display.js)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from dashboard.app import create_app
from dashboard.live.settings import StreamSettings
from tests.dashboard.test_duty_page import add_alert
from tests.support.dashboard import SECRET, World
from tests.support.live import bearer as login_bearer
from tests.support.live import browser_page, log_in, running_server
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

WALL_1080 = {"width": 1920, "height": 1080}
LOST = re.compile(r"Connection lost since \d{4}-\d{2}-\d{2} \d{2}:\d{2}")


def quick_stream() -> StreamSettings:
    """Expired streams end within a second (the refresher's period)."""
    return StreamSettings(scope_refresh_s=1.0, retry_ms=500, backoff_min_s=0.05,
                          backoff_max_s=0.5)


def display_app(database_url: str, token_minutes: float = 60) -> Any:
    return create_app(database_url, SECRET, stream_settings=quick_stream(),
                      display_token_minutes=token_minutes)


def make_display(url: str, name: str = "Hall screen 1") -> dict[str, Any]:
    """A display set up through the API by duty-north (the page test of the setup button
    is test_a_display_set_up_on_the_duty_screen_stays_live_through_token_expiry)."""
    resp = httpx.post(f"{url}/api/v1/displays", json={"name": name},
                      headers=login_bearer(url, "duty-north"))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def become_display(page: Page, url: str, display: dict[str, Any]) -> None:
    """Give the browser the display's credential, as the setup button does, and open it."""
    page.goto(url)
    credential = {"id": display["id"], "name": display["name"], "secret": display["secret"]}
    page.evaluate("c => localStorage.setItem('eldercare.display', c)", json.dumps(credential))
    page.reload()


def token_of(page: Page) -> str:
    raw = page.evaluate("() => sessionStorage.getItem('eldercare.session')")
    return str(json.loads(raw)["access_token"]) if raw else ""


def test_a_display_set_up_on_the_duty_screen_stays_live_through_token_expiry(
        world: World, clean_db: str, screenshot):
    from playwright.sync_api import expect

    # Display tokens live 3 seconds: the screen renews them many times during the test.
    with running_server(display_app(clean_db, token_minutes=0.05)) as srv, \
            browser_page(WALL_1080) as browser:
        page = browser.page
        log_in(page, srv.url, "duty-north")
        page.get_by_role("button", name="Make this a wall display").click()
        page.get_by_label("Name of this screen").fill("Hall screen 1")
        page.locator("#display-setup").get_by_role("button",
                                                   name="Make this a wall display").click()

        expect(page.locator("#who")).to_contain_text("Hall screen 1 · Wall display")
        expect(page.locator("#logout-button")).to_be_hidden()
        sos = page.locator(".alert", has_text="SOS call")
        expect(sos.first).to_be_visible()
        expect(sos.first.get_by_role("button", name="Acknowledge")).to_be_visible()
        expect(sos.first.get_by_role("button", name="Resolve…")).to_be_hidden()
        first = token_of(page)
        assert first

        # Past several token lifetimes: renewed by itself, never the login form.
        wait_until(lambda: token_of(page) not in ("", first), timeout=30, interval=0.5,
                   what="the display to renew its token")
        second = token_of(page)
        wait_until(lambda: token_of(page) not in ("", first, second), timeout=30, interval=0.5,
                   what="the display to renew its token again")
        expect(page.locator("#feed-status")).to_contain_text("Live", timeout=20_000)
        expect(page.locator(".page-nav a:visible")).to_have_count(0)  # read-and-acknowledge
        add_alert(clean_db, world.bob, "sos")  # a new SOS after the expiries: no reload
        expect(page.locator(".alert-group", has_text="Bob Berg")).to_contain_text(
            "SOS call", timeout=20_000)
        expect(page.locator("#critical-banner")).to_contain_text("Bob Berg")
        expect(page.locator("#login-view")).to_be_hidden()
        expect(page.locator("#display-lost")).to_be_hidden()
        screenshot(page, "display-live-after-token-expiry")

        # The display acknowledges (recorded as the display) ...
        bob = page.locator(".alert-group", has_text="Bob Berg")
        bob.get_by_role("button", name="Acknowledge").click()
        expect(bob).to_contain_text("Acknowledged")
    assert browser.problems == []


def test_a_forced_disconnect_shows_the_lost_state_then_recovers(world: World, clean_db: str,
                                                                screenshot):
    from playwright.sync_api import expect

    with running_server(display_app(clean_db)) as srv, browser_page(WALL_1080) as browser:
        page = browser.page
        become_display(page, srv.url, make_display(srv.url))
        expect(page.locator(".alert", has_text="SOS call").first).to_be_visible()
        expect(page.locator("#feed-status")).to_contain_text("Live")

        srv.stop()  # the web server goes away
        lost = page.locator("#display-lost")
        expect(lost).to_be_visible(timeout=20_000)
        expect(lost).to_contain_text(LOST)
        expect(page.locator(".alert", has_text="SOS call").first).to_be_visible()  # last known
        expect(page.locator("#login-view")).to_be_hidden()
        screenshot(page, "display-connection-lost")

        add_alert(clean_db, world.bob, "fall")  # raised while the screen is cut off
        with running_server(display_app(clean_db), port=srv.port):
            expect(lost).to_be_hidden(timeout=30_000)
            expect(page.locator(".alert-group", has_text="Bob Berg")).to_contain_text(
                "Fall detected", timeout=20_000)
            expect(page.locator("#feed-status")).to_contain_text("Live")
            screenshot(page, "display-recovered")
    # While the server was away, the browser logged the refused connections; nothing else.
    assert [p for p in browser.problems if "ERR_CONNECTION_REFUSED" not in p] == []


def test_a_switched_off_display_says_who_and_offers_the_setup(world: World, clean_db: str,
                                                              screenshot):
    from playwright.sync_api import expect

    with running_server(display_app(clean_db)) as srv, browser_page(WALL_1080) as browser:
        page = browser.page
        display = make_display(srv.url)
        become_display(page, srv.url, display)
        expect(page.locator(".alert", has_text="SOS call").first).to_be_visible()

        resp = httpx.post(f"{srv.url}/api/v1/displays/{display['id']}/revoke",
                          headers=login_bearer(srv.url, "duty-north"))
        assert resp.status_code == 200, resp.text
        off = page.locator("#display-off")
        expect(off).to_be_visible(timeout=20_000)
        expect(off).to_contain_text("switched off by Dora Duty")
        expect(page.locator("#app-view")).to_be_hidden()
        expect(page.locator("#login-view")).to_be_hidden()
        screenshot(page, "display-switched-off")

        page.get_by_role("button", name="Set it up again").click()
        expect(page.locator("#login-form")).to_be_visible()
        assert page.evaluate("() => localStorage.getItem('eldercare.display')") is None
    assert browser.problems == []

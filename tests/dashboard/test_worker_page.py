"""The care worker's phone page in a real headless Chromium (390×844, touch) against a real
uvicorn, database and broker."""

from __future__ import annotations

import re

import httpx
import pytest

from kernel import db
from tests.support.dashboard import World, insert_alert
from tests.support.live import (
    PHONE,
    TOUCH,
    Served,
    browser_page,
    fits_width,
    log_in,
    logged_in_page,
)

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

MIN_TAP_PX = 44  # the smallest comfortable touch target


def scalar(database_url: str, query: str, *params: object) -> object:
    """The first column of the first row."""
    with db.connect(database_url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def execute(database_url: str, query: str, *params: object) -> None:
    """Run one statement on a fresh autocommit connection."""
    with db.connect(database_url, autocommit=True) as conn:
        conn.execute(query, params)


def test_worker_handles_an_assigned_alert_on_a_phone(server: Served, world: World, clean_db,
                                                     screenshot):
    from playwright.sync_api import expect

    execute(clean_db, "UPDATE alerts SET assigned_to = %s WHERE id = %s", world.care_north,
            world.sos_alice)
    with logged_in_page(PHONE, f"{server.url}/worker", "care-north", **TOUCH) as browser:
        page = browser.page

        mine = page.locator("#mine-list")
        card = mine.locator(".alert", has_text="SOS call")
        expect(card).to_contain_text("Alice Andersen")
        expect(card).to_contain_text("1 Fjord Road")
        expect(page.locator("#mine-count")).to_have_text("1")
        expect(page.locator("#site-list .alert")).to_have_count(1)  # her acknowledged battery
        expect(page.get_by_text("Carl Care · Care worker · site north")).to_be_visible()

        ack = card.get_by_role("button", name="Acknowledge")
        box = ack.bounding_box()
        assert box is not None and box["height"] >= MIN_TAP_PX
        ack.tap()
        expect(card).to_contain_text("Acknowledged by you")
        assert scalar(clean_db, "SELECT acknowledged_by FROM alerts WHERE id = %s",
                      world.sos_alice) == world.care_north

        # A new alert at the site arrives live.
        with db.connect(clean_db, autocommit=True) as conn:
            insert_alert(conn, world.bob, "north", "fall", "critical", minutes_ago=0)
        expect(page.locator("#site-list .alert", has_text="Bob Berg")).to_contain_text(
            "Fall detected", timeout=3_000)
        expect(page.locator("#critical-banner")).to_contain_text("Fall detected — Bob Berg")

        card.get_by_role("button", name="Resolve…").tap()
        card.get_by_label("Outcome").select_option("false_alarm")
        card.get_by_role("button", name="Resolve alert").tap()
        expect(mine.locator(".alert")).to_have_count(0)
        expect(page.get_by_text("Nothing is assigned to you.")).to_be_visible()
        assert scalar(clean_db, "SELECT outcome FROM alerts WHERE id = %s",
                      world.sos_alice) == "false_alarm"

        assert fits_width(page)
        screenshot(page, "worker-phone")
    assert browser.problems == []


def test_an_acknowledgement_answered_without_a_body_shows_no_error(server: Served,
                                                                  world: World, clean_db):
    """The ack is really made by the server; its answer reaches the page with an empty body
    (as a 204, or a proxy or restarting server cutting the body, would deliver it). The
    page used to say "Unexpected end of JSON input"; it now reloads the list."""
    from playwright.sync_api import Route, expect

    execute(clean_db, "UPDATE alerts SET assigned_to = %s WHERE id = %s", world.care_north,
            world.sos_alice)

    def empty_body(route: Route) -> None:
        real = route.fetch()  # the real server acknowledges
        assert real.status == 200, real.text()
        route.fulfill(status=200, headers={"Content-Type": "application/json"}, body="")

    with logged_in_page(PHONE, f"{server.url}/worker", "care-north", **TOUCH) as browser:
        page = browser.page
        card = page.locator("#mine-list .alert", has_text="SOS call")
        expect(card).to_be_visible()
        page.route(f"**/api/v1/alerts/{world.sos_alice}/ack", empty_body)
        card.get_by_role("button", name="Acknowledge").tap()
        expect(card).to_contain_text("Acknowledged by you")
        expect(card.locator(".action-message")).to_have_text("")
        expect(page.locator("#alerts-message")).to_have_text("")
        assert scalar(clean_db, "SELECT acknowledged_by FROM alerts WHERE id = %s",
                      world.sos_alice) == world.care_north
        # The shared helper answers null for an empty body, whatever the route.
        page.route("**/api/v1/alerts?*", lambda route: route.fulfill(
            status=200, headers={"Content-Type": "application/json"}, body=""))
        page.evaluate("import('/static/api.js').then((m) => m.api('/alerts?status=open'))"
                      ".then((body) => { window.__emptyAnswer = body; })")
        page.wait_for_function("window.__emptyAnswer === null")
    assert browser.problems == []


def test_duty_toggle_and_alert_links(server: Served, world: World, clean_db):
    from playwright.sync_api import expect

    with logged_in_page(PHONE, f"{server.url}/worker", "care-north", **TOUCH) as browser:
        page = browser.page
        duty = page.locator("#duty-button")
        expect(duty).to_have_attribute("aria-pressed", "false")
        expect(page.locator("#duty-message")).to_contain_text("You are off duty")
        duty.tap()
        expect(duty).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#duty-message")).to_contain_text("You are on duty")
        assert scalar(clean_db, "SELECT on_duty FROM users WHERE id = %s",
                      world.care_north) is True
        duty.tap()
        expect(duty).to_have_attribute("aria-pressed", "false")
        assert scalar(clean_db, "SELECT on_duty FROM users WHERE id = %s",
                      world.care_north) is False

        # A notification's link (/alerts/{id}) opens this page at that alert.
        # The highlight survives the page's later updates (it used to vanish with the first).
        page.goto(f"{server.url}/alerts/{world.sos_alice}")
        card = page.locator(f"#alert-{world.sos_alice}")
        expect(card).to_have_class(re.compile(r"\balert--fresh\b"))
        expect(page.locator("#duty-message")).to_contain_text("You are off duty")  # /me: re-render
        expect(card).to_have_class(re.compile(r"\balert--fresh\b"))
    assert browser.problems == []


def test_enable_notifications_registers_the_service_worker(server: Served, world: World,
                                                           clean_db):
    from playwright.sync_api import expect

    with browser_page(PHONE, **TOUCH) as browser:
        page = browser.page
        page.context.grant_permissions(["notifications"], origin=server.url)
        log_in(page, f"{server.url}/worker", "care-north")
        button = page.get_by_role("button", name="Enable notifications on this phone")
        message = page.locator("#notify-message")

        button.tap()
        # Playwright's contexts are incognito, where Chromium refuses Push: subscribing
        # fails, and the page says so readably...
        expect(message).to_contain_text("This phone could not subscribe to notifications (")
        # ...after the service worker was registered for the whole site.
        scope = page.evaluate(
            "navigator.serviceWorker.getRegistration('/').then((r) => r && r.scope)")
        assert scope == f"{server.url}/"
        assert scalar(clean_db, "SELECT count(*) FROM platform_keys") == 2  # VAPID pair
    assert browser.problems == []


def test_service_worker_and_manifest_are_served_for_the_whole_site(server: Served):
    sw = httpx.get(f"{server.url}/sw.js")
    assert sw.status_code == 200
    assert sw.headers["content-type"].startswith("text/javascript")
    assert sw.headers["service-worker-allowed"] == "/"
    assert "showNotification" in sw.text
    manifest = httpx.get(f"{server.url}/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    assert manifest.json()["start_url"] == "/worker"
    page = httpx.get(f"{server.url}/worker")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self'
    assert page.headers["content-security-policy"].startswith("default-src 'self'")

"""The care worker's phone page in a real headless Chromium (390×844, touch) against a real
uvicorn, database and broker."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

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
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

MIN_TAP_PX = 48  # the smallest touch target for a thumb (Material's 48 dp; Apple asks 44 pt)
SHANGHAI_0603 = "2026-03-01T06:03:00Z"  # 14:03 in Asia/Shanghai
SHANGHAI_0605 = "2026-03-01T06:05:00Z"
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
# Every control a worker taps on the phone page (in the lists, the bottom bar and the duty and
# notification controls; not the top bar's Log out).
TAPPABLE = ("main button:visible, main a:visible, main summary:visible, main select:visible, "
            ".thumb-bar a")


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
        # Mine: the SOS assigned to me and her battery alert, which I acknowledged (claimed).
        expect(page.locator("#mine-count")).to_have_text("2")
        expect(mine.locator(".alert", has_text="Low battery")).to_contain_text(
            "Acknowledged by you")
        expect(page.locator("#site-list .alert")).to_have_count(0)
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
        expect(mine.locator(".alert")).to_have_count(1)
        expect(mine.locator(".alert", has_text="SOS call")).to_have_count(0)
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
        # The alert lists above the button fill in from the stream; tap once they have, or
        # the button moves under the finger (a tap that landed elsewhere failed this test).
        expect(page.locator(f"#alert-{world.sos_alice}")).to_be_visible()
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
        # below the alert lists: tap once they have filled in (see the duty test)
        expect(page.locator(f"#alert-{world.sos_alice}")).to_be_visible()
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


# --- one-handed use: reaching the resident, site times, claim -> resolve --------------------


def ledger_for_reaching_alice(database_url: str, world: World) -> None:
    """North in Shanghai; Alice with a phone, two contacts (stored out of calling order) and
    an address that needs encoding; her SOS opened at 14:03 Shanghai time."""
    execute(database_url, "UPDATE sites SET timezone = 'Asia/Shanghai' WHERE id = 'north'")
    execute(database_url, "UPDATE residents SET phone = %s, address = %s WHERE id = %s",
            "+86 138 0000 0001", "1 Fjord Road, Flat 3 & 4", world.alice)
    for position, name, relation, phone in ((2, "Olaf Andersen", "son", "010-8888 7777"),
                                            (1, "Eva Andersen", "daughter", "+86 139 1111 2222")):
        execute(database_url, "INSERT INTO resident_contacts (resident_id, position, name, "
                "relation, phone) VALUES (%s, %s, %s, %s, %s)",
                world.alice, position, name, relation, phone)
    execute(database_url, "UPDATE alerts SET opened_at = %s WHERE id = %s", SHANGHAI_0603,
            world.sos_alice)


def reads_of(database_url: str, resident_id: int) -> object:
    """How often the resident's ledger entry was read (the audit trail)."""
    return scalar(database_url, "SELECT count(*) FROM audit_log WHERE action = "
                  "'resident.read' AND resident_id = %s", resident_id)


ALICE_TEL = ["tel:+8613800000001", "tel:+8613911112222", "tel:01088887777"]
ALICE_MAP = "1%20Fjord%20Road%2C%20Flat%203%20%26%204"


def small_targets(page: Page) -> list[str]:
    """The visible controls lower than MIN_TAP_PX, as "text (height)"."""
    small = []
    for control in page.locator(TAPPABLE).all():
        box = control.bounding_box()
        if box is not None and box["height"] < MIN_TAP_PX:
            small.append(f"{control.inner_text().strip()[:40]!r} ({box['height']:.0f} px)")
    return small


def test_queue_and_visits_with_calls_maps_and_site_times(server: Served, world: World,
                                                         clean_db, screenshot):
    from playwright.sync_api import expect

    ledger_for_reaching_alice(clean_db, world)
    execute(clean_db, "UPDATE alerts SET assigned_to = %s WHERE id = %s", world.care_north,
            world.sos_alice)
    execute(clean_db, "INSERT INTO visits (resident_id, site_id, due_on, assigned_to, status, "
            "arrived_at) VALUES (%s, 'north', current_date, %s, 'in_progress', %s)",
            world.bob, world.care_north, SHANGHAI_0605)
    with logged_in_page(PHONE, f"{server.url}/worker", "care-north", **TOUCH) as browser:
        page = browser.page
        card = page.locator("#mine-list .alert", has_text="SOS call")
        expect(card).to_contain_text("2026-03-01 14:03")  # the site's zone, 24 h
        # The queue's heading on the first screen, the visits one tap away on the bar fixed
        # to the bottom of the screen (the thumb's reach).
        expect(page.locator("#mine-heading")).to_be_in_viewport()
        bar = page.locator(".thumb-bar")
        box = bar.bounding_box()
        assert box is not None and box["y"] + box["height"] == pytest.approx(PHONE["height"], abs=1)
        expect(bar.get_by_role("link", name="Visits")).to_contain_text("1")
        expect(bar.get_by_role("link", name="Queue")).to_contain_text("2")  # + her battery
        screenshot(page, "worker-phone-queue")
        bar.get_by_role("link", name="Visits").tap()
        expect(page.locator("#visits-heading")).to_be_in_viewport()
        bar.get_by_role("link", name="Queue").tap()
        expect(page.locator("#mine-heading")).to_be_in_viewport()

        # One tap opens "Call or find the way": Alice, then her contacts in calling order,
        # read from her ledger entry only then (each read is audited), once.
        assert reads_of(clean_db, world.alice) == 0
        card.get_by_text("Call or find the way").tap()
        calls = card.locator(".reach a[href^='tel:']")
        expect(calls).to_have_count(3)
        wait_until(lambda: reads_of(clean_db, world.alice) == 1, what="the audited read")
        assert [link.get_attribute("href") for link in calls.all()] == ALICE_TEL
        expect(calls.nth(0)).to_contain_text("Call Alice Andersen")
        expect(calls.nth(1)).to_contain_text("Call Eva Andersen (daughter)")
        expect(calls.nth(1)).to_contain_text("+86 139 1111 2222")
        expect(calls.nth(2)).to_contain_text("Call Olaf Andersen (son)")
        maps = card.locator(".reach-link--map")
        expect(maps).to_have_attribute("href", f"geo:0,0?q={ALICE_MAP}")
        expect(maps).to_contain_text("1 Fjord Road, Flat 3 & 4")

        # My visit to Bob: arrival in the site's time, his address (no phone in the ledger).
        visit = page.locator("#visits-list .visit", has_text="Bob Berg")
        expect(visit).to_contain_text("arrived 2026-03-01 14:05")
        visit.get_by_text("Call or find the way").tap()
        expect(visit.locator(".reach-link--map")).to_have_attribute(
            "href", "geo:0,0?q=2%20Fjord%20Road")
        expect(visit.locator(".reach a[href^='tel:']")).to_have_count(0)

        assert small_targets(page) == []
        assert fits_width(page)
        screenshot(page, "worker-phone-visits")
    assert browser.problems == []


def test_an_iphone_gets_an_apple_maps_link(server: Served, world: World, clean_db):
    from playwright.sync_api import expect

    ledger_for_reaching_alice(clean_db, world)
    with logged_in_page(PHONE, f"{server.url}/worker", "care-north", user_agent=IPHONE_UA,
                        **TOUCH) as browser:
        card = browser.page.locator("#site-list .alert", has_text="SOS call")
        card.locator(".reach-summary").tap()
        expect(card.locator(".reach-link--map")).to_have_attribute(
            "href", f"maps://?q={ALICE_MAP}")
        expect(card.locator(".reach a[href^='tel:']")).to_have_count(3)
    assert browser.problems == []


def test_claim_then_resolve_one_handed(server: Served, world: World, clean_db, screenshot):
    """An alert open at my site: Acknowledge claims it into my queue; Resolve with an
    outcome from the vocabulary; every control on the way is a thumb-sized target."""
    from playwright.sync_api import expect

    with logged_in_page(PHONE, f"{server.url}/worker", "care-north", **TOUCH) as browser:
        page = browser.page
        site_card = page.locator("#site-list .alert", has_text="SOS call")
        expect(site_card).to_contain_text("Alice Andersen")
        assert small_targets(page) == []
        site_card.get_by_role("button", name="Acknowledge").tap()

        card = page.locator("#mine-list .alert", has_text="SOS call")
        expect(card).to_contain_text("Acknowledged by you")
        expect(page.locator("#site-list .alert", has_text="SOS call")).to_have_count(0)
        card.get_by_role("button", name="Resolve…").tap()
        card.get_by_label("Outcome").select_option("false_alarm")
        assert small_targets(page) == []
        screenshot(page, "worker-phone-resolve")
        card.get_by_role("button", name="Resolve alert").tap()
        expect(card).to_have_count(0)
        assert fits_width(page)
    assert scalar(clean_db, "SELECT acknowledged_by FROM alerts WHERE id = %s",
                  world.sos_alice) == world.care_north
    assert scalar(clean_db, "SELECT outcome FROM alerts WHERE id = %s",
                  world.sos_alice) == "false_alarm"
    assert browser.problems == []


def test_the_page_registers_the_service_worker_on_localhost(server: Served, world: World,
                                                            clean_db):
    """Push reaches a locked phone only through the service worker, which browsers allow
    only in a secure context: HTTPS, or (as here) localhost. The page registers it on every
    visit, before anyone taps "Enable notifications"."""
    with logged_in_page(PHONE, f"{server.url}/worker", "care-north", **TOUCH) as browser:
        page = browser.page
        assert page.evaluate("window.isSecureContext") is True
        # `ready`: a registration with an active worker (waits for it); then it controls
        # the page (sw.js claims its clients on activation).
        scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
        assert scope == f"{server.url}/"
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15_000)
        assert page.locator("#notify-message").inner_text() == ""
    assert browser.problems == []


def test_an_address_that_is_not_secure_says_notifications_need_https(server: Served,
                                                                     world: World, clean_db):
    """The page as a phone sees it at a plain-http address that is not localhost (here a
    made-up host whose requests the browser hands to the real server): no service worker is
    possible there, and the page says why instead of failing later."""
    from playwright.sync_api import Route, expect

    def to_server(route: Route) -> None:
        path = route.request.url.removeprefix("http://care.test")
        if path.startswith("/api/v1/alerts/stream"):  # a stream never ends: not proxied
            route.abort()
            return
        route.fulfill(response=route.fetch(url=f"{server.url}{path}"))

    with browser_page(PHONE, **TOUCH) as browser:
        page = browser.page
        page.route("http://care.test/**", to_server)
        log_in(page, "http://care.test/worker", "care-north")
        expect(page.locator("#mine-heading")).to_be_visible()
        assert page.evaluate("window.isSecureContext") is False
        expect(page.locator("#notify-message")).to_contain_text(
            "Notifications need a secure (https://) address")
        assert page.evaluate("'serviceWorker' in navigator") is False

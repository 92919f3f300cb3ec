"""The duty screen in a real headless Chromium against a real uvicorn, database and broker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from dashboard.app import create_app
from dashboard.live.settings import StreamSettings
from kernel import db
from tests.support.dashboard import PASSWORD, SECRET, World, insert_alert
from tests.support.live import (
    PHONE,
    TOUCH,
    WALL,
    Served,
    TcpProxy,
    browser_page,
    bus_event,
    bus_publisher,
    fits_width,
    live,
    log_in,
    logged_in_page,
    running_server,
)
from tests.support.services import Broker
from tests.support.wait import wait_until

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips


def add_alert(database_url: str, resident_id: int, type_: str, **columns: object) -> int:
    """A new critical alert at site north, committed (the feed is notified)."""
    with db.connect(database_url, autocommit=True) as conn:
        return insert_alert(conn, resident_id, "north", type_, "critical", minutes_ago=0,
                            **columns)  # type: ignore[arg-type]


def alert_row(database_url: str, alert_id: int) -> tuple[object, ...]:
    """(status, acknowledged_by, resolved_by, outcome, note) of an alert."""
    with db.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT status, acknowledged_by, resolved_by, outcome, note "
                           "FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return tuple(row)


@contextmanager
def feed_paused(owner_url: str) -> Iterator[None]:
    """Alert changes are not announced (as if the screen had not heard of them yet); the
    owner's URL (disabling a trigger needs the table's owner)."""
    with db.connect(owner_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE alerts DISABLE TRIGGER alerts_notify_change")
        try:
            yield
        finally:
            conn.execute("ALTER TABLE alerts ENABLE TRIGGER alerts_notify_change")


def test_duty_screen_is_live_groups_alerts_and_acts_on_them(server: Served, world: World,
                                                            clean_db, screenshot):
    from playwright.sync_api import expect

    with logged_in_page(WALL, server.url, "duty-north") as browser:
        page = browser.page

        alice = page.locator(".alert-group", has_text="Alice Andersen")
        expect(alice).to_be_visible()
        expect(alice).to_contain_text("1 Fjord Road · site north")
        expect(alice.locator(".alert")).to_have_count(2)  # her SOS and her battery, together
        sos = alice.locator(".alert", has_text="SOS call")
        expect(sos).to_contain_text("CRITICAL")
        expect(sos).to_contain_text("min ago")
        battery = alice.locator(".alert", has_text="Low battery")
        expect(battery).to_contain_text("Acknowledged by Carl Care")  # the name comes with it
        expect(page.locator(".alert-group")).to_have_count(1)  # south's SOS is not shown
        expect(page.get_by_text("Dora Duty · Duty officer · site north")).to_be_visible()
        expect(page.locator("#feed-status")).to_contain_text("Live")

        resident = page.locator(".resident", has_text="Alice Andersen")
        expect(resident).to_contain_text("1 open alert")
        expect(resident).to_contain_text("OFFLINE")
        expect(resident).to_contain_text("battery LOW 12%")
        expect(page.locator(".resident")).to_have_count(2)

        # A new alert reaches the screen through the stream, without a reload or a poll.
        fall = add_alert(clean_db, world.bob, "fall")
        bob = page.locator(".alert-group", has_text="Bob Berg")
        expect(bob).to_contain_text("Fall detected", timeout=3_000)
        expect(page.locator("#critical-banner")).to_have_text(
            "New critical alert: Fall detected — Bob Berg")
        expect(bob.locator(".alert")).to_have_class(re.compile(r"\balert--fresh\b"))
        expect(page.locator(".resident", has_text="Bob Berg")).to_contain_text("1 open alert")

        bob.get_by_role("button", name="Acknowledge").click()
        expect(bob.locator(".alert")).to_contain_text("Acknowledged by you")
        expect(bob.get_by_role("button", name="Acknowledge")).to_have_count(0)
        assert alert_row(clean_db, fall)[:2] == ("acknowledged", world.duty_north)

        # Resolving: the server's readable 422 is shown, then the alert leaves the screen.
        bob.get_by_role("button", name="Resolve…").click()
        bob.get_by_label("Outcome").select_option("other")
        bob.get_by_role("button", name="Resolve alert").click()
        expect(bob.locator(".action-message")).to_contain_text("a note is required")
        bob.get_by_label("Outcome").select_option("assisted_at_home")
        bob.get_by_label("Note").fill("Helped back to bed")
        bob.get_by_role("button", name="Resolve alert").click()
        expect(page.locator(".alert-group", has_text="Bob Berg")).to_have_count(0)
        assert alert_row(clean_db, fall) == ("resolved", world.duty_north, world.duty_north,
                                             "assisted_at_home", "Helped back to bed")

        screenshot(page, "duty-screen")

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_label("Username")).to_be_visible()
        expect(page.locator(".alert")).to_have_count(0)
        assert page.evaluate("sessionStorage.length") == 0
    assert browser.problems == []


def test_someone_else_acknowledging_first_is_explained(server: Served, world: World, clean_db,
                                                      owner_url):
    from playwright.sync_api import expect

    with browser_page(WALL) as browser:
        page = browser.page
        log_in(page, server.url, "duty-north")
        sos = page.locator(".alert", has_text="SOS call")
        expect(sos.get_by_role("button", name="Acknowledge")).to_be_visible()

        with feed_paused(owner_url):  # the screen has not heard of the colleague's click yet
            token = httpx.post(f"{server.url}/api/v1/auth/token",
                               data={"username": "care-north", "password": PASSWORD}
                               ).json()["access_token"]
            resp = httpx.post(f"{server.url}/api/v1/alerts/{world.sos_alice}/ack",
                              headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 200, resp.text
            sos.get_by_role("button", name="Acknowledge").click()
            expect(sos.locator(".action-message")).to_contain_text(
                "Already acknowledged by Carl Care")
        # ...and the screen reloads the list, so the alert now shows who has it.
        expect(sos).to_contain_text("Acknowledged by Carl Care")
    assert browser.problems == []


def test_unsaved_alert_from_the_bus_shows_until_it_is_stored(server: Served, world: World,
                                                             clean_db, broker: Broker):
    from playwright.sync_api import expect

    with (logged_in_page(WALL, server.url, "duty-north") as browser,
          bus_publisher(broker.pipeline) as bus):
        page = browser.page
        expect(page.locator(".alert-group")).to_have_count(1)

        raised = bus_event("north", world.bob, "fall", device_id="bed-bob")
        bus.publish(raised)
        bob = page.locator(".alert-group", has_text="Bob Berg")
        expect(bob.locator(".alert")).to_contain_text("Not yet saved", timeout=3_000)
        expect(bob.locator(".alert")).to_have_class(re.compile(r"\balert--pending\b"))
        expect(bob.get_by_role("button", name="Acknowledge")).to_have_count(0)
        expect(page.locator("#critical-banner")).to_contain_text("Bob Berg (not yet saved)")

        stored = add_alert(clean_db, world.bob, "fall", uid=raised.uid, device_id="bed-bob")
        card = bob.locator(f'.alert[data-alert-id="{stored}"]')
        expect(card).to_contain_text("Fall detected")
        expect(bob.locator(".alert")).to_have_count(1)
        expect(card).not_to_contain_text("Not yet saved")
        expect(card.get_by_role("button", name="Acknowledge")).to_be_visible()
        # ...and so does the banner (it called the alert unsaved a moment ago).
        expect(page.locator("#critical-banner")).to_contain_text("Bob Berg")
        expect(page.locator("#critical-banner")).not_to_contain_text("not yet saved")
    assert browser.problems == []


def test_while_the_database_is_down_bus_alerts_still_show(world: World, clean_db, pg_config,
                                                           broker: Broker):
    from playwright.sync_api import expect

    proxy = TcpProxy(pg_config.port)
    app = create_app(proxy.url_for(clean_db, pg_config.port), SECRET, mqtt=broker.pipeline)
    stream = live(app)
    stream.settings = StreamSettings(backoff_min_s=0.05, backoff_max_s=0.5, db_ping_s=1.0)
    try:
        with (running_server(app) as srv, browser_page(WALL) as browser,
              bus_publisher(broker.pipeline) as bus):
            wait_until(lambda: stream.database_up and stream.bus_up, what="the live feed")
            page = browser.page
            log_in(page, srv.url, "duty-north")
            expect(page.locator(".alert", has_text="SOS call")).to_be_visible()

            proxy.cut()
            expect(page.locator("#stale-banner")).to_contain_text("The database is unavailable")
            raised = bus_event("north", world.bob, "fall")
            bus.publish(raised)
            bob = page.locator(".alert-group", has_text="Bob Berg")
            expect(bob.locator(".alert")).to_contain_text("Not yet saved")
            expect(page.locator(".alert", has_text="SOS call")).to_be_visible()  # kept

            # The pipeline stores it while this web app cannot see the database; once it can,
            # the screen reloads and the unsaved card becomes the stored alert.
            stored = add_alert(clean_db, world.bob, "fall", uid=raised.uid)
            proxy.restore()
            expect(bob.locator(f'.alert[data-alert-id="{stored}"]')).to_contain_text(
                "Fall detected", timeout=10_000)
            expect(bob.locator(".alert")).to_have_count(1)
            expect(page.locator("#stale-banner")).to_be_hidden()
        assert browser.problems == []
    finally:
        proxy.close()


def test_screen_reconnects_after_a_server_restart_and_catches_up(world: World, clean_db):
    from playwright.sync_api import expect

    with running_server(create_app(clean_db, SECRET)) as srv, browser_page(WALL) as browser:
        page = browser.page
        log_in(page, srv.url, "duty-north")
        expect(page.locator(".alert", has_text="SOS call")).to_be_visible()
        expect(page.locator("#feed-status")).to_contain_text("Live")

        srv.stop()
        expect(page.locator("#feed-status")).to_have_text("Reconnecting…")
        add_alert(clean_db, world.bob, "fall")  # raised while the screen is disconnected
        with running_server(create_app(clean_db, SECRET), port=srv.port):
            bob = page.locator(".alert-group", has_text="Bob Berg")
            expect(bob).to_contain_text("Fall detected", timeout=20_000)
            expect(page.locator("#feed-status")).to_contain_text("Live")
    assert browser.problems == []


def test_duty_screen_on_a_phone_and_family_view(server: Served, world: World, screenshot):
    from playwright.sync_api import expect

    with logged_in_page(PHONE, server.url, "duty-north", **TOUCH) as browser:
        page = browser.page
        expect(page.locator(".alert", has_text="SOS call")).to_be_visible()
        expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
        assert fits_width(page)
        screenshot(page, "duty-phone")

        page.get_by_role("button", name="Log out").click()
        log_in(page, server.url, "family-alice")  # relatives land on their own page
        expect(page).to_have_url(re.compile(r"/family$"))
        alice = page.locator(".family-card", has_text="Alice Andersen")
        expect(alice.locator(".family-alert")).to_have_count(2)
        expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
        expect(page.get_by_role("button", name="Resolve…")).to_have_count(0)
        assert fits_width(page)
    assert browser.problems == []


def test_login_errors_are_readable(server: Served):
    from playwright.sync_api import expect

    with browser_page(PHONE) as browser:
        page = browser.page
        page.goto(server.url)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Enter your username and password.")
        page.get_by_label("Username").fill("duty-north")
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Incorrect username or password")
    assert browser.problems == []


def test_log_out_ends_the_session_and_deactivation_shows_the_login_form(
        server: Served, world: World, clean_db):
    from playwright.sync_api import expect

    from kernel import accounts

    def open_sessions() -> int:
        with db.connect(clean_db, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM sessions WHERE user_id = %s "
                               "AND revoked_at IS NULL", (world.duty_north,)).fetchone()
        return int(row[0]) if row else 0

    with logged_in_page(WALL, server.url, "duty-north") as browser:
        page = browser.page
        expect(page.locator("#feed-status")).to_contain_text("Live")
        assert open_sessions() == 1
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_label("Username")).to_be_visible()
        wait_until(lambda: open_sessions() == 0, what="the session revoked on the server")

        log_in(page, server.url, "duty-north")
        expect(page.locator("#feed-status")).to_contain_text("Live")
        with db.connect(clean_db) as conn:
            accounts.set_user_active(conn, "duty-north", False)
        expect(page.get_by_label("Username")).to_be_visible()
        expect(page.locator("#login-message")).to_contain_text("account deactivated")
    assert browser.problems == []


def test_a_screen_whose_stream_was_taken_over_says_so(world: World, clean_db):
    """Beyond the per-account limit the oldest stream closes with action "stop": that screen
    says why and does not reconnect (which would only close the other one)."""
    from playwright.sync_api import expect

    app = create_app(clean_db, SECRET)
    live(app).settings.max_per_account = 1
    with running_server(app) as srv, browser_page(WALL) as first:
        wait_until(lambda: live(app).database_up, what="the live feed")
        log_in(first.page, srv.url, "duty-north")
        expect(first.page.locator("#feed-status")).to_contain_text("Live")
        browser = first.page.context.browser
        assert browser is not None
        second = browser.new_context(viewport=WALL).new_page()  # another screen
        log_in(second, srv.url, "duty-north")
        expect(second.locator("#feed-status")).to_contain_text("Live")
        expect(first.page.locator("#feed-status")).to_have_text("Feed closed")
        expect(first.page.locator("#stale-banner")).to_contain_text(
            "too many live streams for this account")
        wait_until(lambda: len(live(app).hub) == 1, what="one stream left")
        expect(second.locator("#feed-status")).to_contain_text("Live")
    assert first.problems == []


def test_the_duty_screen_says_which_parts_are_down(server: Served, world: World,
                                                   broker: Broker):
    """A part's Last Will (gateway.presence) shows as "Pipeline … down since HH:MM" on the
    duty screen, and goes away when the part is back."""
    from datetime import UTC, datetime

    from playwright.sync_api import expect

    from gateway.presence import PartState, part_topic

    part = "pipeline-screen"
    down = PartState(part=part, up=False, since=datetime(2026, 3, 1, 3, 12, tzinfo=UTC),
                     reason="lost")
    with browser_page(WALL) as browser, bus_publisher(broker.pipeline) as bus:
        try:
            page = browser.page
            log_in(page, server.url, "duty-north")
            banner = page.locator("#parts-banner")
            expect(banner).not_to_contain_text("Pipeline screen")
            bus.publish_raw(part_topic(part), down.model_dump_json().encode(), retain=True)
            expect(banner).to_be_visible()
            expect(banner).to_have_text(re.compile(r"^Pipeline screen down since \d\d:\d\d$"))
            up = PartState(part=part, up=True, since=datetime(2026, 3, 1, 3, 13, tzinfo=UTC))
            bus.publish_raw(part_topic(part), up.model_dump_json().encode(), retain=True)
            expect(banner).not_to_contain_text("Pipeline screen")
        finally:
            bus.publish_raw(part_topic(part), b"", retain=True)
    assert browser.problems == []


def test_the_pages_link_to_the_others_each_role_may_use(server: Served, world: World):
    """A duty officer reaches administration, reports and their account from the duty
    screen; a care worker who opens it finds their own page. (A wall display shows no page
    links: test_display_page.)"""
    from playwright.sync_api import expect

    with logged_in_page(WALL, server.url, "duty-north") as browser:
        nav = browser.page.get_by_role("navigation", name="Pages")
        for name in ("Administration", "Answer times", "Sent notifications", "My account"):
            expect(nav.get_by_role("link", name=name)).to_be_visible()
        expect(nav.get_by_role("link", name="My work")).to_be_hidden()
    with logged_in_page(WALL, server.url, "care-north") as browser:
        nav = browser.page.get_by_role("navigation", name="Pages")
        expect(nav.get_by_role("link", name="My work")).to_have_attribute("href", "/worker")
        expect(nav.get_by_role("link", name="Administration")).to_be_hidden()
    assert browser.problems == []

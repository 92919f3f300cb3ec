"""The family view in a real headless Chromium on a phone (issue 13, third scenario): a
relative sees how their mother's SOS ended and last night's summary, and the page follows
a new alert live. The app's clock is fixed at seed.NOW (the seeded night's morning)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from dashboard.app import create_app
from kernel import db
from tests.dashboard.family.seed import NOW, FamilyWorld, seed_family
from tests.support.dashboard import SECRET, World, insert_alert
from tests.support.live import (
    PHONE,
    TOUCH,
    Served,
    fits_width,
    live,
    logged_in_page,
    running_server,
)
from tests.support.services import Broker
from tests.support.visits import completed_visit
from tests.support.wait import wait_until

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips


@pytest.fixture
def family(world: World, clean_db: str) -> FamilyWorld:
    return seed_family(clean_db, world)


@pytest.fixture
def server(family: FamilyWorld, clean_db: str, broker: Broker) -> Iterator[Served]:
    """The dashboard with its live feed, its clock standing at NOW."""
    app = create_app(clean_db, SECRET, mqtt=broker.pipeline, clock=lambda: NOW)
    stream = live(app)
    with running_server(app) as srv:
        wait_until(lambda: stream.database_up and stream.bus_up, what="the live feed")
        yield srv


def new_sos(database_url: str, world: World) -> int:
    """Alice presses her button a minute before NOW (committed: the feed announces it)."""
    with db.connect(database_url, autocommit=True) as conn:
        at = NOW - timedelta(minutes=1)
        return insert_alert(conn, world.alice, "north", "sos", "critical",
                            device_id="btn-alice", opened_at=at, created_at=at, last_seen=at)


def test_a_relative_sees_how_the_sos_ended_and_last_night(server: Served, world: World,
                                                          family: FamilyWorld, clean_db,
                                                          screenshot):
    from playwright.sync_api import expect

    completed_visit(clean_db, world.alice, "north", days_ago=2,
                    findings="Key safe code 4711 used, staff-only remark")
    # at /, relatives are sent to /family
    with logged_in_page(PHONE, server.url, "family-alice", **TOUCH) as browser:
        page = browser.page
        expect(page).to_have_url(re.compile(r"/family$"))
        card = page.locator(".family-card", has_text="Alice Andersen")
        expect(card.locator(".family-state")).to_have_text("Up and about since 09:12")
        sos = card.locator(".family-alert", has_text="SOS call")
        expect(sos).to_contain_text("Resolved: a carer helped at home")
        expect(sos).to_contain_text("A carer is responding")
        expect(sos.locator(".family-all-clear")).to_have_text(
            "All clear at 08:31: a carer helped at home")
        expect(card.locator(".night-in-bed")).to_have_text("8 h 11 min")
        expect(card.locator(".night-exits")).to_have_text("3")
        expect(card.locator(".night-hr")).to_contain_text("lower than usual")
        expect(card.locator(".night-rr")).to_have_text("14 /min: about usual (usual 14)")
        expect(card.locator(".week-rows tr")).to_have_count(7)
        visits = card.locator(".family-visits")
        expect(visits).to_contain_text("A carer visited; all was well")
        settings = page.locator("#settings-list")
        expect(settings).to_contain_text("anna@example.org")
        expect(settings.get_by_label("Tell me about alerts from")).to_have_value("high")
        expect(settings.get_by_label("Quiet hours from")).to_have_value("22:00")
        expect(settings.get_by_label("to", exact=True)).to_have_value("07:00")
        expect(settings.get_by_role("button", name="Send test")).to_be_visible()
        for staff_only in ("4711", "care-north", "Carl Care", "assigned", "staff-only"):
            expect(page.locator("body")).not_to_contain_text(staff_only)
        assert fits_width(page)
        screenshot(page, "family-all-clear")

        alert_id = new_sos(clean_db, world)  # the feed pushes it; the card follows
        fresh = card.locator(".family-alert").first
        expect(fresh).to_contain_text("The care team has been alerted", timeout=20_000)
        screenshot(page, "family-new-alert")
        with db.connect(clean_db, autocommit=True) as conn:
            conn.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_at = %s, "
                         "acknowledged_by = %s WHERE id = %s",
                         (NOW, world.care_north, alert_id))
        expect(fresh).to_contain_text("A carer is responding", timeout=20_000)
        expect(page.locator("#feed-status")).to_contain_text("Live")
        screenshot(page, "family-responding")

        # Their own notification settings: only critical alerts, no quiet hours.
        settings.get_by_label("Quiet hours from").fill("7pm")  # refused, with the reason
        settings.get_by_role("button", name="Save").click()
        expect(settings.get_by_role("status")).to_contain_text("24-hour time HH:MM")
        settings.get_by_label("Tell me about alerts from").select_option("critical")
        settings.get_by_label("Quiet hours from").fill("")
        settings.get_by_label("to", exact=True).fill("")
        settings.get_by_role("button", name="Save").click()
        expect(settings.get_by_role("status")).to_have_text("Saved.")
        with db.connect(clean_db, autocommit=True) as conn:
            row = conn.execute("SELECT min_severity, quiet_start, quiet_end "
                               "FROM notification_channels WHERE user_id = %s",
                               (world.family_alice,)).fetchone()
        assert row == ("critical", None, None)
        screenshot(page, "family-settings")

        page.goto(f"{server.url}/alerts/{family.sos}")  # the link in their notification
        expect(page).to_have_url(re.compile(r"/family$"))
        expect(card.locator(".family-all-clear")).to_be_visible()
    assert browser.problems == []

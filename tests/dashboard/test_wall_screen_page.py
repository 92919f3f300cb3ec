"""The wall screen at 1920×1080 in a real headless Chromium against a real uvicorn, database
and broker: the district tiles with their counts and filters, updated live; a new critical
SOS first with its alarm and sound state, countdown and who has it; the parts strip."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from kernel import db
from tests.support.dashboard import World, insert_alert
from tests.support.home_states import seed_states
from tests.support.live import Served, browser_page, bus_publisher, log_in, logged_in_page
from tests.support.services import Broker

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

WALL_1080 = {"width": 1920, "height": 1080}


def test_the_district_at_a_glance_counts_filters_and_follows_alerts(
        server: Served, world: World, clean_db, screenshot):
    from playwright.sync_api import expect

    homes = seed_states(clean_db, world)
    with logged_in_page(WALL_1080, server.url, "duty-north") as browser:  # type: ignore[arg-type]
        page = browser.page
        tiles = page.locator("#tiles-grid .tile")
        expect(tiles).to_have_count(9)
        counts = page.locator("#tiles-counts")
        for state, n in (("alert", 1), ("offline", 2), ("visit_overdue", 1), ("away", 1),
                         ("up", 2), ("in_bed", 1), ("no_data", 1)):
            expect(counts.locator(f'[data-state="{state}"] .tile-count-n')).to_have_text(str(n))
        expect(counts.locator('[data-state="offline"]')).to_contain_text("Device offline")
        ingrid = page.locator(f'.tile[data-resident-id="{homes["in_bed"]}"]')
        expect(ingrid).to_have_attribute("data-state", "in_bed")
        expect(ingrid).to_contain_text("In bed")
        expect(ingrid).to_contain_text(re.compile(r"bed \d{4}-\d\d-\d\d \d\d:\d\d"))
        expect(page.locator(f'.tile[data-resident-id="{homes["away"]}"]')).to_have_class(
            re.compile(r"\btile--away\b"))
        screenshot(page, "wall-district")

        page.locator("#tiles-risk").select_option("dementia")
        expect(tiles).to_have_count(2)
        expect(counts.locator('[data-state="alert"] .tile-count-n')).to_have_text("0")
        page.locator("#tiles-risk").select_option("")
        expect(tiles).to_have_count(9)
        expect(page.locator("#tiles-site option")).to_have_text(["All sites", "Site north"])

        # A new alert turns Ingrid's tile red without a reload (the alert list changed).
        with db.connect(clean_db, autocommit=True) as conn:
            insert_alert(conn, homes["in_bed"], "north", "fall", "critical", minutes_ago=0)
        expect(ingrid).to_have_attribute("data-state", "alert", timeout=10_000)
        expect(counts.locator('[data-state="alert"] .tile-count-n')).to_have_text("2")
    assert browser.problems == []


def test_a_new_critical_sos_comes_first_with_alarm_countdown_and_sound(
        server: Served, world: World, clean_db, screenshot):
    from playwright.sync_api import expect

    with db.connect(clean_db, autocommit=True) as conn:
        conn.execute("UPDATE alerts SET status = 'resolved', resolved_at = now() WHERE id = %s",
                     (world.sos_alice,))
        insert_alert(conn, world.alice, "north", "long_absence", "warning", minutes_ago=10)
    with logged_in_page(WALL_1080, server.url, "duty-north") as browser:  # type: ignore[arg-type]
        page = browser.page
        body = page.locator("body")
        groups = page.locator(".alert-group")
        expect(groups).to_have_count(1)
        expect(body).to_have_attribute("data-sound", "on")  # on by default
        expect(body).to_have_attribute("data-alarm", "quiet")
        page.get_by_role("button", name="Test sound").click()
        expect(body).to_have_attribute("data-beeps", "1")

        due = datetime.now(UTC) + timedelta(minutes=3)
        with db.connect(clean_db) as conn:  # one transaction: pushed with its deadline
            sos = insert_alert(conn, world.bob, "north", "sos", "critical", minutes_ago=0,
                               assigned_to=world.care_north)
            conn.execute("INSERT INTO alert_escalations (alert_id, step, audience, due_at) "
                         "VALUES (%s, 1, 'duty_officers', %s)", (sos, due))
            conn.commit()

        expect(groups.first).to_contain_text("Bob Berg", timeout=5_000)  # before the warning
        card = page.locator(f'.alert[data-alert-id="{sos}"]')
        expect(groups.first.locator(".alert")).to_have_attribute("data-alert-id", str(sos))
        expect(card).to_have_class(re.compile(r"\balert--critical\b.*\balert--fresh\b"))
        expect(card).to_contain_text(re.compile(r"Escalates in [0-3]:\d\d unless acknowledged"))
        expect(card).to_contain_text("Assigned to Carl Care")
        expect(page.locator("#critical-banner")).to_contain_text("SOS call — Bob Berg")
        expect(body).to_have_attribute("data-alarm", "ringing")
        expect(page.locator("#parts-strip [data-part='database']")).to_have_attribute(
            "data-state", "up")
        expect(page.locator("#parts-strip li")).to_have_count(3)
        screenshot(page, "wall-new-critical-sos")

        card.get_by_role("button", name="Acknowledge").click()
        expect(card).to_contain_text("Acknowledged by you")
        expect(body).to_have_attribute("data-alarm", "quiet")  # stops once acknowledged
        expect(card.locator(".countdown")).to_have_count(0)
    assert browser.problems == []


def test_the_parts_strip_says_when_notifications_are_down(server: Served, world: World,
                                                          broker: Broker, screenshot):
    """The `jobs` process (escalation and notification dispatcher) announces itself with a
    presence; its Last Will turns "Notifications" DOWN on the strip, with the fall-back
    banner, until it is back."""
    from playwright.sync_api import expect

    from gateway.presence import PartState, part_topic

    jobs = part_topic("jobs")
    down = PartState(part="jobs", up=False, since=datetime(2026, 3, 1, 3, 12, tzinfo=UTC),
                     reason="lost")
    with browser_page(WALL_1080) as browser, bus_publisher(broker.pipeline) as bus:  # type: ignore[arg-type]
        try:
            page = browser.page
            log_in(page, server.url, "duty-north")
            strip = page.locator("#parts-strip")
            notifications = strip.locator("[data-part='notifications']")
            expect(strip.locator("[data-part='database']")).to_have_attribute("data-state", "up")
            expect(page.locator("#parts-fallback")).to_be_hidden()
            bus.publish_raw(jobs, down.model_dump_json().encode(), retain=True)
            expect(notifications).to_have_attribute("data-state", "down")
            expect(notifications).to_have_text(
                re.compile(r"^Notifications: DOWN since \d\d:\d\d$"))
            expect(page.locator("#parts-fallback")).to_be_visible()
            screenshot(page, "wall-notifications-down")
            up = PartState(part="jobs", up=True, since=datetime(2026, 3, 1, 3, 13, tzinfo=UTC))
            bus.publish_raw(jobs, up.model_dump_json().encode(), retain=True)
            expect(notifications).to_have_attribute("data-state", "up")
            expect(page.locator("#parts-fallback")).to_be_hidden()
        finally:
            bus.publish_raw(jobs, b"", retain=True)
    assert browser.problems == []


def test_under_reduced_motion_a_new_critical_alert_is_framed_not_pulsing(
        server: Served, world: World, clean_db):
    from playwright.sync_api import expect

    with logged_in_page(WALL_1080, server.url, "duty-north",  # type: ignore[arg-type]
                        reduced_motion="reduce") as browser:
        page = browser.page
        expect(page.locator(".alert-group")).to_have_count(1)
        with db.connect(clean_db, autocommit=True) as conn:
            fall = insert_alert(conn, world.bob, "north", "fall", "critical", minutes_ago=0)
        card = page.locator(f'.alert[data-alert-id="{fall}"]')
        expect(card).to_have_class(re.compile(r"\balert--fresh\b"))
        style = card.evaluate("c => { const s = getComputedStyle(c); "
                              "return [s.animationName, s.outlineStyle]; }")
        assert style == ["none", "dashed"]
        expect(page.locator("body")).to_have_attribute("data-alarm", "ringing")
    assert browser.problems == []

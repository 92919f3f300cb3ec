"""Issue 14's rule on the pages, in a real headless Chromium whose zone (New York) is not the
site's (Shanghai): the staff page's sessions, the family page's invitation expiry, the roster's
instant, week headings and shifts, and the family view's alerts, steps, week and visits all
show the SITE's time, 24-hour, `YYYY-MM-DD HH:MM` (static/time.js). Every instant is fixed (in
the database or the address), never the wall clock; where the server sets one (an invitation
expires 72 h after it is made) the expected text is computed from the server's answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from dashboard.app import create_app
from kernel import db
from tests.dashboard.family.seed import NOW, FamilyWorld, local, seed_family
from tests.support.dashboard import PASSWORD, SECRET, World
from tests.support.live import (
    DESKTOP,
    PHONE,
    TOUCH,
    Screenshots,
    Served,
    browser_page,
    fits_width,
    live,
    logged_in_page,
    running_server,
)
from tests.support.services import Broker
from tests.support.visits import completed_visit
from tests.support.wait import wait_until

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

BROWSER_ZONE = "America/New_York"
SITE_ZONE = "Asia/Shanghai"
IN_BROWSER: dict[str, Any] = {"timezone_id": BROWSER_ZONE}
# 23:30 UTC on 1 March: 07:30 on 2 March in Shanghai, 18:30 on 1 March in New York.
AT = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


def _site_time(at: datetime) -> str:
    return at.astimezone(ZoneInfo(SITE_ZONE)).strftime("%Y-%m-%d %H:%M")


def _north_in_shanghai(database_url: str) -> None:
    with db.connect(database_url) as conn:
        conn.execute("UPDATE sites SET timezone = %s WHERE id = 'north'", (SITE_ZONE,))
        conn.commit()


def test_the_formatter_uses_the_site_zone_not_the_browsers(server: Served) -> None:
    """static/time.js itself, run in the New York browser."""
    with browser_page(DESKTOP, **IN_BROWSER) as browser:
        page = browser.page
        page.goto(f"{server.url}/admin")
        assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == BROWSER_ZONE
        got = page.evaluate("""async (at) => {
          const t = await import("/static/time.js");
          const z = "Asia/Shanghai";
          return [t.siteTime(at, z), t.siteClock(at, z), t.siteClock(at, z, true),
                  t.siteDate(at, z), t.siteWhen(at, z, "2026-03-02T12:00:00Z"),
                  t.siteWhen(at, z, "2026-03-01T12:00:00Z"), t.siteTime(Date.parse(at), z),
                  t.dayHeading("2026-03-02"), t.addDays("2026-02-28", 1),
                  t.addDays("2026-03-29", 1), t.siteTime(at, "Not/AZone"),
                  t.siteTime("2026-07-01T12:00:00Z", "America/New_York")];
        }""", AT.isoformat().replace("+00:00", ".250Z"))
    assert got == ["2026-03-02 07:30", "07:30", "07:30:00", "2026-03-02", "07:30",
                   "2026-03-02 07:30", "2026-03-02 07:30", "Mon 2026-03-02", "2026-03-01",
                   "2026-03-30", "2026-03-01 23:30 UTC", "2026-07-01 08:00"]
    assert browser.problems == []


def test_staff_sessions_show_the_accounts_site_time(server: Served, world: World,
                                                    clean_db: str,
                                                    screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    _north_in_shanghai(clean_db)
    with httpx.Client(base_url=server.url) as http:
        assert http.post("/api/v1/auth/token", data={"username": "care-north",
                                                     "password": PASSWORD}).status_code == 200
    with db.connect(clean_db) as conn:
        conn.execute("UPDATE sessions SET created_at = %s, expires_at = %s WHERE user_id = %s",
                     (AT, datetime(2099, 1, 1, 16, 0, tzinfo=UTC), world.care_north))
        conn.commit()
    with logged_in_page(DESKTOP, f"{server.url}/admin/staff", "admin", **IN_BROWSER) as browser:
        page = browser.page
        page.locator("tr[data-username='care-north']").get_by_role(
            "button", name="Sessions").click()
        cells = page.locator("#session-rows tr").first.locator("td")
        # New York would say 2026-03-01 18:30 and 2099-01-01 11:00.
        expect(cells.nth(0)).to_have_text("2026-03-02 07:30")
        expect(cells.nth(1)).to_have_text("2099-01-02 00:00")
        screenshot(page, "staff-sessions-site-time")
    assert browser.problems == []


def test_family_invitation_expiry_is_in_the_residents_site_time(server: Served, world: World,
                                                                clean_db: str,
                                                                screenshot: Screenshots
                                                                ) -> None:
    from playwright.sync_api import expect

    _north_in_shanghai(clean_db)
    with logged_in_page(DESKTOP, f"{server.url}/admin/family", "admin", **IN_BROWSER) as browser:
        page = browser.page
        form = page.locator("#family-form")
        form.get_by_label("Username").fill("son-bob")
        form.get_by_label("Resident").select_option(label="Bob Berg (north)")
        with page.expect_response(re.compile(r"/api/v1/users/\d+/invite$")) as answer:
            form.get_by_role("button", name="Create and invite").click()
        invite = answer.value.json()
        assert invite["site_timezone"] == SITE_ZONE
        expires = datetime.fromisoformat(invite["expires_at"])
        expect(page.locator("#shown-once")).to_contain_text(
            f"Invitation for son-bob (valid until {_site_time(expires)}): ")
        screenshot(page, "family-invitation-site-time")
    assert browser.problems == []


def test_roster_instant_week_and_shifts_are_in_site_time(server: Served, world: World,
                                                         clean_db: str,
                                                         screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    _north_in_shanghai(clean_db)
    address = f"{server.url}/admin/roster?site=north&at={AT.isoformat().replace('+00:00', 'Z')}"
    with logged_in_page(DESKTOP, address, "admin", **IN_BROWSER) as browser:
        page = browser.page
        expect(page.locator("#on-duty-at")).to_have_text("(2026-03-02 07:30 site time)")
        headings = page.locator("#week-grid h3")
        expect(headings).to_have_count(7)
        expect(headings.first).to_have_text("Mon 2026-03-02")
        expect(headings.last).to_have_text("Sun 2026-03-08")
        shift = page.locator("#shift-form")
        expect(shift.get_by_label("Day")).to_have_value("2026-03-02")
        for field in ("Day", "From", "To"):  # no locale's 03/02/2026 or 08:00 PM
            expect(shift.get_by_label(field)).to_have_attribute("type", "text")
        shift.get_by_label("Who").select_option(label="Carl Care (Care worker)")
        shift.get_by_label("From").fill("06:00")
        shift.get_by_label("To").fill("14:00")
        shift.get_by_role("button", name="Add shift").click()
        # Running at 07:30 Shanghai time (in New York it would be 18:30 the day before).
        expect(page.locator(".shift.now")).to_contain_text("06:00–14:00 Carl Care")
        expect(page.locator("#people-rows tr[data-username='care-north'] .on-duty")
               ).to_have_text("On duty")
        screenshot(page, "roster-site-time")
    assert browser.problems == []


@pytest.fixture
def family(world: World, clean_db: str) -> FamilyWorld:
    return seed_family(clean_db, world)  # north in Shanghai, Alice's SOS at 08:05 on 10 March


@pytest.fixture
def family_server(family: FamilyWorld, clean_db: str, broker: Broker) -> Iterator[Served]:
    """The dashboard with its live feed, its clock standing at the seed's NOW."""
    app = create_app(clean_db, SECRET, mqtt=broker.pipeline, clock=lambda: NOW)
    stream = live(app)
    with running_server(app) as srv:
        wait_until(lambda: stream.database_up and stream.bus_up, what="the live feed")
        yield srv


def test_family_view_alert_steps_week_and_visits_are_in_site_time(
        family_server: Served, world: World, family: FamilyWorld, clean_db: str,
        screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    visit = completed_visit(clean_db, world.alice, "north", days_ago=2)
    with db.connect(clean_db) as conn:  # 8 March 09:00-09:40 Shanghai (01:00-01:40 UTC)
        conn.execute("UPDATE visits SET arrived_at = %s, left_at = %s WHERE id = %s",
                     (local(date(2026, 3, 8), "09:00"), local(date(2026, 3, 8), "09:40"), visit))
        conn.commit()
    with logged_in_page(PHONE, family_server.url, "family-alice", **TOUCH,
                        **IN_BROWSER) as browser:
        page = browser.page
        card = page.locator(".family-card", has_text="Alice Andersen")
        sos = card.locator(".family-alert", has_text="A carer is responding")
        # New York would say 2026-03-09 19:05.
        expect(sos.locator(".family-alert-title")).to_contain_text("2026-03-10 08:05")
        expect(sos.locator(".family-steps li").first).to_contain_text("08:05")
        expect(sos.locator(".family-steps li").last).to_contain_text("08:31")
        expect(card.locator(".week-rows th", has_text="2026-03-10")).to_have_text(
            "Tue 2026-03-10")
        expect(card.locator(".family-visit-list li")).to_contain_text(
            ["2026-03-08 09:00–09:40"])
        assert fits_width(page)  # the dates fit the phone
        screenshot(page, "family-view-site-time")
    assert browser.problems == []



def test_ledger_dates_are_typed_and_shown_as_iso_dates(server: Served, world: World,
                                                       screenshot: Screenshots) -> None:
    """The resident's birth date and a consent's date: `YYYY-MM-DD` text fields, never the
    browser locale's 02/03/1930, and the saved consent reads the same."""
    from playwright.sync_api import expect

    with logged_in_page(DESKTOP, f"{server.url}/admin", "admin", **IN_BROWSER) as browser:
        page = browser.page
        page.locator("#resident-rows tr", has_text="Alice Andersen").click()
        form = page.locator("#resident-form")
        # Fill once her entry is shown: filled earlier, the loading entry overwrites it.
        expect(form).to_have_attribute("data-loaded", str(world.alice))
        birth = form.get_by_label("Birth date")
        expect(birth).to_have_attribute("type", "text")
        birth.fill("1930-02-03")
        form.get_by_label("Birth year").fill("")
        form.get_by_label("Given by", exact=True).fill("Alice Andersen")
        on = form.get_by_label("Date", exact=True)
        expect(on).to_have_attribute("type", "text")
        on.fill("2026-03-02")
        form.get_by_label("How recorded").fill("signed paper form")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#form-message")).to_have_text("Saved.")
        expect(page.locator("#consents li")).to_contain_text(["2026-03-02"])
        expect(birth).to_have_value("1930-02-03")
        screenshot(page, "ledger-dates")
    assert browser.problems == []

"""Form pages in a real headless Chromium (issue 13's new-user findings): a refused value's
message stands next to its field in plain words; the device table filters; the audit page
and the resident's timeline show times in the site's zone, 24-hour, whatever the browser's
zone. Screenshots in tmp_path (copied to test-artifacts/screenshots/<test>/)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
import pytest

from dashboard.app import create_app
from kernel import db
from tests.support.dashboard import PASSWORD, SECRET, World
from tests.support.live import Served, browser_page, log_in, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Locator, ViewportSize

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

DESK: ViewportSize = {"width": 1400, "height": 1000}
SITE_ZONE = "Asia/Shanghai"
BROWSER_ZONE = "America/New_York"  # 12-13 hours from the site's: every hour differs
PYDANTIC_WORDS = re.compile(r"should|pattern|Input|Value error|Field required|--")


@pytest.fixture
def server(world: World, clean_db: str) -> Iterator[Served]:
    """The dashboard on the database (these pages need no live feed or broker)."""
    with running_server(create_app(clean_db, SECRET)) as srv:
        yield srv


def _next_to(form: Locator, field: str) -> Locator:
    return form.locator(f'.field-error[data-error-for="{field}"]')


def test_refused_values_are_shown_next_to_their_fields_in_plain_words(
        server: Served, world: World, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with browser_page(DESK) as browser:
        page = browser.page
        # Staff: a login name with a space, then a taken one (409, same shape).
        log_in(page, f"{server.url}/admin/audit", "admin")  # a page with one "Username"
        expect(page.locator("#app-view")).to_be_visible()
        page.goto(f"{server.url}/admin/staff")
        form = page.locator("#create-form")
        form.get_by_label("Username").fill("Nils Nilsen")
        form.get_by_label("Site").fill("north")
        form.get_by_role("button").click()
        note = _next_to(form, "username")
        expect(note).to_contain_text("username: username must be 1 to 150 characters")
        assert not PYDANTIC_WORDS.search(note.inner_text())
        page.screenshot(path=str(tmp_path / "staff-username-refused.png"), full_page=True)
        form.get_by_label("Username").fill("care-north")
        form.get_by_label("Site").fill("North!")
        form.get_by_role("button").click()
        expect(_next_to(form, "site_id")).to_have_text(
            "site id: lowercase letters a-z, digits and - only, 1-32 characters")
        expect(_next_to(form, "username")).to_have_count(0)  # the old message went away
        form.get_by_label("Site").fill("north")
        form.get_by_role("button").click()
        expect(_next_to(form, "username")).to_have_text(
            "username: user 'care-north' already exists")
        expect(_next_to(form, "site_id")).to_have_count(0)

        # My account: the password policy's refusal is on the new password.
        page.goto(f"{server.url}/account")
        form = page.locator("#password-form")
        form.get_by_label("Current password").fill(PASSWORD)
        form.get_by_label("New password").fill("qwertyuiopas")
        form.get_by_role("button").click()
        note = _next_to(form, "new_password")
        expect(note).to_contain_text("new password: password is")
        assert not PYDANTIC_WORDS.search(note.inner_text())
        page.screenshot(path=str(tmp_path / "account-password-refused.png"), full_page=True)

        # Family: a relative's phone in letters.
        page.goto(f"{server.url}/admin/family")
        form = page.locator("#family-form")
        form.get_by_label("Username").fill("anna2")
        form.get_by_label("Phone").fill("call me")
        form.get_by_label("Resident").select_option(str(world.alice))
        form.get_by_role("button").first.click()
        expect(_next_to(form, "phone")).to_have_text(
            "phone: not a phone number: use digits, spaces, ( ) and -, optionally a leading +")
        page.screenshot(path=str(tmp_path / "family-phone-refused.png"), full_page=True)

        # The ledger (its own placement, the same words): a birth year before the limit.
        page.goto(f"{server.url}/admin")
        page.get_by_role("button", name="New resident").click()
        form = page.locator("#resident-form")
        expect(form).to_have_attribute("data-loaded", "new")
        form.get_by_label("Site").select_option("north")
        form.get_by_label("Full name").fill("Edge Case")
        form.get_by_label("Birth year").fill("1879")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(form.locator('[data-field="birth_year"] .field-error')).to_have_text(
            "birth year: must be 1880 or more")
        page.screenshot(path=str(tmp_path / "ledger-birth-year-refused.png"), full_page=True)
    assert browser.problems == []


def _set_zone(database_url: str) -> None:
    with db.connect(database_url) as conn:
        conn.execute("UPDATE sites SET timezone = %s", (SITE_ZONE,))
        conn.commit()


def _expect_site_times(times: Locator) -> None:
    """Each <time> reads as its dateTime in the site's zone, YYYY-MM-DD HH:MM, 24-hour."""
    count = times.count()
    assert count > 0
    for index in range(count):
        node = times.nth(index)
        at = datetime.fromisoformat(node.get_attribute("datetime") or "")
        assert node.inner_text() == at.astimezone(ZoneInfo(SITE_ZONE)).strftime("%Y-%m-%d %H:%M")


def test_audit_and_timeline_times_are_in_the_sites_zone_not_the_browsers(
        server: Served, world: World, clean_db: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _set_zone(clean_db)
    with httpx.Client(base_url=server.url) as http:  # reads of Alice's record, to audit
        token = http.post("/api/v1/auth/token", data={"username": "care-north",
                                                      "password": PASSWORD}).json()
        assert http.get(f"/api/v1/alerts?resident={world.alice}", headers={
            "Authorization": f"Bearer {token['access_token']}"}).status_code == 200
    with browser_page(DESK, timezone_id=BROWSER_ZONE) as browser:
        page = browser.page
        assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == BROWSER_ZONE
        log_in(page, f"{server.url}/admin/audit", "admin")
        page.get_by_label("Resident id").fill(str(world.alice))
        page.get_by_role("button", name="Search").click()
        rows = page.locator("#audit-rows tr")
        # The search's answer, not the page's first (unfiltered) list, which it replaces.
        expect(rows.locator(".audit-action")).to_have_text(["List alerts"])
        _expect_site_times(rows.locator("time"))
        page.screenshot(path=str(tmp_path / "audit-in-site-zone.png"), full_page=True)

        page.goto(f"{server.url}/admin")
        page.locator("#resident-rows tr", has_text="Alice Andersen").click()
        entries = page.locator("#timeline li time")
        expect(entries.first).to_be_visible()
        _expect_site_times(entries)
        page.screenshot(path=str(tmp_path / "timeline-in-site-zone.png"), full_page=True)
    assert browser.problems == []


def test_the_device_table_filters_by_text_and_status(
        server: Served, world: World, clean_db: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with db.connect(clean_db) as conn:
        conn.execute("UPDATE devices SET active = false WHERE id = 'btn-carol'")
        conn.commit()
    with browser_page(DESK) as browser:
        page = browser.page
        log_in(page, f"{server.url}/admin/devices", "admin")
        rows = page.locator("#devices-body tr")
        expect(rows).to_have_count(2)  # active ones by default: the revoked one is hidden
        search = page.get_by_label("Search")
        status = page.get_by_label("Status")
        status.select_option("")
        expect(rows).to_have_count(3)
        search.fill("carol")  # by resident name
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("revoked")
        search.fill("BED")  # by type (its label) and id, any case
        expect(rows).to_have_count(1)
        expect(page.locator('tr[data-device="bed-alice"]')).to_be_visible()
        search.fill("")
        status.select_option("offline")
        expect(rows).to_have_count(1)
        expect(page.locator('tr[data-device="bed-alice"]')).to_be_visible()
        status.select_option("revoked")
        expect(rows).to_have_count(1)
        expect(page.locator('tr[data-device="btn-carol"]')).to_be_visible()
        expect(page.locator("#devices-count")).to_have_text("1")
        page.screenshot(path=str(tmp_path / "devices-filtered.png"), full_page=True)
    assert browser.problems == []

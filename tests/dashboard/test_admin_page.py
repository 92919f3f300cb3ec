"""The administration page (/admin) in a real headless Chromium against a real uvicorn and
database: the resident ledger and the sites (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from alerts.notify.settings import NotifySettings
from dashboard.app import create_app
from kernel import db
from tests.alerts.notify.receivers import Receiver
from tests.support.dashboard import SECRET, World
from tests.support.live import (
    DESKTOP,
    PHONE,
    TOUCH,
    Served,
    bearer,
    fits_width,
    logged_in_page,
    running_server,
)

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def server(world: World, clean_db: str) -> Iterator[Served]:
    """The dashboard; channel tests may reach the loopback receiver."""
    app = create_app(clean_db, SECRET, notify_settings=NotifySettings(allow_private_targets=True))
    with running_server(app) as srv:
        yield srv


def scalar(database_url: str, query: str, *params: object) -> object:
    with db.connect(database_url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def test_admin_creates_filters_and_edits_a_resident(server: Served, world: World, clean_db,
                                                    screenshot):
    from playwright.sync_api import expect

    with logged_in_page(DESKTOP, f"{server.url}/admin", "admin") as browser:
        page = browser.page
        expect(page.locator("#resident-rows tr")).to_have_count(3)

        page.get_by_role("button", name="New resident").click()
        form = page.locator("#resident-form")
        expect(form).to_have_attribute("data-loaded", "new")
        form.get_by_label("Site").select_option("north")
        form.get_by_label("Full name").fill("Dagny Dahl")
        form.get_by_label("Birth year").fill("1931")
        form.get_by_label("Living situation").select_option("alone")
        form.get_by_label("Dementia (失智)").check()
        form.get_by_label("Very old (高龄)").check()
        page.locator("#f-phone").fill("call me")
        form.get_by_label("Door code (held privately)").fill("4711")
        for name, relation, phone in (("Erik Dahl", "son", "+47 555 11 111"),
                                      ("Frida Dahl", "daughter", "555 22 222")):
            page.get_by_role("button", name="Add contact").click()
            row = page.locator("#contacts li").last
            row.get_by_label("Name").fill(name)
            row.get_by_label("Relation").fill(relation)
            row.get_by_label("Phone").fill(phone)
        page.locator("#contacts li").nth(1).get_by_label("Notified of alerts").uncheck()
        page.get_by_role("button", name="Save", exact=True).click()
        # The refused phone number is marked next to its field; nothing was stored.
        expect(form.locator('[data-field="phone"] .field-error')).to_contain_text(
            "not a phone number")
        expect(page.locator("#form-message")).to_have_text("Please correct the marked fields.")
        screenshot(page, "admin-resident-invalid")
        assert scalar(clean_db, "SELECT count(*) FROM residents") == 3

        page.locator("#f-phone").fill("+47 555 01 234")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#form-message")).to_have_text("Saved.")
        expect(page.locator("#editor-heading")).to_have_text("Dagny Dahl")
        rid = scalar(clean_db, "SELECT id FROM residents WHERE full_name = 'Dagny Dahl'")
        assert scalar(clean_db, "SELECT risks FROM residents WHERE id = %s", rid) == [
            "dementia", "very_old"]
        assert scalar(clean_db, "SELECT string_agg(name || ':' || notified, ',' ORDER BY "
                                "position) FROM resident_contacts WHERE resident_id = %s",
                      rid) == "Erik Dahl:true,Frida Dahl:false"
        page.get_by_role("button", name="Reveal door code").click()
        expect(page.locator("#revealed-code")).to_have_text("4711")
        screenshot(page, "admin-resident-created")

        # The filtered list: dementia at north shows her, not Alice or Bob.
        page.locator("#filter-risk").select_option("dementia")
        page.locator("#filter-site").select_option("north")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("#resident-rows tr")).to_have_count(1)
        expect(page.locator("#resident-rows tr")).to_contain_text("Dagny Dahl")
        expect(page.locator("#resident-rows tr")).to_contain_text("Dementia (失智)")
        screenshot(page, "admin-residents-filtered")

        # Edit: in hospital.
        page.locator("#resident-rows tr", has_text="Dagny Dahl").click()
        expect(form).to_have_attribute("data-loaded", str(rid))
        expect(form.get_by_label("Full name")).to_have_value("Dagny Dahl")
        expect(page.locator("#contacts li")).to_have_count(2)
        form.get_by_label("Status").select_option("in_hospital")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#form-message")).to_have_text("Saved.")
        assert scalar(clean_db, "SELECT status FROM residents WHERE id = %s", rid) == (
            "in_hospital")
        expect(page.locator("#resident-rows tr")).to_contain_text("In hospital")

        # Alert settings: a refused value is shown next to its field.
        settings = page.locator("#alert-settings-form")
        settings.locator('input[data-path="apnea_s"]').fill("0")
        page.get_by_role("button", name="Save alert settings").click()
        expect(settings.locator('[data-field="apnea_s"] .field-error')).to_contain_text(
            "apnea s: must be 1 or more")
        settings.locator('input[data-path="apnea_s"]').fill("30")
        page.get_by_role("button", name="Save alert settings").click()
        expect(settings.locator('[data-field="apnea_s"]')).to_have_class("overridden")
        assert scalar(clean_db, "SELECT settings->>'apnea_s' FROM alert_overrides "
                                "WHERE resident_id = %s", rid) == "30"

        # A note joins the timeline.
        page.get_by_label("Note", exact=True).fill("Admitted to St Olav's after a fall")
        page.get_by_role("button", name="Add note").click()
        expect(page.locator("#timeline")).to_contain_text("Admitted to St Olav's")
        screenshot(page, "admin-resident-in-hospital")
    assert browser.problems == []

    # A duty officer of another site cannot see her; the north one can.
    other = httpx.get(f"{server.url}/api/v1/residents/{rid}", headers=bearer(server.url,
                                                                             "duty-south"))
    assert other.status_code == 404
    own = httpx.get(f"{server.url}/api/v1/residents/{rid}", headers=bearer(server.url,
                                                                           "duty-north"))
    assert own.status_code == 200 and own.json()["status"] == "in_hospital"


def test_sites_are_edited_and_a_channel_is_tested_from_the_page(server: Served, world,
                                                                 clean_db, receiver, screenshot):
    from playwright.sync_api import expect

    made = httpx.post(f"{server.url}/api/v1/sites/north/channels",
                      headers=bearer(server.url, "admin"),
                      json={"kind": "webhook", "target": receiver.url("/hook")})
    assert made.status_code == 201, made.text
    with logged_in_page(DESKTOP, f"{server.url}/admin", "admin") as browser:
        page = browser.page
        page.locator("#site-list button", has_text="(north)").click()
        site_form = page.locator("#site-form")
        site_form.get_by_label("Time zone (IANA)").fill("Mars/Olympus")
        page.get_by_role("button", name="Save site").click()
        expect(site_form.locator('[data-field="timezone"] .field-error')).to_contain_text(
            "IANA")
        site_form.get_by_label("Time zone (IANA)").fill("Europe/Oslo")
        site_form.get_by_label("Address").fill("1 Harbour Street")
        # the group channels' language, each language in its own words
        language = site_form.get_by_label("Language of the group channels")
        expect(language).to_have_value("en")
        assert language.locator("option").all_inner_texts() == ["English", "简体中文"]
        language.select_option("zh-CN")
        page.get_by_role("button", name="Save site").click()
        expect(page.locator("#site-list")).to_contain_text("Europe/Oslo · 1 Harbour Street")
        assert scalar(clean_db, "SELECT timezone FROM sites WHERE id = 'north'") == (
            "Europe/Oslo")
        assert scalar(clean_db, "SELECT language FROM sites WHERE id = 'north'") == "zh-CN"
        expect(language).to_have_value("zh-CN")

        page.locator("#channel-list li", has_text="webhook").get_by_role(
            "button", name="Send test").click()
        expect(page.locator("#channel-message")).to_contain_text("delivered")
        [test_message] = receiver.received("/hook")
        assert "站点 north" in test_message.body.decode()  # the group reads its site's language
        screenshot(page, "admin-sites")
    assert browser.problems == []


def test_the_admin_page_fits_a_phone(server: Served, world, screenshot):
    from playwright.sync_api import expect

    with logged_in_page(PHONE, f"{server.url}/admin", "duty-north", **TOUCH) as browser:
        page = browser.page
        expect(page.locator("#resident-rows tr")).to_have_count(2)
        page.locator("#resident-rows tr", has_text="Alice Andersen").click()
        expect(page.locator("#resident-form").get_by_label("Full name")).to_have_value(
            "Alice Andersen")
        assert fits_width(page)
        screenshot(page, "admin-phone")
    assert browser.problems == []

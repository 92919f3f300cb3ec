"""The staff, roster and "my account" pages in a real headless Chromium against a real
uvicorn, database and broker: an administrator creates a care worker and a shift covering the
page's instant (given in the address, never the wall clock), the worker shows on duty; the
administrator ends the worker's session and the worker's page returns to login; a duty
officer enrols TOTP and must give a code at the next login."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from kernel.totp import code_at
from tests.support.dashboard import World
from tests.support.live import DESKTOP, PHONE, Served, log_in, logged_in_page

pytestmark = pytest.mark.usefixtures("chromium")

AT = "2026-03-02T10:00:00Z"  # the roster page's instant (site north is UTC)
NEW_PASSWORD = "quiet harbour lantern 42"


def test_admin_rosters_a_new_worker_and_ends_their_session(server: Served, world: World,
                                                          screenshot):
    from playwright.sync_api import expect

    with logged_in_page(DESKTOP, f"{server.url}/admin/staff", "admin") as browser:
        admin = browser.page
        form = admin.locator("#create-form")
        form.get_by_label("Username").fill("carer-nina")
        form.get_by_label("Full name").fill("Nina Novak")
        form.get_by_label("Role").select_option("care_worker")
        form.get_by_label("Site").fill("north")
        form.get_by_role("button", name="Create").click()
        shown = admin.locator("#shown-once")
        expect(shown).to_contain_text("Temporary password for carer-nina")
        temporary = (shown.text_content() or "").rsplit(": ", 1)[1].strip()
        expect(admin.locator("tr[data-username='carer-nina']")).to_contain_text(
            "Active (temporary password)")
        screenshot(admin, "staff-created")

        admin.goto(f"{server.url}/admin/roster?site=north&at={AT}")
        nina = admin.locator("#people-rows tr[data-username='carer-nina']")
        expect(nina.locator(".on-duty")).to_have_text("Off duty")
        shift = admin.locator("#shift-form")
        shift.get_by_label("Who").select_option(label="Nina Novak (Care worker)")
        expect(shift.get_by_label("Day")).to_have_value("2026-03-02")
        shift.get_by_label("From").fill("08:00")
        shift.get_by_label("To").fill("20:00")
        shift.get_by_role("button", name="Add shift").click()
        expect(nina.locator(".on-duty")).to_have_text("On duty")
        expect(admin.locator(".shift.now")).to_contain_text("08:00–20:00 Nina Novak")
        screenshot(admin, "roster-on-duty")

        # The worker logs in on a phone, must first choose their own password.
        worker = admin.context.browser.new_context(viewport=PHONE).new_page()  # type: ignore[union-attr]
        log_in(worker, f"{server.url}/worker", "carer-nina", temporary)
        expect(worker).to_have_url(re.compile(r"/account$"))
        expect(worker.locator("#must-do")).to_contain_text("Choose your own password")
        worker.get_by_label("Current password").fill(temporary)
        worker.get_by_label("New password").fill(NEW_PASSWORD)
        worker.get_by_role("button", name="Change password").click()
        expect(worker.locator("#password-message")).to_have_text("Password changed.")
        worker.goto(f"{server.url}/worker")
        expect(worker.locator("#app-view")).to_be_visible()
        expect(worker.locator("#feed-status")).to_have_text(re.compile("Live"))
        screenshot(worker, "worker-logged-in")

        # The administrator ends that session: the phone page returns to the login form.
        admin.goto(f"{server.url}/admin/staff")
        admin.locator("tr[data-username='carer-nina']").get_by_role(
            "button", name="Sessions").click()
        live = admin.locator("#session-rows tr", has_text="Active")
        expect(live).to_have_count(1)
        screenshot(admin, "staff-sessions")
        live.get_by_role("button", name="End").click()
        expect(admin.locator("#session-rows tr", has_text="Active")).to_have_count(0)
        expect(worker.locator("#login-view")).to_be_visible(timeout=10_000)
        expect(worker.locator("#app-view")).to_be_hidden()
        screenshot(worker, "worker-session-ended")
    assert browser.problems == []


def test_duty_officer_enrols_totp_and_needs_a_code_at_the_next_login(server: Served,
                                                                     screenshot):
    from playwright.sync_api import expect

    with logged_in_page(DESKTOP, f"{server.url}/account", "duty-north") as browser:
        page = browser.page
        page.get_by_role("button", name="Set up an authenticator app").click()
        expect(page.locator("#totp-qr")).to_have_attribute("src", re.compile(
            r"^data:image/svg\+xml"))
        secret = page.locator("#totp-secret").text_content() or ""
        assert len(secret) == 32
        screenshot(page, "totp-enrol")
        # Codes are checked against the server's clock: compute them from the same clock.
        page.get_by_label("Code", exact=True).fill(code_at(secret, datetime.now(UTC)))
        page.get_by_role("button", name="Turn on").click()
        expect(page.locator("#totp-state")).to_contain_text("The second factor is on")
        page.get_by_role("button", name="Log out").click()

        log_in(page, f"{server.url}/", "duty-north")
        expect(page.locator("#login-message")).to_contain_text("6-digit code")
        code = page.get_by_label("One-time code (authenticator app)")
        expect(code).to_be_visible()
        screenshot(page, "login-needs-code")
        code.fill(code_at(secret, datetime.now(UTC) + timedelta(seconds=30)))
        page.locator("#login-form").get_by_role("button", name="Log in").click()
        expect(page.locator("#app-view")).to_be_visible()
        expect(page.locator("#who")).to_contain_text("Dora Duty")
        screenshot(page, "duty-screen-after-totp")
    assert browser.problems == []


def test_admin_invites_a_relative_who_sets_a_password_and_is_linked(server: Served,
                                                                    world: World, screenshot):
    from playwright.sync_api import expect

    with logged_in_page(DESKTOP, f"{server.url}/admin/family", "admin") as browser:
        admin = browser.page
        form = admin.locator("#family-form")
        form.get_by_label("Username").fill("son-bob")
        form.get_by_label("Full name").fill("Bjorn Berg")
        form.get_by_label("Resident").select_option(label="Bob Berg (north)")
        form.get_by_role("button", name="Create and invite").click()
        shown = admin.locator("#shown-once")
        expect(shown).to_contain_text("Invitation for son-bob")
        link = re.search(r"http://\S+/invite#\S+", shown.text_content() or "")
        assert link is not None
        row = admin.locator("tr[data-username='son-bob']")
        expect(row.locator(".linked")).to_have_text(["Bob Berg (north)Unlink"])
        row.get_by_label("Resident to link to son-bob").select_option(
            label="Alice Andersen (north)")
        row.get_by_role("button", name="Link", exact=True).click()
        expect(row.locator(".linked", has_text="Alice Andersen (north)")).to_have_count(1)
        screenshot(admin, "family-linked")

        relative = admin.context.browser.new_context(viewport=PHONE).new_page()  # type: ignore[union-attr]
        relative.goto(link.group(0))
        relative.get_by_label("New password").fill(NEW_PASSWORD)
        relative.get_by_role("button", name="Set password").click()
        expect(relative.locator("#invite-done")).to_be_visible()
        screenshot(relative, "invite-done")
        log_in(relative, f"{server.url}/", "son-bob", NEW_PASSWORD)
        expect(relative.locator("#app-view")).to_be_visible()

        row.locator(".linked", has_text="Alice Andersen").get_by_role(
            "button", name="Unlink").click()
        expect(row.locator(".linked", has_text="Alice Andersen")).to_have_count(0)
    assert browser.problems == []


def test_my_account_shows_each_role_only_its_own_links(server: Served, world: World,
                                                       screenshot):
    """A care worker on "My account" sees their phone page and account, not the
    administration (the new-user trial found every admin link there)."""
    from playwright.sync_api import expect

    for username, links in (("care-north", ["My work", "My account"]),
                            ("duty-north", ["Duty screen", "Residents and sites", "Devices",
                                            "Import", "Staff", "Roster",
                                            "Sent notifications", "My account"])):
        with logged_in_page(PHONE, f"{server.url}/account", username) as browser:
            nav = browser.page.locator("nav.admin-nav a:visible")
            expect(nav).to_have_text(links)
            screenshot(browser.page, f"account-nav-{username}")

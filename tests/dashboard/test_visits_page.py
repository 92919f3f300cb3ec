"""Visits in a real headless Chromium: a care worker records a visit on a phone-sized page,
the duty screen lists a visit overdue for another resident, and a visit made from an alert
("go and check") is in the worker's queue and on the alert card. Screenshots of each state
are kept in test-artifacts/screenshots/<test>/."""

from __future__ import annotations

import httpx
import pytest

from kernel import db
from tests.support.dashboard import World
from tests.support.live import (
    PHONE,
    TOUCH,
    WALL,
    Screenshots,
    Served,
    bearer,
    fits_width,
    logged_in_page,
)
from tests.support.visits import completed_visit

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips


def visit_row(database_url: str, visit_id: int) -> tuple[object, ...]:
    with db.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT status, assigned_to, arrived_at IS NOT NULL, left_at IS NOT "
                           "NULL, findings, checklist, follow_up, follow_up_note FROM visits "
                           "WHERE id = %s", (visit_id,)).fetchone()
    assert row is not None
    return tuple(row)


def test_a_care_worker_records_a_visit_on_a_phone(server: Served, world: World, clean_db,
                                                 screenshot: Screenshots):
    from playwright.sync_api import expect

    completed_visit(clean_db, world.bob, "north", days_ago=40)  # Bob is 10 days overdue
    duty = bearer(server.url, "duty-north")
    resp = httpx.post(f"{server.url}/api/v1/alerts/{world.sos_alice}/visit",
                      json={"assigned_to": world.care_north}, headers=duty)
    assert resp.status_code == 201, resp.text
    visit_id = resp.json()["id"]

    with logged_in_page(PHONE, f"{server.url}/worker", "care-north", **TOUCH) as browser:
        page = browser.page

        # The go-and-check visit is in my queue and on the SOS card.
        card = page.locator(f"#visit-{visit_id}")
        expect(card).to_contain_text("Alice Andersen")
        expect(card).to_contain_text(f"from alert #{world.sos_alice}")
        expect(page.locator("#visits-count")).to_have_text("1")
        sos = page.locator(f"#alert-{world.sos_alice}")
        expect(sos).to_contain_text("Go-and-check visit: planned, assigned to you")
        # Bob's visit is overdue at my site.
        due = page.locator("#due-list li", has_text="Bob Berg")
        expect(due).to_contain_text("10 days overdue")
        assert fits_width(page)
        screenshot(page, "visits-worker-queue")

        # Arrive, go through the checklist, write what was found, ask for a follow-up, leave.
        card.get_by_role("button", name="I have arrived").tap()
        expect(card).to_contain_text("Carer on site")
        expect(sos).to_contain_text("Go-and-check visit: carer on site, assigned to you")
        for item in ("Resident seen and well", "Home safe and warm",
                     "Food and water in the house", "Devices working, batteries fine"):
            card.get_by_label(item).check()
        card.get_by_label("What did you find?").fill("Pressed the button by mistake; "
                                                     "pills from Monday not taken.")
        card.get_by_label("Needs follow-up").check()
        card.get_by_label("What needs following up").fill("Ask the GP about the pill box")
        card.get_by_role("button", name="Save").tap()
        expect(card.locator(".action-message")).to_have_text("Saved.")
        assert fits_width(page)
        screenshot(page, "visits-worker-recording")
        card.get_by_role("button", name="I am leaving: finish the visit").tap()
        expect(card).to_have_count(0)
        expect(page.locator("#visits-empty")).to_be_visible()
        status, assigned, arrived, left, findings, checklist, follow_up, note = visit_row(
            clean_db, visit_id)
        assert (status, assigned, arrived, left) == ("completed", world.care_north, True, True)
        assert findings == "Pressed the button by mistake; pills from Monday not taken."
        assert checklist == {"seen_well": True, "home_safe": True, "food_water": True,
                             "medication": False, "devices_ok": True}
        assert (follow_up, note) == (True, "Ask the GP about the pill box")

        # "Go and check" from an alert card puts a visit in my queue.
        battery = page.locator(f"#alert-{world.battery_alice}")
        battery.get_by_role("button", name="Go and check").tap()
        expect(battery).to_contain_text("Go-and-check visit: planned, assigned to you")
        expect(page.locator("#visits-list li", has_text=f"from alert #{world.battery_alice}")
               ).to_be_visible()
        screenshot(page, "visits-worker-go-and-check")
    assert browser.problems == []

    with logged_in_page(WALL, server.url, "duty-north") as browser:
        page = browser.page
        panel = page.locator("#overdue-panel")
        expect(panel.locator("li", has_text="Bob Berg")).to_contain_text("10 days overdue")
        expect(panel.locator("li", has_text="Bob Berg")).to_contain_text("Not assigned")
        expect(panel.locator("li")).to_have_count(1)  # Alice was just visited
        expect(page.locator("#overdue-count")).to_have_text("1")
        screenshot(page, "visits-duty-overdue")
    assert browser.problems == []
    print(f"screenshots in {screenshot.folder}")

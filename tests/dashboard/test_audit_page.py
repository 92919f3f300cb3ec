"""The audit trail page in a real headless Chromium: an admin finds a care worker's reads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from dashboard.app import create_app
from tests.support.dashboard import PASSWORD, SECRET, World
from tests.support.live import Screenshots, Served, logged_in_page, running_server

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

DESK: ViewportSize = {"width": 1400, "height": 900}


@pytest.fixture
def server(world: World, clean_db: str) -> Iterator[Served]:
    """The dashboard on the database (the audit page needs no live feed)."""
    with running_server(create_app(clean_db, SECRET)) as srv:
        yield srv


def _worker_reads(url: str, world: World) -> None:
    """The care worker reads Alice's vital signs and alerts through the API."""
    with httpx.Client(base_url=url) as http:
        token = http.post("/api/v1/auth/token", data={"username": "care-north",
                                                      "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        for path in (f"/api/v1/residents/{world.alice}/vitals",
                     f"/api/v1/alerts?resident={world.alice}",
                     f"/api/v1/alerts/{world.sos_alice}"):
            assert http.get(path, headers=headers).status_code == 200


def test_an_admin_finds_a_workers_reads_of_a_residents_vitals_and_alerts(
        server: Served, world: World, screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    _worker_reads(server.url, world)
    with logged_in_page(DESK, f"{server.url}/admin/audit", "admin") as browser:
        page = browser.page
        expect(page.locator("#audit-rows tr").first).to_be_visible()
        page.get_by_label("User", exact=True).fill("care-north")
        page.get_by_label("Resident id").fill(str(world.alice))
        page.get_by_role("button", name="Search").click()
        rows = page.locator("#audit-rows tr")
        expect(rows).to_have_count(3)
        expect(rows.locator(".audit-action")).to_have_text(
            ["Read an alert", "List alerts", "Read vital signs"])
        expect(rows.locator(".audit-actor")).to_have_text(["care-north"] * 3)
        expect(rows.locator(".audit-outcome")).to_have_text(["Done"] * 3)
        screenshot(page, "audit-worker-reads")

        page.get_by_label("Action").select_option("vitals.read")
        page.get_by_role("button", name="Search").click()
        expect(rows).to_have_count(1)
        expect(rows.locator("td").nth(5)).to_have_text(str(world.alice))
        screenshot(page, "audit-vitals-reads")

        with page.expect_download() as download_info:
            page.get_by_role("button", name="Export CSV").click()
        exported = Path(download_info.value.path()).read_text()
        assert [r["action"] for r in csv.DictReader(io.StringIO(exported))] == ["vitals.read"]

        # the export and the page's own searches are in the trail too
        page.get_by_label("User", exact=True).fill("admin")
        page.get_by_label("Resident id").fill("")
        page.get_by_label("Action").select_option("audit.export")
        page.get_by_role("button", name="Search").click()
        expect(rows).to_have_count(1)
        expect(rows.locator(".audit-action")).to_have_text(["Export audit trail"])
        screenshot(page, "audit-export-recorded")
        assert browser.problems == []


def test_a_care_worker_is_refused_the_audit_page(server: Served, world: World,
                                                 screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    with logged_in_page(DESK, f"{server.url}/admin/audit", "care-north") as browser:
        page = browser.page
        expect(page.locator("#audit-message")).to_have_text(
            "Only administrators can read the audit trail")
        expect(page.locator("#audit-rows tr")).to_have_count(0)
        screenshot(page, "audit-refused")
        assert browser.problems == []

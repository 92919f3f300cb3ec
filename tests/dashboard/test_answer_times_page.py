"""The answer-time pages in a real headless Chromium, on alerts with known answer times and
the app's clock fixed: the compliance report (numbers, verdicts, CSV export, print layout)
and the duty screen's "shift in numbers" panel, which follows a new alert live."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from alerts.config import AlertSettings
from alerts.model import AlertTrigger, AlertType, Severity
from alerts.store import store_trigger
from dashboard.app import create_app
from kernel import db
from tests.support.answer_times import AFTER, IN_SHIFT, local, seed
from tests.support.dashboard import SECRET, World
from tests.support.live import Served, browser_page, log_in, running_server

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

DESK: ViewportSize = {"width": 1400, "height": 900}
WALL: ViewportSize = {"width": 1920, "height": 1080}


def _serve(url: str, world: World, now: datetime) -> Iterator[Served]:
    asyncio.run(seed(url, world))
    with running_server(create_app(url, SECRET, clock=lambda: now)) as srv:
        yield srv


@pytest.fixture
def after(world: World, clean_db: str) -> Iterator[Served]:
    yield from _serve(clean_db, world, AFTER)


@pytest.fixture
def in_shift(world: World, clean_db: str) -> Iterator[Served]:
    yield from _serve(clean_db, world, IN_SHIFT)


def test_the_days_report_page_shows_the_numbers_and_exports_them(
        after: Served, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with browser_page(DESK) as browser:
        page = browser.page
        log_in(page, f"{after.url}/reports/answer-times?date=2026-03-02", "duty-north")
        expect(page.locator("#report-period-line")).to_have_text(
            "Period: 2026-03-02 00:00 – 2026-03-03 00:00 (Asia/Shanghai)")
        all_row = page.locator(".report-row-all")
        expect(all_row.locator('[data-metric="opened"]')).to_have_text("6")
        expect(all_row.locator('[data-metric="within_60"]')).to_have_text("60.0 %")
        expect(all_row.locator('[data-metric="ack_p90_s"]')).to_have_text("2 min 00 s")
        verdicts = page.locator(".report-verdict strong")
        expect(verdicts).to_have_text(["Target not met", "Target met"])
        expect(page.locator(".report-row-worker th")).to_have_count(2)
        page.screenshot(path=str(tmp_path / "answer-times-report.png"), full_page=True)

        with page.expect_download() as download_info:
            page.get_by_role("button", name="Export CSV").click()
        rows = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_text())))
        assert rows[2][:3] == ["All alerts", "", "6"]

        # another site, refused: its message, and none of north's numbers left under it
        page.fill("#report-site", "south")
        page.locator("#report-form button[type=submit]").click()
        expect(page.locator("#report-rows tr")).to_have_count(0)
        expect(page.locator("#report-heading")).to_have_text("")
        page.fill("#report-site", "north")
        page.locator("#report-form button[type=submit]").click()
        expect(all_row.locator('[data-metric="opened"]')).to_have_text("6")

        page.emulate_media(media="print")
        expect(page.locator(".report-controls")).to_be_hidden()
        page.screenshot(path=str(tmp_path / "answer-times-report-print.png"), full_page=True)
        assert browser.problems == []


def test_a_care_worker_is_refused_the_report(after: Served, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with browser_page(DESK) as browser:
        page = browser.page
        log_in(page, f"{after.url}/reports/answer-times", "care-north")
        expect(page.locator("#page-message")).to_have_text(
            "Only administrators and this site's duty officers see its answer-time report")
        expect(page.locator("#report-rows tr")).to_have_count(0)
        page.screenshot(path=str(tmp_path / "answer-times-refused.png"), full_page=True)


def test_the_wall_screen_panel_shows_the_shift_and_follows_a_new_alert(
        in_shift: Served, world: World, clean_db: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with browser_page(WALL) as browser:
        page = browser.page
        log_in(page, f"{in_shift.url}/", "duty-north")
        panel = page.locator("#shift-panel")
        expect(panel.locator("#shift-period")).to_have_text(
            "Current shift: 2026-03-02 08:00 – 12:30")
        expect(panel.locator('[data-metric="opened"] .shift-value')).to_have_text("3")
        expect(panel.locator('[data-metric="open_now"] .shift-value')).to_have_text("3")
        within_60 = panel.locator('[data-metric="within_60"]')
        expect(within_60.locator(".shift-value")).to_have_text("50.0 %")  # a2 late, a3 not
        expect(within_60.locator(".shift-verdict")).to_have_text("Target not met · target 97.5 %")
        page.screenshot(path=str(tmp_path / "duty-screen-with-shift-panel.png"), full_page=True)
        panel.screenshot(path=str(tmp_path / "shift-panel.png"))

        # a new alert raised now (the app's clock) reaches the panel without a reload
        with db.connect(clean_db, autocommit=True) as conn:
            stored = store_trigger(conn, AlertTrigger(
                world.bob, "north", None, AlertType.FALL, Severity.CRITICAL,
                local("2026-03-02 12:29")), AlertSettings(), IN_SHIFT)
        assert stored is not None and stored.created
        expect(panel.locator('[data-metric="opened"] .shift-value')).to_have_text(
            "4", timeout=60000)
        expect(panel.locator('[data-metric="open_now"] .shift-value')).to_have_text("4")
        panel.screenshot(path=str(tmp_path / "shift-panel-new-alert.png"))

        # the panel links to the compliance report of the same site
        panel.get_by_role("link", name="Compliance report").click()
        expect(page.locator("#report-heading")).to_have_text(
            "Answer-time compliance · north")
        assert browser.problems == []

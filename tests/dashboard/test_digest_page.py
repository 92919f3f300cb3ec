"""The daily digest (issue 15) in a real headless Chromium against a real uvicorn and
database: the duty screen's "Daily digest" panel lists the resident whose last nights look
unlike their usual, with the reasons in words, and links to the resident's page, whose
"Daily routine" chart draws the chosen feature per day over its usual band (routine change's
baseline); a routine-change alert's card links there too, and the chart opens on the
alert's feature with its day marked.

Sixty seeded nights (fixed dates) and the digest job run once; the app's clock stands at the
seed's instant, so nothing depends on the wall clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from dashboard.app import create_app
from dashboard.charts_ui import CHARTS_DIR, charts_available
from tests.support.dashboard import SECRET, World
from tests.support.live import Screenshots, Served, browser_page, log_in, running_server
from tests.support.outliers import DIGEST_DAY, DIGEST_DONE, open_routine_change, seed_digest

if TYPE_CHECKING:
    from playwright.sync_api import Page, ViewportSize

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

WALL: ViewportSize = {"width": 1920, "height": 1080}

# The daily chart's series, read through ECharts itself.
_DAILY_OPTION = """async () => {
  const echarts = await import("/vendor/echarts/echarts.esm.min.mjs");
  const chart = echarts.getInstanceByDom(document.querySelector("#daily-charts .daily-chart"));
  const option = chart.getOption();
  const last = option.series[option.series.length - 1];
  return { names: option.series.map((s) => s.name),
           data: option.series.map((s) => s.data), y: option.yAxis[0].name,
           marks: last.markLine && last.markLine.data ? last.markLine.data.map((m) => m.xAxis)
             : [] };
}"""


@pytest.fixture
def server(world: World, clean_db: str) -> Iterator[Served]:
    if not charts_available(CHARTS_DIR):
        pytest.fail(f"no ECharts files in {CHARTS_DIR}: run scripts/bootstrap.sh",
                    pytrace=False)
    seed_digest(clean_db, world.alice, world.bob)
    with running_server(create_app(clean_db, SECRET, clock=lambda: DIGEST_DONE)) as srv:
        yield srv


def daily_option(page: Page) -> dict[str, Any]:
    return dict(page.evaluate(_DAILY_OPTION))


def test_the_digest_panel_links_to_the_resident_and_their_daily_routine_chart(
        server: Served, world: World, screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    with browser_page(WALL) as bp:
        page = bp.page
        log_in(page, f"{server.url}/", "duty-north")
        panel = page.locator("#digest-panel")
        expect(panel).to_be_visible()
        expect(page.locator("#digest-summary")).to_have_text(
            "1 resident whose last nights look unlike their usual")
        expect(page.locator("#digest-day")).to_have_text("2026-03-10")
        item = panel.locator(f"li[data-resident-id='{world.alice}']")
        expect(item.locator("a.digest-name")).to_have_text("Alice Andersen")
        expect(item.locator("li[data-feature='rise_time']")).to_have_text(
            re.compile(r"^Rise time 09:\d\d vs usual 0[67]:\d\d$"))
        expect(item.locator("li[data-feature='night_exits']")).to_be_visible()
        screenshot(page, "duty-screen-digest")

        item.locator("a.digest-name").click()
        page.wait_for_url(f"**/admin?resident={world.alice}&feature=rise_time")
        box = page.locator("#daily-charts .daily-chart")
        expect(box).to_have_attribute("data-state", "ready")
        expect(box).to_have_attribute("data-feature", "rise_time")
        option = daily_option(page)
        assert option["y"] == "Rise time"
        # series: the personal band (low, width), the population default's, the values
        low, width, default_low, _, values = option["data"]
        assert option["names"][1] == "usual"
        assert len(values) == 30
        assert all(v is not None for v in low) and all(w > 0 for w in width)
        assert all(v is None for v in default_low)  # 60 days of data: all personal
        assert option["marks"] == []
        assert values[-1] is None  # today (2026-03-10) has no summary yet
        assert values[-2] > low[-2] + width[-2]  # the last night: later than its usual band
        page.locator("#daily-charts").scroll_into_view_if_needed()
        screenshot(page, "resident-daily-routine")

        page.select_option("#daily-feature", "night_exits")
        expect(box).to_have_attribute("data-feature", "night_exits")
        page.locator("#daily-charts button[data-days='90']").click()
        expect(page.locator("#daily-charts button[data-days='90']")).to_have_attribute(
            "aria-pressed", "true")
        expect(box).to_have_attribute("data-state", "ready")
        assert daily_option(page)["y"] == "Night exits"
        ninety = daily_option(page)
        assert len(ninety["data"][4]) == 90
        # the first days had under 14 days before them: the population default's band
        assert ninety["data"][2][0] is not None and ninety["data"][0][0] is None
        assert ninety["names"][3] == "usual (population default)"


def test_a_care_worker_does_not_see_the_digest(server: Served) -> None:
    from playwright.sync_api import expect

    with browser_page(WALL) as bp:
        log_in(bp.page, f"{server.url}/", "care-north")
        expect(bp.page.locator("#alerts-heading")).to_be_visible()
        expect(bp.page.locator("#digest-panel")).to_be_hidden()


def test_a_routine_change_alert_opens_the_chart_on_its_feature(
        server: Served, world: World, clean_db: str, screenshot: Screenshots) -> None:
    """The duty screen's routine_change card links to the resident page; its Daily routine
    chart starts on the alert's feature (night exits, not the first in the list) and marks
    the alert's day. Without the link, an active routine-change alert does the same."""
    from playwright.sync_api import expect

    day = DIGEST_DAY - timedelta(days=2)
    alert = open_routine_change(clean_db, world.alice, "north", "night_exits", day)
    with browser_page(WALL) as bp:
        page = bp.page
        log_in(page, f"{server.url}/", "duty-north")
        card = page.locator(f"li[data-alert-id='{alert}']")
        link = card.locator("a.alert-link")
        expect(link).to_have_text("Open the daily routine chart")
        link.click()
        page.wait_for_url(f"**/admin?resident={world.alice}&alert={alert}")
        box = page.locator("#daily-charts .daily-chart")
        expect(box).to_have_attribute("data-state", "ready")
        expect(box).to_have_attribute("data-feature", "night_exits")
        expect(box).to_have_attribute("data-alert-day", day.isoformat())
        expect(page.locator("#daily-feature")).to_have_value("night_exits")
        option = daily_option(page)
        assert option["y"] == "Night exits"
        assert option["marks"] == [day.isoformat()[5:]]
        page.locator("#daily-charts").scroll_into_view_if_needed()
        screenshot(page, "resident-daily-routine-alert")

        # a feature picked by hand stays; the mark belongs to the alert's feature only
        page.select_option("#daily-feature", "resting_hr")
        expect(box).to_have_attribute("data-feature", "resting_hr")
        expect(box).not_to_have_attribute("data-alert-day", day.isoformat())
        assert daily_option(page)["marks"] == []

        page.goto(f"{server.url}/admin?resident={world.alice}")  # no alert named: the open one
        expect(box).to_have_attribute("data-state", "ready")
        expect(box).to_have_attribute("data-feature", "night_exits")
        expect(box).to_have_attribute("data-alert-day", day.isoformat())


def test_every_feature_of_an_open_routine_change_is_on_the_card_and_the_chart(
        server: Served, world: World, clean_db: str, screenshot: Screenshots) -> None:
    """Night exits opened the alert, the resting heart rate joined it: the duty screen's
    card says both, and the resident page lists both under the chart; pressing one shows
    its feature with its own day marked."""
    from playwright.sync_api import expect

    first, later = DIGEST_DAY - timedelta(days=3), DIGEST_DAY - timedelta(days=1)
    alert = open_routine_change(clean_db, world.alice, "north", "night_exits", first)
    assert open_routine_change(clean_db, world.alice, "north", "resting_hr", later) == alert
    with browser_page(WALL) as bp:
        page = bp.page
        log_in(page, f"{server.url}/", "duty-north")
        card = page.locator(f"li[data-alert-id='{alert}']")
        lines = card.locator(".routine-changes li")
        expect(lines).to_have_count(2)
        expect(lines.nth(0)).to_have_text("Night exits 4.0 vs usual 1.0 over the last 3 days")
        expect(lines.nth(1)).to_have_text(
            "Resting heart rate 4.0/min vs usual 1.0/min over the last 3 days")
        screenshot(page, "routine-change-card-two-features")

        card.locator("a.alert-link").click()
        page.wait_for_url(f"**/admin?resident={world.alice}&alert={alert}")
        box = page.locator("#daily-charts .daily-chart")
        expect(box).to_have_attribute("data-feature", "night_exits")
        expect(box).to_have_attribute("data-alert-day", first.isoformat())
        buttons = page.locator("#daily-charts .daily-changes button")
        expect(buttons).to_have_count(2)
        expect(buttons.nth(0)).to_have_attribute("aria-pressed", "true")
        buttons.nth(1).click()
        expect(box).to_have_attribute("data-feature", "resting_hr")
        expect(box).to_have_attribute("data-alert-day", later.isoformat())
        expect(page.locator("#daily-feature")).to_have_value("resting_hr")
        expect(buttons.nth(1)).to_have_attribute("aria-pressed", "true")
        assert daily_option(page)["marks"] == [later.isoformat()[5:]]
        page.locator("#daily-charts").scroll_into_view_if_needed()
        screenshot(page, "resident-daily-routine-two-features")

"""The vitals charts (issue 14) in a real headless Chromium against a real uvicorn and
database: the resident page's four panels over 24 h / 7 days / 30 days with the resident's
alerts marked, the family view's 7-night chart, and the ECharts file served from the npm
package (dashboard/charts_ui.py) under the pages' CSP.

The data is the family seed's week of nights (Asia/Shanghai, fixed instants); the resident
page's range is anchored by `?to=` and the app's clock stands at the seed's NOW, so nothing
depends on the wall clock. The browser runs in New York, so a time shown in the browser's
zone instead of the site's would be caught."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from dashboard.app import create_app
from dashboard.charts_ui import CHARTS_DIR, charts_available
from kernel import db
from tests.dashboard.family.seed import NOW, FamilyWorld, seed_family
from tests.support.dashboard import PASSWORD, SECRET, World
from tests.support.live import PHONE, Served, browser_page, log_in, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Page, ViewportSize

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

WALL: ViewportSize = {"width": 1920, "height": 1080}
BROWSER_ZONE = "America/New_York"  # not the site's zone (Asia/Shanghai)
ASSET = "/vendor/echarts/echarts.esm.min.mjs"
RANGES = {"24h": (timedelta(hours=24), "5 minutes"), "7d": (timedelta(days=7), "1 hour"),
          "30d": (timedelta(days=30), "6 hours")}

# The option of the chart drawn in `selector`, read through ECharts itself.
_CHART_OPTION = """async (selector) => {
  const echarts = await import("ASSET");
  const chart = echarts.getInstanceByDom(document.querySelector(selector));
  const option = chart.getOption();
  return {
    canvases: document.querySelectorAll(selector + " canvas").length,
    series: option.series.map((s) => ({
      name: s.name,
      values: s.data.map((d) => Array.isArray(d) ? d[1] : d),
      marks: s.markLine && s.markLine.data ? s.markLine.data.map((m) => m.name) : [],
      band: s.markArea && s.markArea.data ? s.markArea.data.length : 0,
    })),
    xMin: option.xAxis[0].min, xMax: option.xAxis[0].max,
  };
}""".replace("ASSET", ASSET)


# Every Content-Security-Policy violation of the page, kept for the test to read.
_WATCH_CSP = """window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"""


@pytest.fixture(scope="module")
def charts_installed() -> Path:
    """The ECharts files (scripts/bootstrap.sh installs them); missing ones fail."""
    if not charts_available(CHARTS_DIR):
        pytest.fail(f"no ECharts files in {CHARTS_DIR}: run scripts/bootstrap.sh",
                    pytrace=False)
    return CHARTS_DIR


@pytest.fixture
def family(world: World, clean_db: str) -> FamilyWorld:
    return seed_family(clean_db, world)


@pytest.fixture
def server(family: FamilyWorld, clean_db: str, charts_installed: Path) -> Iterator[Served]:
    with running_server(create_app(clean_db, SECRET, clock=lambda: NOW)) as srv:
        yield srv


def buckets(database_url: str, resident: int, width: str, column: str,
            start: datetime, end: datetime) -> int:
    """How many buckets of `width` hold a reading of `column` (the chart's points)."""
    with db.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT count(DISTINCT time_bucket(%s::interval, time)) FROM bed_telemetry "
            f"WHERE resident_id = %s AND time >= %s AND time < %s AND {column} IS NOT NULL",
            (width, resident, start, end)).fetchone()
    assert row is not None
    return int(row[0])


def chart_option(page: Page, selector: str) -> dict[str, Any]:
    return dict(page.evaluate(_CHART_OPTION, selector))


def open_alice(page: Page, url: str) -> None:
    log_in(page, f"{url}/admin?to={NOW:%Y-%m-%dT%H:%M:%SZ}", "admin")
    page.locator("#resident-rows tr", has_text="Alice Andersen").click()


def test_resident_charts_show_each_range_with_alerts_in_the_site_zone(
        server: Served, world: World, clean_db, tmp_path):
    from playwright.sync_api import expect

    requested: list[str] = []
    with browser_page(WALL, timezone_id=BROWSER_ZONE) as bp:
        page = bp.page
        page.on("request", lambda request: requested.append(request.url))
        page.add_init_script(_WATCH_CSP)
        open_alice(page, server.url)
        box = page.locator("#vitals-charts .vitals-chart")
        expect(box).to_have_attribute("data-state", "ready")
        expect(box).to_have_attribute("data-zone", "Asia/Shanghai")
        option = chart_option(page, "#vitals-charts .vitals-chart")
        assert option["canvases"] >= 1
        assert [s["name"] for s in option["series"]] == [
            "Heart rate /min", "Breathing /min", "Movement", "In bed %"]
        # The axis is the site's wall clock: 24 h ending 10:30 in Shanghai (02:30 UTC).
        assert option["xMin"] == datetime(2026, 3, 9, 10, 30, tzinfo=UTC).timestamp() * 1000
        assert option["xMax"] - option["xMin"] == 24 * 3600 * 1000
        counts = _counts(option)
        assert counts == _expected(clean_db, world.alice, "24h")
        assert counts[3] == 13 * 12  # readings every minute from 21:30 to 10:30, 5-min buckets
        # The SOS of 08:05 Shanghai time is marked on every panel, labelled in site time.
        assert all(s["marks"] == ["SOS call 08:05"] for s in option["series"])
        assert [s["band"] for s in option["series"]] == [1, 1, 0, 0]
        # The tooltip's and labels' formatting, in the module itself.
        labels = page.evaluate("""async () => {
          const m = await import("/static/charts.js");
          const wall = m.wallClock("Asia/Shanghai");
          return [m.isoMinute(wall(Date.parse("2026-03-10T00:05:00Z"))),
                  m.axisLabel(wall(Date.parse("2026-03-09T16:00:00Z"))),
                  m.axisLabel(wall(Date.parse("2026-03-09T14:30:00Z")))];
        }""")
        assert labels == ["2026-03-10 08:05", "03-10", "22:30"]
        bands = page.evaluate("""async () => {
          const m = await import("/static/charts.js");
          const steady = Array.from({ length: 12 }, (_, i) => 60 + (i % 3));  // 60, 61, 62, ...
          const wide = Array.from({ length: 12 }, (_, i) => 50 + 2 * i);  // 50, 52, ... 72
          return [m.usualBand(steady), m.usualBand(steady.slice(1)),
                  m.usualBand([...steady, 150, 160, null]), m.usualBand(wide)];
        }""")
        # median 61, MAD 1: 2 x 1.4826 is under the floor of 5 % (3.05); too few values: none;
        # two outliers do not widen it
        assert bands[0] == pytest.approx({"low": 61 - 3.05, "high": 61 + 3.05})
        assert bands[1] is None
        assert bands[2] == bands[0]
        assert bands[3] == pytest.approx({"low": 61 - 17.7912, "high": 61 + 17.7912})  # MAD 6
        # The tooltip (drawn on the canvas) shows the site's time; no policy is violated.
        box.hover(position={"x": 1500, "y": 100})
        page.wait_for_function("document.querySelector('#vitals-charts .vitals-chart')"
                               ".dataset.state === 'ready'")
        page.locator("#vitals-charts").screenshot(path=str(tmp_path / "resident-charts-24h.png"))
        assert page.evaluate("window.cspViolations") == []
        page.screenshot(path=str(tmp_path / "resident-page-1920.png"), full_page=True)

        for key, name in (("7d", "7 days"), ("30d", "30 days")):
            page.locator("#vitals-charts").get_by_role("button", name=name).click()
            expect(page.locator(f'#vitals-charts button[data-range="{key}"]')).to_have_attribute(
                "aria-pressed", "true")
            expect(box).to_have_attribute("data-state", "ready")
            option = chart_option(page, "#vitals-charts .vitals-chart")
            assert option["xMax"] - option["xMin"] == RANGES[key][0].total_seconds() * 1000
            assert _counts(option) == _expected(clean_db, world.alice, key), key
            assert option["series"][0]["marks"] == ["SOS call 08:05"]
            page.locator("#vitals-charts").screenshot(
                path=str(tmp_path / f"resident-charts-{key}.png"))
        # A resident without readings: an empty chart and a word why.
        page.locator("#resident-rows tr", has_text="Bob Berg").click()
        expect(page.locator("#resident-form")).to_have_attribute("data-loaded", str(world.bob))
        page.locator("#vitals-charts").get_by_role("button", name="24 h").click()
        expect(box).to_have_attribute("data-state", "ready")
        expect(page.locator("#vitals-charts .chart-message")).to_have_text(
            "No readings in this range.")
        assert _counts(chart_option(page, "#vitals-charts .vitals-chart")) == [0, 0, 0, 0]
        assert bp.problems == []  # no script error, no CSP violation
    assert any(url.endswith(ASSET) for url in requested)
    assert all(url.startswith(server.url) for url in requested)  # no CDN


def _counts(option: dict[str, Any]) -> list[int]:
    return [sum(v is not None for v in s["values"]) for s in option["series"]]


def _expected(database_url: str, resident: int, key: str) -> list[int]:
    span, width = RANGES[key]
    return [buckets(database_url, resident, width, column, NOW - span, NOW)
            for column in ("heart_rate", "respiration_rate", "movement", "occupied")]


def test_resident_charts_on_a_phone(server: Served, world: World, tmp_path):
    from playwright.sync_api import expect

    with browser_page(PHONE, is_mobile=True, has_touch=True, timezone_id=BROWSER_ZONE) as bp:
        page = bp.page
        open_alice(page, server.url)
        box = page.locator("#vitals-charts .vitals-chart")
        expect(box).to_have_attribute("data-state", "ready")
        option = chart_option(page, "#vitals-charts .vitals-chart")
        assert len(option["series"]) == 4 and option["canvases"] >= 1
        width = page.evaluate("document.querySelector('#vitals-charts canvas').clientWidth")
        assert 0 < width <= PHONE["width"]
        box.scroll_into_view_if_needed()
        page.locator("#vitals-charts").screenshot(path=str(tmp_path / "resident-charts-390.png"))
        assert bp.problems == []


def test_family_sees_the_seven_nights_chart(server: Served, world: World, tmp_path):
    from playwright.sync_api import expect

    resp = httpx.post(f"{server.url}/api/v1/auth/token",
                      data={"username": "family-alice", "password": PASSWORD})
    summary = httpx.get(f"{server.url}/api/v1/family/residents/{world.alice}/summary",
                        headers={"Authorization": f"Bearer {resp.json()['access_token']}"}
                        ).json()
    with browser_page(PHONE, is_mobile=True, has_touch=True, timezone_id=BROWSER_ZONE) as bp:
        page = bp.page
        log_in(page, server.url, "family-alice")
        card = page.locator(".family-card", has_text="Alice Andersen")
        box = card.locator(".family-week-chart")
        expect(box).to_have_attribute("data-state", "ready")
        option = chart_option(page, f"#resident-{world.alice} .family-week-chart")
        assert option["canvases"] >= 1
        assert [s["name"] for s in option["series"]] == [
            "Hours in bed", "Times up at night", "Resting heart rate"]
        days = summary["days"]
        assert option["series"][0]["values"] == [
            round(d["time_in_bed_s"] / 360) / 10 for d in days]
        assert option["series"][0]["values"][-1] == 8.2  # 22:14-06:48 with 23 min up
        assert option["series"][1]["values"] == [2, 1, 2, 1, 2, 1, 3]  # the rise is no exit
        assert option["series"][2]["values"] == [61] * 6 + [52]
        card.locator(".family-week").screenshot(path=str(tmp_path / "family-week-chart.png"))
        assert bp.problems == []


def test_pages_say_charts_are_unavailable_without_the_files(family: FamilyWorld, world: World,
                                                           clean_db, tmp_path):
    from playwright.sync_api import expect

    app = create_app(clean_db, SECRET, clock=lambda: NOW, charts=tmp_path)
    with running_server(app) as srv, browser_page(WALL) as bp:
        open_alice(bp.page, srv.url)
        section = bp.page.locator("#vitals-charts")
        expect(section.locator(".chart-message")).to_have_text(
            "Charts unavailable (run scripts/bootstrap.sh).")
        expect(section.locator(".vitals-chart")).to_be_hidden()
        # the rest of the entry still works
        expect(bp.page.locator("#resident-form")).to_have_attribute("data-loaded",
                                                                    str(world.alice))

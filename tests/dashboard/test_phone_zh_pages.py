"""The care worker's phone page and the family view in Simplified Chinese (issue 14,
"Languages"), in a real headless Chromium whose locale is zh-CN (so it sends
Accept-Language: zh-CN and the pages answer in Chinese), against a real uvicorn, database
and broker.

Every visible text, and every label a screen reader reads, must be Chinese: the check
collects them, skips what the pages mark as data (`translate="no"`: names, addresses, phone
numbers, device ids) and the seeded data values given to it, and fails on any Latin word
left (a few acronyms excepted). That covers the words other parts of the platform put on
these pages too (the alert cards' buttons, the vocabulary's labels, ages, the server's
sentences about a relative): the controls are found by id and data attributes, not by
those words, so the test only fails for a text nobody translated."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

from dashboard.app import create_app
from kernel import db
from tests.dashboard.family.seed import NOW, FamilyWorld, seed_family
from tests.support.dashboard import SECRET, STAFF_TEXT, World, insert_alert
from tests.support.live import (
    PHONE,
    TOUCH,
    Served,
    browser_page,
    fits_width,
    log_in,
    running_server,
)
from tests.support.wait import wait_until
from tests.support.zh import ALLOWED_LATIN

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

ZH = {"locale": "zh-CN", "timezone_id": "America/New_York"}  # not the site's zone
# Latin words allowed in Chinese text (issue 14's list).
ALLOWED = ALLOWED_LATIN

# Every text a person sees or hears on the page, outside elements marked translate="no":
# visible text nodes, and the aria-label / title / placeholder of visible elements.
_TEXTS = """() => {
  const data = (node) => node.closest('[translate="no"], script, style, template, noscript');
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    const text = (node.textContent || "").trim();
    if (!text || !parent || data(parent) || !parent.checkVisibility()) continue;
    found.push(text);
  }
  for (const element of document.body.querySelectorAll("[aria-label], [title], [placeholder]")) {
    if (data(element) || !element.checkVisibility()) continue;
    for (const name of ["aria-label", "title", "placeholder"]) {
      const value = element.getAttribute(name);
      if (value) found.push(value);
    }
  }
  found.push(document.title);
  return found;
}"""


def untranslated(page: Page, data: Sequence[str]) -> list[str]:
    """The texts of the page that still hold a Latin word once the `data` values (names,
    usernames, e-mail addresses of the seeded world) are taken out."""
    left = []
    for text in page.evaluate(_TEXTS):
        rest = str(text)
        for value in sorted(data, key=len, reverse=True):
            rest = rest.replace(value, " ")
        words = set(re.findall(r"[A-Za-z][A-Za-z0-9]*", rest)) - ALLOWED
        if words:
            left.append(f"{text!r}: {sorted(words)}")
    return left


def execute(database_url: str, query: str, *params: object) -> None:
    with db.connect(database_url, autocommit=True) as conn:
        conn.execute(query, params)


# --- the phone page ---------------------------------------------------------------------------

WORLD_DATA = ("Alice Andersen", "Bob Berg", "Carl Care", "care-north", "north", "btn-alice",
              "bed-alice", "1 Fjord Road", "2 Fjord Road")


def test_the_phone_page_in_chinese_claims_and_acknowledges(server: Served, world: World,
                                                           clean_db, screenshot):
    from playwright.sync_api import expect

    execute(clean_db, "UPDATE sites SET timezone = 'Asia/Shanghai' WHERE id = 'north'")
    execute(clean_db, "UPDATE alerts SET assigned_to = %s, opened_at = %s WHERE id = %s",
            world.care_north, "2026-03-01T06:03:00Z", world.sos_alice)  # 14:03 in Shanghai
    execute(clean_db, "INSERT INTO visits (resident_id, site_id, due_on, assigned_to, status, "
            "arrived_at) VALUES (%s, 'north', current_date, %s, 'in_progress', %s)",
            world.bob, world.care_north, "2026-03-01T06:05:00Z")
    with browser_page(PHONE, **TOUCH, **ZH) as browser:
        page = browser.page
        log_in(page, f"{server.url}/worker", "care-north")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("#mine-heading")).to_contain_text("我的待办")
        expect(page.locator("#visits-heading")).to_contain_text("我的巡访")
        expect(page.locator("#due-heading")).to_contain_text("本站点逾期的巡访")
        expect(page.locator("#site-heading")).to_contain_text("本站点未处理的告警")
        bar = page.locator(".thumb-bar")
        for link in ("待办", "巡访", "逾期", "站点", "在岗"):  # the bottom bar
            expect(bar.get_by_role("link", name=link)).to_be_visible()
        expect(page.locator("#duty-button")).to_have_text("上岗")
        expect(page.locator("#notify-button")).to_have_text("在此手机上开启通知")

        # The SOS assigned to me: its time in the site's zone; the resident's name is data.
        sos = page.locator(f'#mine-list [data-alert-id="{world.sos_alice}"]')
        expect(sos).to_contain_text("2026-03-01 14:03")
        expect(sos.locator(".worker-resident")).to_have_attribute("translate", "no")
        battery = page.locator(f'#mine-list [data-alert-id="{world.battery_alice}"]')
        expect(battery).to_contain_text("已由您确认")
        sos.locator(".reach-summary").tap()
        expect(sos.locator(".reach-link--map")).to_contain_text("在地图中打开地址")

        # My visit to Bob, under way: its form in Chinese, the arrival in the site's time.
        visit = page.locator("#visits-list .visit")
        expect(visit).to_contain_text("2026-03-01 14:05 到达")
        expect(visit.locator(".visit-name")).to_have_attribute("translate", "no")
        expect(visit.get_by_role("button", name="我要离开：结束巡访")).to_be_visible()
        expect(visit.get_by_label("您看到了什么情况？")).to_be_visible()

        # A new alert at the site arrives live in "Open at my site"; acknowledging claims it.
        with db.connect(clean_db, autocommit=True) as conn:
            fall = insert_alert(conn, world.bob, "north", "fall", "critical", minutes_ago=0)
        other = page.locator(f'#site-list [data-alert-id="{fall}"]')
        expect(other).to_be_visible(timeout=10_000)
        expect(page.locator("#critical-banner")).to_contain_text("新紧急告警")
        page.locator("#critical-banner").click()
        other.locator(".action-buttons button").first.tap()
        claimed = page.locator(f'#mine-list [data-alert-id="{fall}"]')
        expect(claimed).to_contain_text("已由您确认")
        wait_until(lambda: _acknowledged_by(clean_db, fall) == world.care_north,
                   what="the claim stored")
        sos.locator(".action-buttons button").first.tap()
        expect(sos).to_contain_text("已由您确认")

        page.locator("#duty-button").tap()
        expect(page.locator("#duty-button")).to_have_text("在岗 ✓")
        expect(page.locator("#duty-message")).to_have_text(
            "您已在岗：本站点的新告警可以派给您。")
        screenshot(page, "phone-zh")
        assert fits_width(page)
        left = untranslated(page, WORLD_DATA)
        assert not left, "\n".join(left)
    assert browser.problems == []


def _acknowledged_by(database_url: str, alert_id: int) -> object:
    with db.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT acknowledged_by FROM alerts WHERE id = %s",
                           (alert_id,)).fetchone()
    return None if row is None else row[0]


# --- the family view --------------------------------------------------------------------------


@pytest.fixture
def family(world: World, clean_db: str) -> FamilyWorld:
    return seed_family(clean_db, world)


@pytest.fixture
def family_server(family: FamilyWorld, clean_db: str) -> Iterator[Served]:
    """The dashboard with its clock at the seed's NOW (the seeded week's last morning)."""
    with running_server(create_app(clean_db, SECRET, clock=lambda: NOW)) as srv:
        yield srv


FAMILY_DATA = ("Alice Andersen", "Anna Andersen", "anna@example.org")

_WEEK_SERIES = """(selector) => import("/vendor/echarts/echarts.esm.min.mjs").then((echarts) => {
  const option = echarts.getInstanceByDom(document.querySelector(selector)).getOption();
  return option.series.map((s) => ({ name: s.name, values: s.data }));
})"""


def test_the_family_view_in_chinese_with_the_week_chart(family_server: Served, world: World,
                                                        screenshot):
    from playwright.sync_api import expect

    with browser_page(PHONE, **TOUCH, **ZH) as browser:
        page = browser.page
        log_in(page, family_server.url, "family-alice")
        expect(page).to_have_url(re.compile(r"/family$"))
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        card = page.locator(f"#resident-{world.alice}")
        expect(card.locator(".family-name")).to_have_text("Alice Andersen")
        expect(card.locator(".family-name")).to_have_attribute("translate", "no")
        expect(page.locator(".topbar h1")).to_have_text("我的家人")
        for heading in ("近期告警", "昨晚", "最近 7 天"):
            expect(card.get_by_role("heading", name=heading)).to_be_visible()
        expect(card.locator(".night-in-bed")).to_have_text("8 小时 11 分钟")
        expect(card.locator(".night-rr")).to_contain_text("14 次/分：")
        expect(card.locator(".night-rr")).to_contain_text("（平时 14）")
        expect(card.locator(".week-rows tr")).to_have_count(7)

        box = card.locator(".family-week-chart")
        expect(box).to_have_attribute("data-state", "ready")
        series = page.evaluate(_WEEK_SERIES, f"#resident-{world.alice} .family-week-chart")
        assert [s["name"] for s in series] == ["在床小时数", "起夜次数", "静息心率"]
        assert series[1]["values"] == [2, 1, 2, 1, 2, 1, 3]  # the rise is no exit
        assert series[2]["values"] == [61] * 6 + [52]

        settings = page.locator("#settings-list")
        expect(settings.get_by_label("通知我的最低告警级别")).to_have_value("high")
        expect(settings.get_by_label("免打扰时段：从")).to_have_value("22:00")
        expect(settings.get_by_label("至", exact=True)).to_have_value("07:00")
        expect(settings.get_by_role("button", name="发送测试消息")).to_be_visible()
        settings.get_by_role("button", name="保存").click()
        expect(settings.get_by_role("status")).to_have_text("已保存。")

        for staff_only in STAFF_TEXT:  # family wording, never the staff's internals
            expect(page.locator("body")).not_to_contain_text(staff_only)
        screenshot(page, "family-zh")
        assert fits_width(page)
        left = untranslated(page, FAMILY_DATA)
        assert not left, "\n".join(left)
    assert browser.problems == []


def test_the_invitation_page_in_chinese(family_server: Served):
    from playwright.sync_api import expect

    with browser_page(PHONE, **TOUCH, **ZH) as browser:
        page = browser.page
        page.goto(f"{family_server.url}/invite#not-a-real-token")
        expect(page.locator("#invite-heading")).to_have_text("设置您的密码")
        page.locator("#new-password").fill("a long enough password")
        page.locator("#invite-button").click()
        expect(page.locator("#invite-message")).not_to_be_empty()
        left = untranslated(page, ())  # the refusal too comes back in the page's language
        assert not left, "\n".join(left)

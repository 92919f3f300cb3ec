"""The administration pages in Chinese, in a real headless Chromium (issue 14, "Languages"):
a browser asking for zh-CN gets the ledger and the answer-time report with Chinese headings
and controls and no untranslated English outside the data (names, ids, addresses, marked
translate="no"); a person's language setting on "My account" switches the pages, and the
login of any other page, to their language, and "follow my browser" switches them back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import psycopg
import pytest

from dashboard.app import create_app
from tests.support.answer_times import AFTER, seed
from tests.support.dashboard import SECRET, World
from tests.support.live import DESKTOP, Served, browser_page, log_in, running_server
from tests.support.zh import ALLOWED_LATIN

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

ZH = {"locale": "zh-CN"}  # the browser's language: Accept-Language and navigator.languages
# Latin words a Chinese page may show as they are (brief of issue 14).
ALLOWED = ALLOWED_LATIN

# The visible words of the page made of Latin letters, outside the data (translate="no"):
# texts, and the accessible names a screen reader speaks (aria-label, title, alt).
LATIN_WORDS = """(root) => {
  const scope = root ? document.querySelector(root) : document.body;
  // #who: "name · role · site" of the shared top bar (common.js whoLine), a name first.
  const skip = (node) => node.closest('[translate="no"], #who, script, style, template, [hidden]')
    || !node.checkVisibility();
  const words = [];
  const walker = document.createTreeWalker(scope, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    const parent = text.parentElement;
    if (!parent || parent.closest("select") || skip(parent)) continue;
    words.push(...(text.textContent.match(/[A-Za-z][A-Za-z0-9]*/g) || []));
  }
  // An accessible name may repeat data shown on the page ("Move btn-7 to…"): its words are
  // data there too.
  const data = new Set();
  for (const node of document.querySelectorAll('[translate="no"]')) {
    for (const word of node.textContent.match(/[A-Za-z][A-Za-z0-9]*/g) || []) data.add(word);
  }
  for (const node of document.querySelectorAll("[data-username]")) {  // a row's person
    for (const word of node.dataset.username.match(/[A-Za-z][A-Za-z0-9]*/g) || []) data.add(word);
  }
  for (const node of scope.querySelectorAll("[aria-label], [title], [alt], option")) {
    if (node.closest('[translate="no"], template, [hidden]')) continue;
    const said = [node.getAttribute("aria-label"), node.getAttribute("title"),
      node.getAttribute("alt"), node.tagName === "OPTION" ? node.textContent : null];
    for (const text of said) {
      words.push(...((text || "").match(/[A-Za-z][A-Za-z0-9]*/g) || [])
        .filter((word) => !data.has(word)));
    }
  }
  return words;
}"""


def untranslated(page: Page, root: str | None = None) -> set[str]:
    """The Latin words `page` shows (within the `root` selector) that are neither data nor
    allowed in Chinese text."""
    return set(page.evaluate(LATIN_WORDS, root)) - ALLOWED


def test_the_ledger_in_chinese(server: Served, world: World, screenshot) -> None:
    from playwright.sync_api import expect

    with browser_page(DESKTOP, **ZH) as browser:
        page = browser.page
        log_in(page, f"{server.url}/admin", "admin")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("#resident-rows tr")).to_have_count(3)
        expect(page.locator(".topbar h1")).to_have_text("电子台账")
        expect(page.locator("#residents-heading")).to_have_text("长者")
        expect(page.locator("#sites-heading")).to_have_text("站点")
        expect(page.get_by_role("button", name="新建长者档案")).to_be_visible()
        expect(page.get_by_role("button", name="筛选")).to_be_visible()
        expect(page.locator(".ledger-table thead th")).to_have_text(
            ["姓名", "站点", "状态", "风险", "出生年份", "电话"])
        expect(page.get_by_role("link", name="值班表")).to_be_visible()
        expect(page.get_by_role("link", name="审计日志")).to_be_visible()
        expect(page.locator("#resident-rows")).to_contain_text("Bob Berg")  # data as it is
        assert sorted(untranslated(page)) == []

        # A resident's entry: the form, its alert settings, vitals and timeline
        page.locator("#resident-rows tr", has_text="Bob Berg").click()
        expect(page.locator("#resident-form")).to_have_attribute("data-loaded",
                                                                 re.compile(r"^\d+$"))
        expect(page.locator("#editor-heading")).to_have_text("Bob Berg")
        expect(page.locator("#resident-form legend").first).to_have_text("基本信息")
        expect(page.get_by_role("button", name="保存告警设置")).to_be_visible()
        settings = page.locator("#alert-settings-form")
        expect(settings.locator('[data-field="apnea_s"]')).to_have_text("呼吸暂停时长（秒）")
        expect(settings.locator('[data-field="heart_rate.normal_low"]')).to_have_text(
            "心率 · 正常下限")
        expect(page.locator("#timeline-heading")).to_have_text("时间线")
        expect(page.locator("#timeline li").first).to_contain_text("告警")
        assert sorted(untranslated(page, "#resident-editor")) == []
        screenshot(page, "ledger-zh")
        assert browser.problems == []


@pytest.fixture
def reported(world: World, clean_db: str) -> Iterator[Served]:
    """The dashboard on alerts with known answer times, its clock after the reported day."""
    asyncio.run(seed(clean_db, world))
    with running_server(create_app(clean_db, SECRET, clock=lambda: AFTER)) as srv:
        yield srv


def test_the_answer_time_report_in_chinese(reported: Served, screenshot) -> None:
    from playwright.sync_api import expect

    with browser_page(DESKTOP, **ZH) as browser:
        page = browser.page
        log_in(page, f"{reported.url}/reports/answer-times?date=2026-03-02",
                      "duty-north")
        expect(page.locator(".topbar h1")).to_have_text("接警及时率")
        expect(page.locator(".report-row-all [data-metric='opened']")).to_have_text("6")
        # the report's own words come in the page's language (`lang` of the request)
        expect(page.locator("#report-heading")).to_have_text("接警及时率 · north")
        controls = page.locator(".report-controls")
        expect(controls.locator("label")).to_have_text(["站点", "周期", "日期（站点日历）"])
        expect(controls.get_by_role("button")).to_have_text(
            ["显示", "导出 CSV", "导出 XLSX", "打印"])
        expect(page.locator("#report-period option")).to_have_text(["日", "周"])
        assert untranslated(page, ".report-controls") == set()
        screenshot(page, "answer-times-zh")
        assert browser.problems == []


def stored_language(database_url: str, username: str) -> tuple[str, bool]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT language, language_chosen FROM users WHERE username = %s",
                           (username,)).fetchone()
    assert row is not None
    return str(row[0]), bool(row[1])


def test_my_language_setting_switches_the_pages_and_back(server: Served, world: World,
                                                         clean_db: str, screenshot) -> None:
    from playwright.sync_api import expect

    with browser_page(DESKTOP, locale="en-GB") as browser:
        page = browser.page
        log_in(page, f"{server.url}/account", "duty-north")
        expect(page.locator("#language-panel")).to_be_visible()
        choice = page.locator("#language-choice")
        expect(choice.locator("option")).to_have_text(
            ["Follow my browser", "English", "简体中文"])
        expect(choice).to_have_value("")
        expect(page.locator("#language-panel")).to_contain_text(
            "Your notifications (on your phone, by e-mail) are written in the same language")

        choice.select_option("zh-CN")
        page.get_by_role("button", name="Save language").click()
        # The page reloads in Chinese (the session stays in the tab)
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator(".topbar h1")).to_have_text("我的账户")
        expect(page.locator("#language-heading")).to_have_text("语言")
        expect(page.locator("#language-choice")).to_have_value("zh-CN")
        expect(page.locator("#language-panel")).to_contain_text("您的通知")
        assert stored_language(clean_db, "duty-north") == ("zh-CN", True)
        screenshot(page, "account-language")

        # Another page of this browser comes up in Chinese, at its login already
        other = page.context.new_page()
        other.goto(f"{server.url}/admin/roster")
        expect(other.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(other.locator("#login-heading")).to_have_text("值班表")
        other.close()

        # Follow my browser again: back to the browser's English
        page.locator("#language-choice").select_option("")
        page.get_by_role("button", name="保存语言").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator(".topbar h1")).to_have_text("My account")
        expect(page.locator("#language-choice")).to_have_value("")
        assert stored_language(clean_db, "duty-north") == ("en", False)
        assert browser.problems == []


# Each administration page, and what shows once its data is there.
PAGES = [
    ("/admin/devices", "#devices-body tr"),
    ("/admin/import", "#import-form"),
    ("/admin/staff", "#staff-rows tr"),
    ("/admin/roster?site=north", "#people-rows tr"),
    ("/admin/family", "#family-rows tr"),
    ("/admin/notifications?site=north", "#sent-form"),
    ("/admin/audit", "#audit-rows tr"),
    ("/account", "#language-panel"),
]


def test_every_administration_page_in_chinese(server: Served, world: World,
                                              screenshot) -> None:
    from playwright.sync_api import expect

    with browser_page(DESKTOP, **ZH) as browser:
        page = browser.page
        log_in(page, f"{server.url}/admin", "admin")
        expect(page.locator("#resident-rows tr")).to_have_count(3)
        for path, loaded in PAGES:
            page.goto(f"{server.url}{path}")  # the session stays in the tab
            expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            expect(page.locator(loaded).first).to_be_visible()
            assert (path, sorted(untranslated(page))) == (path, [])
        # the device history and a person's sessions: panels opened on the page
        page.goto(f"{server.url}/admin/devices")
        page.locator("#devices-body tr", has_text="btn-alice").click()
        expect(page.locator("#device-history")).to_be_visible()
        expect(page.locator("#history-title")).to_contain_text("btn-alice")
        expect(page.locator("#history-state")).to_have_text("在线")
        assert sorted(untranslated(page, "#device-history")) == []
        page.goto(f"{server.url}/admin/staff")
        page.locator("#staff-rows tr", has_text="duty-north").get_by_role(
            "button", name="会话").click()
        expect(page.locator("#sessions-panel")).to_be_visible()
        assert sorted(untranslated(page, "#sessions-panel")) == []
        assert browser.problems == []

"""The duty screen in Chinese and in the site's time (issue 14), in a real headless Chromium
against a real uvicorn, database and broker: a browser asking for zh-CN (Playwright's `locale`
sets Accept-Language) gets Chinese controls and a live SOS in Chinese; a browser whose zone
(New York) is not the site's (Shanghai) still shows every duty-screen time in the site's zone,
24-hour. Every instant is fixed in the database or on the bus, never the wall clock."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from alerts.bus import AlertEvent
from alerts.model import Severity
from gateway.presence import PartState, part_topic
from kernel import db
from tests.support.dashboard import PASSWORD, World, insert_alert
from tests.support.live import Screenshots, Served, browser_page, bus_publisher, log_in
from tests.support.services import Broker
from tests.support.zh import ALLOWED_LATIN

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.usefixtures("chromium")  # a missing browser fails, never skips

WALL_1080: Any = {"width": 1920, "height": 1080}
BROWSER_ZONE = "America/New_York"
SITE_ZONE = "Asia/Shanghai"
CHINESE: dict[str, Any] = {"locale": "zh-CN", "timezone_id": BROWSER_ZONE}
IN_NEW_YORK: dict[str, Any] = {"timezone_id": BROWSER_ZONE}
# 23:30 UTC on 1 March: 07:30 on 2 March in Shanghai, 18:30 on 1 March in New York.
OPENED = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
# 03:12 UTC: 11:12 in Shanghai, 22:12 the day before in New York.
DOWN_SINCE = datetime(2026, 3, 1, 3, 12, tzinfo=UTC)

# Latin words a Chinese page may show as they are (issue 14's list, plus the zone's name).

# The visible text of the page, leaving out data (translate="no"), options not chosen and
# whatever is not rendered.
VISIBLE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest('[translate="no"], script, style')) continue;
    const option = parent.closest("option");
    if (option && !option.selected) continue;
    const shown = option ? option.closest("select") : parent;
    if (!shown || !shown.checkVisibility({ visibilityProperty: true })) continue;
    if (node.textContent.trim()) out.push(node.textContent.trim());
  }
  return out;
}"""


def _sites_in(database_url: str, north: str, south: str = "UTC") -> None:
    with db.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE sites SET timezone = %s WHERE id = 'north'", (north,))
        conn.execute("UPDATE sites SET timezone = %s WHERE id = 'south'", (south,))


def _strings(value: Any) -> list[str]:
    """Every string in a JSON document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def untranslated_words(page: Page, server_words: list[str]) -> list[str]:
    """The Latin words the page shows outside data. Words defined once in Python (the
    vocabulary document embedded in the page, and `server_words`, e.g. the answer-time
    labels) are the N_ catalog's, translated apart from this screen's own texts: they are
    taken out first, so this checks the duty screen's own words."""
    vocabulary = page.evaluate(
        "() => JSON.parse(document.getElementById('vocabulary').textContent)")
    pieces = [p.strip() for w in _strings(vocabulary) + server_words
              for p in re.split(r"\{\w+\}", w)]  # a label's text around its placeholders
    known = sorted({p for p in pieces if len(p) > 1}, key=len, reverse=True)
    found: list[str] = []
    for text in page.evaluate(VISIBLE_TEXT):
        for word in known:
            text = re.sub(re.escape(word), " ", text, flags=re.IGNORECASE)
        found += [w for w in re.findall(r"[A-Za-z][A-Za-z0-9]+", text)
                  if w not in ALLOWED_LATIN]
    return found


def log_in_zh(page: Page, url: str, username: str) -> None:
    """The login form in Chinese (its labels are 用户名 / 密码, its button 登录)."""
    from playwright.sync_api import expect

    page.goto(url)
    form = page.locator("#login-form")
    expect(form.get_by_label("用户名", exact=True)).to_be_visible()
    form.get_by_label("用户名", exact=True).fill(username)
    form.get_by_label("密码", exact=True).fill(PASSWORD)
    form.get_by_role("button", name="登录").click()


def test_the_duty_screen_in_chinese_with_a_live_sos_in_site_time(
        server: Served, world: World, clean_db: str, screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    _sites_in(clean_db, SITE_ZONE)
    with browser_page(WALL_1080, **CHINESE) as browser:
        page = browser.page
        log_in_zh(page, server.url, "duty-north")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("#feed-status")).to_contain_text("实时 · ")
        expect(page.get_by_role("button", name="退出登录")).to_be_visible()
        expect(page.get_by_role("button", name="测试声音")).to_be_visible()
        expect(page.locator("#sound-button")).to_have_text("声音：开")
        expect(page.locator("#alerts-heading")).to_contain_text("当前告警")
        expect(page.locator("#tiles-heading")).to_contain_text("辖区总览")
        expect(page.locator("#who")).to_contain_text("站点 north")
        sos_alice = page.locator(f'.alert[data-alert-id="{world.sos_alice}"]')
        expect(sos_alice.get_by_role("button", name="确认")).to_be_visible()
        expect(sos_alice.get_by_role("button", name="处置完成…")).to_be_visible()
        expect(sos_alice).to_contain_text("分钟前")

        # An SOS arrives live (no reload), its time in Shanghai's clock, not New York's.
        with db.connect(clean_db, autocommit=True) as conn:
            sos = insert_alert(conn, world.bob, "north", "sos", "critical", opened_at=OPENED,
                               last_seen=OPENED, device_id="btn-bob")
        card = page.locator(f'.alert[data-alert-id="{sos}"]')
        expect(card).to_be_visible(timeout=10_000)
        expect(card.locator(".alert-at")).to_have_text("07:30 发生")
        expect(card).to_contain_text("尚无人接手")
        expect(card).to_contain_text("设备 btn-bob")
        expect(page.locator("#critical-banner")).to_contain_text("新紧急告警")
        expect(page.locator("#critical-banner")).to_contain_text("Bob Berg")
        group = page.locator(".alert-group", has=card)
        expect(group.locator(".group-count")).to_have_text("1 条告警")
        expect(page.locator("#clock")).to_have_text(re.compile(r"^\d\d:\d\d$"))  # no "UTC"
        assert page.evaluate(
            "async () => (await import('/static/time.js')).pageZone()") == SITE_ZONE
        expect(page.locator("#tiles-grid .tile").first).to_be_visible()
        expect(page.locator("#shift-tiles .shift-tile").first).to_be_visible()
        screenshot(page, "duty-screen-zh")

        shift = page.evaluate("""async () => (await fetch(
            '/api/v1/sites/north/answer-times/shift', { headers: {
              Authorization: 'Bearer ' + JSON.parse(
                sessionStorage.getItem('eldercare.session')).access_token,
              'Accept-Language': 'zh-CN' } })).json()""")
        words = untranslated_words(page, _strings(shift["labels"]))
        assert words == [], words

        card.get_by_role("button", name="确认").click()
        expect(card).to_contain_text("已由您确认")
    assert browser.problems == []


def test_the_login_form_and_wall_display_setup_speak_chinese(
        server: Served, world: World, screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    with browser_page(WALL_1080, **CHINESE) as browser:
        page = browser.page
        page.goto(server.url)
        page.get_by_role("button", name="登录").click()
        expect(page.locator("#login-message")).to_have_text("请输入用户名和密码。")
        assert untranslated_words(page, []) == []
        screenshot(page, "duty-login-zh")

        log_in_zh(page, server.url, "duty-north")
        page.get_by_role("button", name="设为值班大屏").click()
        setup = page.locator("#display-setup")
        expect(setup.get_by_label("屏幕名称")).to_have_attribute("placeholder", "大厅屏幕 1")
        expect(page.locator("#displays-empty")).to_have_text("本站点尚未设置值班大屏。")
        setup.get_by_role("button", name="取消").click()
        expect(setup).to_be_hidden()
    assert browser.problems == []


def test_a_browser_in_another_zone_still_shows_the_sites_times(
        server: Served, world: World, clean_db: str, broker: Broker,
        screenshot: Screenshots) -> None:
    """New York's browser, Shanghai's site: a stored and a pending alert's "at", the parts
    strip's "since" and the banner's "down since" are Shanghai's (the browser's zone would
    say 18:30 / 22:12)."""
    from playwright.sync_api import expect

    _sites_in(clean_db, SITE_ZONE)
    with db.connect(clean_db, autocommit=True) as conn:
        fall = insert_alert(conn, world.bob, "north", "fall", "critical", opened_at=OPENED,
                            last_seen=OPENED)
    jobs, pipeline = part_topic("jobs"), part_topic("pipeline-zone")
    with browser_page(WALL_1080, **IN_NEW_YORK) as browser, \
            bus_publisher(broker.pipeline) as bus:
        try:
            page = browser.page
            log_in(page, server.url, "duty-north")
            assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == \
                BROWSER_ZONE
            card = page.locator(f'.alert[data-alert-id="{fall}"]')
            expect(card.locator(".alert-at")).to_have_text("at 07:30")
            # A bus alert not stored yet carries its site's zone too.
            bus.publish(AlertEvent(uid=str(uuid.uuid4()), action="raised", site="north",
                                   resident_id=world.bob, device_id=None, type="sos",
                                   severity=Severity.CRITICAL, at=OPENED, emitted_at=OPENED))
            pending = page.locator(".alert.alert--pending")
            expect(pending.locator(".alert-at")).to_have_text("at 07:30")
            down = PartState(part="jobs", up=False, since=DOWN_SINCE, reason="lost")
            bus.publish_raw(jobs, down.model_dump_json().encode(), retain=True)
            pipeline_down = PartState(part="pipeline-zone", up=False, since=DOWN_SINCE,
                                      reason="lost")
            bus.publish_raw(pipeline, pipeline_down.model_dump_json().encode(), retain=True)
            expect(page.locator("#parts-strip [data-part='notifications']")).to_have_text(
                "Notifications: DOWN since 11:12")
            expect(page.locator("#parts-banner")).to_contain_text(
                "Pipeline zone down since 11:12")
            expect(page.locator("#clock")).to_have_text(re.compile(r"^\d\d:\d\d$"))
            screenshot(page, "duty-screen-site-time")
        finally:
            bus.publish_raw(jobs, b"", retain=True)
            bus.publish_raw(pipeline, b"", retain=True)
    assert browser.problems == []


def test_an_administrator_over_sites_in_two_zones_sees_utc_labelled(
        server: Served, world: World, clean_db: str) -> None:
    """No site of their own and the sites shown disagree: the page's own times are UTC and
    say so; the alerts keep their own site's zone."""
    from playwright.sync_api import expect

    _sites_in(clean_db, SITE_ZONE, "UTC")
    with db.connect(clean_db, autocommit=True) as conn:
        fall = insert_alert(conn, world.bob, "north", "fall", "critical", opened_at=OPENED,
                            last_seen=OPENED)
    with browser_page(WALL_1080, **IN_NEW_YORK) as browser:
        page = browser.page
        log_in(page, server.url, "admin")
        expect(page.locator("#clock")).to_have_text(re.compile(r"^\d\d:\d\d UTC$"))
        expect(page.locator(f'.alert[data-alert-id="{fall}"] .alert-at')).to_have_text(
            "at 07:30")
        page.goto(f"{server.url}/?site=north")  # one site chosen: its zone
        expect(page.locator("#clock")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    assert browser.problems == []


def test_a_chinese_wall_display_shows_the_lost_state_in_chinese_then_recovers(
        world: World, clean_db: str, screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    from tests.dashboard.test_display_page import become_display, display_app, make_display
    from tests.support.live import running_server

    _sites_in(clean_db, SITE_ZONE)
    with running_server(display_app(clean_db)) as srv, \
            browser_page(WALL_1080, **CHINESE) as browser:
        page = browser.page
        become_display(page, srv.url, make_display(srv.url))
        expect(page.locator("#feed-status")).to_contain_text("实时 · ")
        assert page.evaluate(
            "async () => (await import('/static/time.js')).pageZone()") == SITE_ZONE

        srv.stop()
        lost = page.locator("#display-lost")
        expect(lost).to_be_visible(timeout=20_000)
        expect(lost).to_contain_text(re.compile(r"自 \d{4}-\d\d-\d\d \d\d:\d\d 起连接中断"))
        expect(lost).to_contain_text("本屏幕会自动重新连接")
        expect(page.locator("#feed-status")).to_have_text("正在重新连接…")
        screenshot(page, "display-connection-lost-zh")
        with running_server(display_app(clean_db), port=srv.port):
            expect(lost).to_be_hidden(timeout=30_000)
            expect(page.locator("#feed-status")).to_contain_text("实时 · ", timeout=20_000)
    assert [p for p in browser.problems if "ERR_CONNECTION_REFUSED" not in p] == []

"""Sent notifications (GET /api/v1/sites/{site}/notifications and /admin/notifications): what
each recipient of a site was sent, read from the platform's outbox, with recipient, channel,
delivery status, the text and times in the site's zone; personal channels' "send test"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from alerts.model import Audience, NotificationKind
from alerts.notify.outbox import enqueue_alert_notifications
from alerts.notify.settings import NotifySettings
from dashboard.app import create_app
from kernel import db
from simulators.sinks import Inbox, SmtpSink, inbox_path
from tests.support.dashboard import SECRET, World, login
from tests.support.live import Screenshots, Served, logged_in_page, running_server

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

QUEUED = datetime(2026, 3, 5, 14, 3, tzinfo=UTC)  # 22:03 in Asia/Shanghai
DEMO_INBOX = "http://127.0.0.1:9/inbox"
DESK: ViewportSize = {"width": 1400, "height": 900}


def _sent(url: str, world: World) -> dict[str, int]:
    """Alice's SOS sent to her family (delivered) and the north group robot (retrying), and
    Carol's to the south group (failed, another site); returns the outbox ids by name."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE sites SET timezone = 'Asia/Shanghai' WHERE id = 'north'")
        conn.execute("INSERT INTO notification_channels (user_id, kind, target, min_severity)"
                     " VALUES (%s, 'email', 'anna@family.example', 'high')",
                     (world.family_alice,))
        for site, kind, key in (("north", "wecom", "north-care-team-robot-key"),
                                ("south", "dingtalk", "south-care-team-robot-key")):
            conn.execute("INSERT INTO notification_channels (site_id, kind, target) VALUES "
                         "(%s, %s, %s)", (site, kind, key))
        for alert, audience in ((world.sos_alice, Audience.FAMILY),
                                (world.sos_alice, Audience.SITE_GROUP),
                                (world.sos_carol, Audience.SITE_GROUP)):
            enqueue_alert_notifications(conn, alert, audience, NotificationKind.ALERT, 1,
                                        now=QUEUED)
        ids = {str(r[0]): int(r[1]) for r in conn.execute(
            "SELECT channel, id FROM notification_outbox").fetchall()}
        conn.execute("UPDATE notification_outbox SET created_at = %s", (QUEUED,))
        conn.execute("UPDATE notification_outbox SET status = 'sent', attempts = 1, "
                     "sent_at = %s WHERE channel = 'email'", (QUEUED + timedelta(seconds=40),))
        conn.execute("UPDATE notification_outbox SET attempts = 2, last_error = 'wecom: HTTP "
                     "503' WHERE channel = 'wecom'")
        conn.execute("UPDATE notification_outbox SET status = 'failed', attempts = 8 "
                     "WHERE channel = 'dingtalk'")
    return ids


@pytest.mark.anyio
async def test_a_duty_officer_sees_what_each_recipient_of_the_site_was_sent(
        client: httpx.AsyncClient, world: World, clean_db: str) -> None:
    ids = _sent(clean_db, world)
    headers = await login(client, "duty-north")
    answer = (await client.get("/api/v1/sites/north/notifications", headers=headers)).json()
    assert answer["site"] == "north" and answer["site_timezone"] == "Asia/Shanghai"
    assert answer["demo_inbox_url"] is None  # not a demo
    by_channel = {n["channel"]: n for n in answer["notifications"]}
    assert set(by_channel) == {"email", "wecom"}  # not the south site's
    mail, robot = by_channel["email"], by_channel["wecom"]
    assert (mail["recipient"], mail["recipient_username"]) == ("Anna Andersen", "family-alice")
    assert mail["status"] == "delivered" and mail["language"] == "en"
    assert mail["sent_at"] == "2026-03-05T14:03:40Z"
    assert mail["title"] == "CRITICAL: SOS call (help button pressed) - Alice Andersen"
    assert "care team has been alerted" in mail["body"]
    assert robot["recipient"] == "Group channel of site north"
    assert robot["status"] == "retrying" and robot["last_error"] == "wecom: HTTP 503"
    assert robot["target"] == "***-key"  # a robot key is a credential
    assert [n["id"] for n in answer["notifications"]] == sorted(
        (ids["email"], ids["wecom"]), reverse=True)
    south = (await client.get("/api/v1/sites/south/notifications",
                              headers=await login(client, "admin"))).json()
    assert [n["status"] for n in south["notifications"]] == ["failed"]
    newest = max(ids["email"], ids["wecom"])
    older = (await client.get(f"/api/v1/sites/north/notifications?before={newest}",
                              headers=headers)).json()
    assert len(older["notifications"]) == 1


@pytest.mark.anyio
async def test_a_person_tests_their_own_channel_with_the_platforms_sender(
        client: httpx.AsyncClient, world: World) -> None:
    """No SMTP server is configured here: the answer says why it was not delivered."""
    headers = await login(client, "family-alice")
    made = await client.post("/api/v1/me/channels", headers=headers,
                             json={"kind": "email", "target": "anna@family.example"})
    result = await client.post(f"/api/v1/me/channels/{made.json()['id']}/test",
                               headers=headers)
    assert result.status_code == 200
    assert result.json()["sent"] is False
    assert "not configured" in result.json()["detail"]


@pytest.fixture
def page_server(world: World, clean_db: str) -> Iterator[Served]:
    """The dashboard on the database (the page needs no live feed), set up as in the demo."""
    notify = NotifySettings(demo_inbox_url=DEMO_INBOX)
    with running_server(create_app(clean_db, SECRET, notify_settings=notify)) as srv:
        yield srv


@pytest.mark.usefixtures("chromium")
def test_the_sent_notifications_page_shows_recipients_status_and_text_in_site_time(
        page_server: Served, world: World, clean_db: str, screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    _sent(clean_db, world)
    with logged_in_page(DESK, f"{page_server.url}/admin/notifications", "duty-north") as browser:
        page = browser.page
        rows = page.locator("#sent-rows tr")
        expect(rows).to_have_count(2)
        expect(page.locator("#sent-zone")).to_have_text("Asia/Shanghai")
        expect(page.locator("#sent-demo-inbox")).to_have_attribute("href", DEMO_INBOX)
        expect(rows.locator(".sent-status")).to_have_text(["Retrying", "Delivered"])
        expect(rows.locator(".sent-channel")).to_have_text(["WeCom group robot", "E-mail"])
        expect(rows.nth(1).locator(".sent-recipient")).to_have_text(
            "Anna Andersen (family-alice)")
        expect(rows.nth(1).locator("td").first).to_have_text("2026-03-05 22:03")
        expect(rows.nth(1).locator("td").nth(5)).to_have_text("2026-03-05 22:03")
        rows.nth(1).locator("summary").click()
        expect(rows.nth(1).locator(".sent-body")).to_contain_text("care team has been alerted")
        screenshot(page, "sent-notifications")
        page.get_by_label("Site").fill("south")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("#page-message")).to_contain_text("site")
        assert [p for p in browser.problems if "403" not in p] == []


@pytest.mark.usefixtures("chromium")
def test_my_account_lists_my_channels_and_sends_a_test_to_the_smtp_sink(
        world: World, clean_db: str, tmp_path: Path, screenshot: Screenshots) -> None:
    """A person adds an e-mail channel on /account and presses "Send test": the platform's
    e-mail sender delivers it to a real SMTP server (the demo's sink)."""
    from playwright.sync_api import expect

    inbox = Inbox(inbox_path(tmp_path))
    smtp = SmtpSink(inbox)
    smtp.start()
    notify = NotifySettings(smtp_host=smtp.host, smtp_port=smtp.port)
    try:
        with running_server(create_app(clean_db, SECRET, notify_settings=notify)) as srv, \
                logged_in_page(DESK, f"{srv.url}/account", "duty-north") as browser:
            page = browser.page
            expect(page.locator("#channels-empty")).to_be_visible()
            page.get_by_label("E-mail address").fill("dora@care.example")
            page.get_by_role("button", name="Add e-mail").click()
            item = page.locator("#channels-list li")
            expect(item).to_have_count(1)
            expect(item).to_contain_text("E-mail dora@care.example")
            item.get_by_role("button", name="Send test").click()
            expect(item.locator(".channel-test-result")).to_have_text("Delivered.")
            screenshot(page, "account-channel-test")
            assert browser.problems == []
        [mail] = inbox.read()
        assert mail["rcpt_tos"] == ["dora@care.example"]
        assert mail["subject"] == "[Eldercare] Test message for duty-north"
    finally:
        smtp.stop()

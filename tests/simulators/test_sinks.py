"""The demo's notification sinks: the platform's own e-mail and robot senders deliver to them
over the real protocols (SMTP, the WeCom/DingTalk robot webhooks), and they keep what came."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from alerts.model import NotificationKind, Severity
from alerts.notify.channels.base import SendError
from alerts.notify.channels.mail import EmailSender
from alerts.notify.channels.robots import DingTalkSender, WeComSender
from alerts.notify.messages import Message
from alerts.notify.settings import NotifySettings
from simulators.sinks import (
    DINGTALK_PATH,
    WECOM_PATH,
    Inbox,
    SinkAddresses,
    SmtpSink,
    WebhookSink,
    inbox_path,
)

AT = datetime(2026, 7, 5, 14, 3, tzinfo=UTC)
MESSAGE = Message(kind=NotificationKind.ALERT, title="CRITICAL: SOS call - Margaret",
                  body="Margaret (12 Elm Road): SOS call, severity critical.",
                  link="/alerts/42", severity=Severity.CRITICAL, alert_id=42)


@pytest.fixture
def inbox(tmp_path):
    return Inbox(inbox_path(tmp_path), clock=lambda: AT)


@pytest.fixture
def smtp(inbox):
    sink = SmtpSink(inbox)
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def robots(inbox):
    sink = WebhookSink(inbox)
    sink.start()
    yield sink
    sink.stop()


def test_the_platforms_email_channel_delivers_to_the_smtp_sink(smtp, inbox):
    settings = NotifySettings(smtp_host=smtp.host, smtp_port=smtp.port,
                              smtp_from="eldercare@demo.example")
    EmailSender(settings).send("family01@family.example", {}, MESSAGE)
    [mail] = inbox.read()
    assert mail["channel"] == "email"
    assert mail["rcpt_tos"] == ["family01@family.example"]
    assert mail["mail_from"] == "eldercare@demo.example"
    assert mail["subject"] == "[Eldercare] CRITICAL: SOS call - Margaret"
    assert "Margaret (12 Elm Road): SOS call" in mail["text"]
    assert mail["message_id"] == f"<{MESSAGE.key()}@demo.example>"
    assert mail["received_at"] == AT.isoformat()


def test_wecom_and_dingtalk_senders_deliver_to_the_webhook_sink(robots, inbox):
    with httpx.Client() as client:
        WeComSender(client, robots.url + WECOM_PATH).send("riverside-group", {}, MESSAGE)
        DingTalkSender(client, robots.url + DINGTALK_PATH).send("hillview-group", {}, MESSAGE)
    wecom, dingtalk = inbox.read()
    assert (wecom["channel"], wecom["key"], wecom["msgtype"]) == ("wecom", "riverside-group",
                                                                  "text")
    assert (dingtalk["channel"], dingtalk["key"]) == ("dingtalk", "hillview-group")
    assert wecom["text"].startswith("[Eldercare] CRITICAL: SOS call - Margaret")


def test_webhook_sink_answers_like_the_robots(robots, inbox):
    with httpx.Client(base_url=robots.url) as client:
        ok = client.post(WECOM_PATH, params={"key": "k"},
                         json={"msgtype": "text", "text": {"content": "hi"}})
        no_key = client.post(WECOM_PATH, json={"msgtype": "text", "text": {"content": "hi"}})
        no_token = client.post(DINGTALK_PATH, json={"msgtype": "text",
                                                    "text": {"content": "hi"}})
        bad = client.post(DINGTALK_PATH, params={"access_token": "t"}, content=b"not json")
        listed = client.get("/inbox").json()
    assert ok.status_code == 200 and ok.json() == {"errcode": 0, "errmsg": "ok"}
    assert no_key.json()["errcode"] == 93000
    assert no_token.json()["errcode"] == 300001
    assert bad.json()["errcode"] == 40035
    assert [r["text"] for r in listed["received"]] == ["hi"]


def test_a_robot_error_code_reaches_the_sender_as_a_send_error(robots):
    with httpx.Client() as client, pytest.raises(SendError, match="errcode 93000"):
        WeComSender(client, robots.url + WECOM_PATH).send("", {}, MESSAGE)


def test_sink_addresses_point_the_notify_settings_at_the_sinks():
    env = SinkAddresses(smtp_port=2525, webhook_port=8089).notify_env()
    assert env["ELDERCARE_NOTIFY__SMTP_PORT"] == "2525"
    assert env["ELDERCARE_NOTIFY__WECOM_BASE_URL"] == (
        "http://127.0.0.1:8089/cgi-bin/webhook/send")
    assert env["ELDERCARE_NOTIFY__DINGTALK_BASE_URL"] == "http://127.0.0.1:8089/robot/send"
    assert env["ELDERCARE_NOTIFY__DEMO_INBOX_URL"] == "http://127.0.0.1:8089/inbox"

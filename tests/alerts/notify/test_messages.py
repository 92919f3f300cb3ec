"""Message wording: resident, address, alert type in words, severity, site-local time, link."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from alerts.model import (
    AlertStatus,
    AlertType,
    Audience,
    ChannelKind,
    NotificationKind,
    Outcome,
    Severity,
)
from alerts.notify.channels.mail import build_email
from alerts.notify.channels.robots import chat_text
from alerts.notify.channels.webpush import push_payload
from alerts.notify.messages import (
    BRAND,
    AlertInfo,
    Message,
    render_alert,
    render_clear,
    render_direct,
)
from alerts.notify.outbox import Languages
from alerts.notify.recipients import ChannelSpec
from dashboard.channels.personal import personal_test_message
from dashboard.ledger.channel_test import channel_test_message

OPENED = datetime(2026, 7, 5, 14, 3, tzinfo=UTC)


def info(**kw) -> AlertInfo:
    base = {"id": 42, "site_id": "north", "site_tz": "Europe/London", "resident_id": 7,
            "resident_name": "Margaret Smith", "address": "12 Elm Road", "type": "sos",
            "severity": Severity.CRITICAL, "status": AlertStatus.OPEN, "opened_at": OPENED}
    return AlertInfo(**{**base, **kw})


def test_alert_message_for_care_workers():
    msg = render_alert(info(), NotificationKind.ALERT, Audience.SITE_WORKERS)
    assert msg.title == "CRITICAL: SOS call (help button pressed) - Margaret Smith"
    # 14:03 UTC is 15:03 in London in July (BST)
    assert "Margaret Smith (12 Elm Road)" in msg.body
    assert "at 2026-07-05 15:03." in msg.body  # the site's zone, 24-hour (kernel.sites)
    assert "acknowledge" in msg.body
    assert msg.link == "/alerts/42"
    assert msg.data["type"] == "sos" and msg.data["alert_id"] == 42


def test_escalation_and_family_wording():
    esc = render_alert(info(), NotificationKind.ESCALATION, Audience.DUTY_OFFICERS)
    assert esc.title.startswith("Still open - ")
    assert "Nobody has acknowledged" in esc.body
    fam = render_alert(info(type="bed_exit_no_return", severity=Severity.HIGH),
                       NotificationKind.ESCALATION, Audience.FAMILY)
    assert "out of bed and not back" in fam.title
    assert "care team has been alerted" in fam.body


def test_all_clear_and_cancelled():
    done = render_clear(info(status=AlertStatus.RESOLVED, outcome="assisted_at_home",
                             finished_at=datetime(2026, 7, 5, 14, 20, tzinfo=UTC)))
    assert done.kind is NotificationKind.ALL_CLEAR
    assert done.title.startswith("All clear:")
    assert "closed at 2026-07-05 15:20" in done.body and "helped at home" in done.body
    cancelled = render_clear(info(status=AlertStatus.CANCELLED,
                                  outcome="cancelled_by_resident", finished_at=OPENED))
    assert cancelled.kind is NotificationKind.CANCELLED
    assert "No action is needed" in cancelled.body


def test_text_makes_link_absolute_when_public_url_known():
    msg = render_alert(info(), NotificationKind.ALERT, Audience.ASSIGNED)
    assert msg.text(None).endswith("Open: /alerts/42")
    assert msg.text("https://care.example.org").endswith(
        "Open: https://care.example.org/alerts/42")


def test_payload_round_trips_through_json():
    msg = render_alert(info(), NotificationKind.ALERT, Audience.ASSIGNED)
    assert Message.model_validate(msg.model_dump(mode="json")) == msg


def test_direct_message_without_database():
    msg = render_direct(site="north", resident_id=7, resident_name=None, alert_type="fall",
                        severity=Severity.CRITICAL, at=OPENED, tz_name="Asia/Shanghai",
                        alert_id=None)
    assert "resident #7" in msg.title and "possible fall" in msg.title
    assert "at 2026-07-05 22:03." in msg.body and "database is unavailable" in msg.body
    assert msg.link is None


def _every_template(lang: str) -> list[Message]:
    """Every notification template, rendered once each in `lang`."""
    finished = datetime(2026, 7, 5, 14, 20, tzinfo=UTC)
    return [
        render_alert(info(), NotificationKind.ALERT, Audience.SITE_WORKERS, lang=lang),
        render_alert(info(), NotificationKind.ESCALATION, Audience.DUTY_OFFICERS, lang=lang),
        render_alert(info(), NotificationKind.ALERT, Audience.FAMILY, lang=lang),
        render_clear(info(status=AlertStatus.RESOLVED, outcome="assisted_at_home",
                          finished_at=finished), lang=lang),
        render_clear(info(status=AlertStatus.RESOLVED, outcome=None, finished_at=finished),
                     lang=lang),
        render_clear(info(status=AlertStatus.CANCELLED, outcome="cancelled_by_resident",
                          finished_at=OPENED), lang=lang),
        render_direct(site="north", resident_id=7, resident_name=None, alert_type="fall",
                      severity=Severity.CRITICAL, at=OPENED, tz_name="Europe/London",
                      alert_id=None, lang=lang),
    ]


def test_every_template_renders_in_english_with_no_placeholder_left():
    for msg in _every_template("en"):
        assert "{" not in msg.title + msg.body and "}" not in msg.title + msg.body
        assert msg.title and msg.body
    alert, escalation, family, clear, plain_clear, cancelled, direct = _every_template("en")
    assert "at 2026-07-05 15:03." in alert.body
    assert escalation.title.startswith("Still open - CRITICAL:")
    assert "care team has been alerted" in family.body
    assert clear.body.endswith(": helped at home.") and plain_clear.body.endswith(": resolved.")
    assert cancelled.body.startswith("Margaret Smith (12 Elm Road) cancelled the")
    assert direct.title == "CRITICAL: possible fall - resident #7"


def test_a_language_without_a_catalog_falls_back_to_english():
    def words(lang: str) -> list[dict]:  # the message, without the language it was asked in
        return [m.model_dump(exclude={"lang"}) for m in _every_template(lang)]
    assert words("xx-TEST") == words("en")


# --- every notification in both languages ------------------------------------------------

# What a Chinese notification may contain in Latin letters: data (the resident, the address,
# the site id, links and references) is removed before checking; these terms stay as they are.
ALLOWED_LATIN = {"SOS", BRAND}
ZH_DATA = {"resident_name": "王秀英", "address": "幸福路 12 号"}


def _latin_words(text: str, data: tuple[str, ...]) -> set[str]:
    for value in data:
        text = text.replace(value, "")
    text = re.sub(r"https?://\S+|/alerts/\d+|[0-9a-f]{8}$", "", text, flags=re.M)
    return {w for w in re.findall(r"[A-Za-z][A-Za-z'-]+", text) if w not in ALLOWED_LATIN}


def _every_notification(lang: str) -> list[Message]:
    """Every template (each alert type, severity and outcome at least once), plus the test
    messages of personal and group channels, in `lang`."""
    facts = ZH_DATA if lang == "zh-CN" else {}
    finished = datetime(2026, 7, 5, 14, 20, tzinfo=UTC)
    messages = list(_every_template(lang))
    messages += [render_alert(info(type=kind.value, severity=severity, **facts),
                              NotificationKind.ALERT, Audience.SITE_WORKERS, lang=lang)
                 for kind in AlertType for severity in Severity]
    messages += [render_alert(info(**facts), kind, audience, lang=lang)
                 for kind in (NotificationKind.ALERT, NotificationKind.ESCALATION)
                 for audience in Audience]
    messages += [render_clear(info(status=AlertStatus.RESOLVED, outcome=outcome.value,
                                   finished_at=finished, **facts), lang=lang)
                 for outcome in Outcome]
    messages.append(personal_test_message("wang.li", lang))
    messages.append(channel_test_message("north", "wang.li", lang))
    return messages


def _delivered_texts(message: Message) -> list[str]:
    """What each channel puts in front of a person: push, e-mail subject and body, WeCom and
    DingTalk chat text (the same robot text)."""
    mail = build_email(message, "Eldercare <alerts@example.org>", "family@example.org",
                       "https://care.example.org")
    push = json.loads(push_payload(message, "https://care.example.org"))
    return [push["title"], push["body"], str(mail["Subject"]), mail.get_content(),
            chat_text(message, "https://care.example.org")]


def test_every_notification_renders_in_english_and_chinese():
    english, chinese = _every_notification("en"), _every_notification("zh-CN")
    assert len(english) == len(chinese)
    for msg in english:
        for text in _delivered_texts(msg):
            assert "{" not in text and "}" not in text, text
    data = ("Margaret Smith", "12 Elm Road", "north", "wang.li", *ZH_DATA.values())
    for msg in chinese:
        for text in _delivered_texts(msg):
            assert "{" not in text and "}" not in text, text
            assert re.search(r"[\u4e00-\u9fff]", text), text
            assert _latin_words(text, data) == set(), text


def test_chinese_notifications_read_as_a_chinese_duty_centre_writes_them():
    alert, escalation, family, clear, _plain_clear, cancelled, direct = _every_template("zh-CN")
    assert cancelled.body.endswith("无需任何操作。")
    assert alert.title == "危急：SOS 呼叫（按下了呼叫按钮） - Margaret Smith"
    assert "时间：2026-07-05 15:03。请打开告警并确认。" in alert.body
    assert escalation.title.startswith("仍未处理 - 危急：")
    assert family.body.endswith("已通知护理团队。处理完毕后我们会告诉您。")
    assert clear.body.endswith("关闭：已上门协助。")
    assert direct.title == "危急：疑似跌倒 - 长者 #7"
    assert alert.text("https://care.example.org").endswith(
        "打开：https://care.example.org/alerts/42")
    assert chat_text(alert, None).splitlines()[-1].startswith("编号：")


def test_personal_channels_follow_their_person_and_group_channels_their_site():
    languages = Languages(people={7: "zh-CN", 8: "en"}, sites={"north": "zh-CN"})

    def channel(user_id: int | None, site: str | None) -> ChannelSpec:
        return ChannelSpec(id=1, kind=ChannelKind.WECOM, target="k", user_id=user_id,
                           site_id=site)

    assert languages.of(channel(7, None)) == "zh-CN"
    assert languages.of(channel(8, None)) == "en"
    assert languages.of(channel(9, None)) == "en"  # unknown person: the default
    assert languages.of(channel(None, "north")) == "zh-CN"  # a group: its site's language
    assert languages.of(channel(None, "south")) == "en"  # a site without a row: English
    assert languages.of(channel(8, "north")) == "en"  # a person's channel: never the site's


def test_an_english_message_keeps_its_key_whatever_its_language_field():
    msg = render_alert(info(), NotificationKind.ALERT, Audience.ASSIGNED)
    assert '"lang"' not in msg.model_dump_json(exclude={"idempotency_key", "lang"})
    assert msg.key() != render_alert(info(), NotificationKind.ALERT, Audience.ASSIGNED,
                                     lang="zh-CN").key()

"""Message wording: resident, address, alert type in words, severity, site-local time, link."""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.model import AlertStatus, Audience, NotificationKind, Severity
from alerts.notify.messages import AlertInfo, Message, render_alert, render_clear, render_direct

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
    assert "at 15:03 on Sun 5 Jul (Europe/London)" in msg.body
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
    assert "closed at 15:20" in done.body and "helped at home" in done.body
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
    assert "22:03" in msg.body and "database is unavailable" in msg.body
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
    assert "at 15:03 on Sun 5 Jul (Europe/London)" in alert.body
    assert escalation.title.startswith("Still open - CRITICAL:")
    assert "care team has been alerted" in family.body
    assert clear.body.endswith(": helped at home.") and plain_clear.body.endswith(": resolved.")
    assert cancelled.body.startswith("Margaret Smith (12 Elm Road) cancelled the")
    assert direct.title == "CRITICAL: possible fall - resident #7"


def test_a_language_without_a_catalog_falls_back_to_english():
    assert _every_template("xx-TEST") == _every_template("en")

"""Queueing: idempotent enqueue, minimum severity, quiet hours, all-clears and commands."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from alerts.model import Audience, NotificationKind
from alerts.notify.outbox import (
    enqueue_alert_notifications,
    enqueue_all_clears,
    enqueue_command,
)
from kernel import db
from tests.alerts.notify.seed import (
    World,
    add_alert,
    add_channel,
    add_user,
    finish_alert,
    outbox,
    sql,
)

NIGHT = (time(22, 0), time(7, 0))
LATE = datetime(2026, 3, 5, 23, 30, tzinfo=UTC)
NEXT_MORNING = datetime(2026, 3, 6, 7, 0, tzinfo=UTC)


def enqueue(world: World, alert_id: int, audience: Audience, step: int = 1,
            kind: NotificationKind = NotificationKind.ESCALATION,
            now: datetime | None = None) -> int:
    with db.connect(world.url) as conn:
        n = enqueue_alert_notifications(conn, alert_id, audience, kind, step, now=now)
        conn.commit()
    return n


def all_clears(world: World, now: datetime | None = None) -> int:
    with db.connect(world.url) as conn:
        n = enqueue_all_clears(conn, now or datetime.now(UTC))
        conn.commit()
    return n


def mark_sent(world: World, where: str = "true") -> None:
    sql(world.url, f"UPDATE notification_outbox SET status = 'sent', attempts = 1 WHERE {where}")


def test_enqueue_is_idempotent_per_step_and_channel(world):
    worker = add_user(world, "w", "care_worker", on_duty=True)
    ch1 = add_channel(world, "email", "w@example.org", user_id=worker)
    ch2 = add_channel(world, "webhook", "http://127.0.0.1:9/w", user_id=worker)
    alert = add_alert(world)
    assert enqueue(world, alert, Audience.SITE_WORKERS) == 2
    assert enqueue(world, alert, Audience.SITE_WORKERS) == 0
    rows = outbox(world.url)
    assert len(rows) == 2
    assert {r["dedup_key"] for r in rows} == {f"alert:{alert}:step:1:channel:{ch1}",
                                              f"alert:{alert}:step:1:channel:{ch2}"}
    row = rows[0]
    assert (row["kind"], row["channel"], row["user_id"], row["target"]) == (
        "escalation", "email", worker, "w@example.org")
    assert row["payload"]["title"].startswith("Still open - CRITICAL: SOS call")
    assert row["payload"]["link"] == f"/alerts/{alert}"
    # a later step is a new notification
    assert enqueue(world, alert, Audience.SITE_WORKERS, step=2) == 2


def test_enqueue_inside_callers_transaction_rolls_back_with_it(world):
    worker = add_user(world, "w", "care_worker", on_duty=True)
    add_channel(world, "email", "w@example.org", user_id=worker)
    alert = add_alert(world)
    with db.connect(world.url) as conn:
        assert enqueue_alert_notifications(conn, alert, Audience.SITE_WORKERS,
                                           NotificationKind.ESCALATION, 1) == 1
        conn.rollback()
    assert outbox(world.url) == []


def test_min_severity_respected(world):
    son = add_user(world, "son", "family", family_of=world.resident)
    add_channel(world, "email", "son@example.org", user_id=son, min_severity="urgent")
    high = add_alert(world, type_="not_up", severity="high")
    assert enqueue(world, high, Audience.FAMILY) == 0
    sql(world.url, "UPDATE alerts SET status = 'resolved' WHERE id = %s", high)
    critical = add_alert(world, type_="fall", severity="critical")
    assert enqueue(world, critical, Audience.FAMILY) == 1


def test_quiet_hours_defer_non_critical_to_their_end(world):
    son = add_user(world, "son", "family", family_of=world.resident)
    add_channel(world, "email", "son@example.org", user_id=son, quiet=NIGHT)
    alert = add_alert(world, type_="not_up", severity="high")
    assert enqueue(world, alert, Audience.FAMILY, now=LATE) == 1
    assert outbox(world.url)[0]["not_before"] == NEXT_MORNING


def test_critical_ignores_quiet_hours(world):
    son = add_user(world, "son", "family", family_of=world.resident)
    add_channel(world, "email", "son@example.org", user_id=son, quiet=NIGHT)
    alert = add_alert(world, type_="sos", severity="critical")
    assert enqueue(world, alert, Audience.FAMILY, now=LATE) == 1
    assert outbox(world.url)[0]["not_before"] == LATE


def test_nothing_queued_for_a_finished_alert(world):
    worker = add_user(world, "w", "care_worker", on_duty=True)
    add_channel(world, "email", "w@example.org", user_id=worker)
    alert = add_alert(world)
    finish_alert(world, alert)
    assert enqueue(world, alert, Audience.SITE_WORKERS) == 0
    assert enqueue(world, 999_999, Audience.SITE_WORKERS) == 0


def test_worker_without_channel_is_logged(world, caplog):
    add_user(world, "mute", "care_worker", on_duty=True)
    alert = add_alert(world)
    assert enqueue(world, alert, Audience.SITE_WORKERS) == 0
    assert "no active notification channel" in caplog.text


def test_family_all_clear_only_to_those_told(world):
    told = add_user(world, "told", "family", family_of=world.resident)
    later = add_user(world, "later", "family", family_of=world.resident)
    ch_told = add_channel(world, "email", "told@example.org", user_id=told)
    alert = add_alert(world)
    enqueue(world, alert, Audience.FAMILY)
    mark_sent(world)
    # a channel added after the notification went out is not "told"
    add_channel(world, "email", "later@example.org", user_id=later)
    finish_alert(world, alert)
    assert all_clears(world) == 1
    assert all_clears(world) == 0  # idempotent
    clear = outbox(world.url, "kind = 'all_clear'")
    assert [c["channel_id"] for c in clear] == [ch_told]
    assert clear[0]["dedup_key"] == f"alert:{alert}:clear:channel:{ch_told}"
    assert clear[0]["payload"]["title"].startswith("All clear:")
    assert "helped at home" in clear[0]["payload"]["body"]


def test_one_clear_per_channel_even_after_several_steps(world):
    officer = add_user(world, "o", "duty_officer")
    add_channel(world, "email", "o@example.org", user_id=officer)
    alert = add_alert(world)
    enqueue(world, alert, Audience.DUTY_OFFICERS, step=1)
    enqueue(world, alert, Audience.DUTY_OFFICERS, step=2)
    mark_sent(world)
    finish_alert(world, alert)
    assert all_clears(world) == 1


def test_cancelled_by_resident_sends_cancelled(world):
    worker = add_user(world, "w", "care_worker", on_duty=True)
    add_channel(world, "email", "w@example.org", user_id=worker)
    alert = add_alert(world)
    enqueue(world, alert, Audience.SITE_WORKERS)
    mark_sent(world)
    finish_alert(world, alert, cancelled=True)
    assert all_clears(world) == 1
    row = outbox(world.url, "kind = 'cancelled'")[0]
    assert "cancelled the SOS call" in row["payload"]["body"]


def test_unsent_originals_are_skipped_and_get_no_clear(world):
    son = add_user(world, "son", "family", family_of=world.resident)
    add_channel(world, "email", "son@example.org", user_id=son, quiet=NIGHT)
    alert = add_alert(world, type_="not_up", severity="high")
    enqueue(world, alert, Audience.FAMILY, now=LATE)  # deferred to the morning
    finish_alert(world, alert)
    assert all_clears(world) == 0
    assert outbox(world.url)[0]["status"] == "skipped"


def test_clear_waits_for_an_original_still_being_retried(world):
    worker = add_user(world, "w", "care_worker", on_duty=True)
    ch_a = add_channel(world, "email", "a@example.org", user_id=worker)
    add_channel(world, "email", "b@example.org", user_id=worker)
    alert = add_alert(world)
    enqueue(world, alert, Audience.SITE_WORKERS)
    mark_sent(world, f"channel_id = {ch_a}")
    sql(world.url, "UPDATE notification_outbox SET attempts = 1 WHERE status = 'pending'")
    finish_alert(world, alert)
    assert all_clears(world) == 1  # only the channel whose alert went out
    mark_sent(world, "status = 'pending'")
    assert all_clears(world) == 1


def test_all_clear_follows_quiet_hours_of_the_alert_severity(world):
    son = add_user(world, "son", "family", family_of=world.resident)
    add_channel(world, "email", "son@example.org", user_id=son, quiet=NIGHT)
    high = add_alert(world, type_="not_up", severity="high")
    sos = add_alert(world, type_="sos", severity="critical")
    enqueue(world, high, Audience.FAMILY)
    enqueue(world, sos, Audience.FAMILY)
    mark_sent(world)
    finish_alert(world, high, at=LATE - timedelta(minutes=5))
    finish_alert(world, sos, at=LATE - timedelta(minutes=5))
    assert all_clears(world, now=LATE) == 2
    by_alert = {r["alert_id"]: r for r in outbox(world.url, "kind = 'all_clear'")}
    assert by_alert[high]["not_before"] == NEXT_MORNING
    assert by_alert[sos]["not_before"] == LATE


def test_enqueue_command(world):
    alert = add_alert(world)
    topic = "eldercare/v1/north/btn-1/cmd"
    payload = {"type": "sos_ack", "ts": 1_700_000_000_000, "alert_id": alert}
    with db.connect(world.url) as conn:
        assert enqueue_command(conn, alert, topic, payload, f"alert:{alert}:sos_ack")
        assert not enqueue_command(conn, alert, topic, payload, f"alert:{alert}:sos_ack")
        conn.commit()
    row = outbox(world.url)[0]
    assert (row["kind"], row["channel"], row["target"], row["payload"]) == (
        "command", "mqtt", topic, payload)


def test_each_recipient_is_written_to_in_their_language(world):
    """users.language reaches the templates; a language without a catalog reads English."""
    fam = add_user(world, "fam", "family", family_of=world.resident)
    sql(world.url, f"UPDATE users SET language = 'xx-TEST' WHERE id = {fam}")
    add_channel(world, "email", "fam@example.org", user_id=fam)
    alert = add_alert(world)
    assert enqueue(world, alert, Audience.FAMILY) == 1
    [row] = outbox(world.url)
    assert "care team has been alerted" in row["payload"]["body"]
    mark_sent(world)
    finish_alert(world, alert)
    assert all_clears(world) == 1
    assert outbox(world.url, "kind = 'all_clear'")[0]["payload"]["title"].startswith("All clear:")


def test_group_channels_are_written_to_in_their_sites_language(world):
    """A site's group robot has no person to ask: it reads the site's language (sites.language),
    its alert and its all-clear alike, while a family member keeps their own (English)."""
    sql(world.url, "UPDATE sites SET language = 'zh-CN' WHERE id = %s", world.site)
    robot = add_channel(world, "wecom", "robot-key", site=True)
    fam = add_user(world, "fam", "family", family_of=world.resident)
    sql(world.url, "UPDATE users SET language = 'en' WHERE id = %s", fam)
    mail = add_channel(world, "email", "fam@example.org", user_id=fam)
    alert = add_alert(world)
    assert enqueue(world, alert, Audience.SITE_GROUP, kind=NotificationKind.ALERT) == 1
    assert enqueue(world, alert, Audience.FAMILY, kind=NotificationKind.ALERT) == 1
    [group] = outbox(world.url, "channel_id = %s", robot)
    [family] = outbox(world.url, "channel_id = %s", mail)
    assert group["payload"]["lang"] == "zh-CN"
    assert group["payload"]["title"].startswith("危急：SOS 呼叫"), group["payload"]["title"]
    assert family["payload"]["lang"] == "en"
    assert "care team has been alerted" in family["payload"]["body"]
    # an escalation to the group is in the site's language too
    assert enqueue(world, alert, Audience.SITE_GROUP, step=2) == 1
    [escalation] = outbox(world.url, "channel_id = %s AND kind = 'escalation'", robot)
    assert escalation["payload"]["title"].startswith("仍未处理 - 危急："), escalation["payload"]
    mark_sent(world)
    finish_alert(world, alert)
    assert all_clears(world) == 2
    [group_clear] = outbox(world.url, "channel_id = %s AND kind = 'all_clear'", robot)
    [family_clear] = outbox(world.url, "channel_id = %s AND kind = 'all_clear'", mail)
    assert group_clear["payload"]["lang"] == "zh-CN"
    assert re.search(r"[\u4e00-\u9fff]", group_clear["payload"]["title"]), group_clear["payload"]
    assert family_clear["payload"]["title"].startswith("All clear:")


def test_group_channels_of_an_english_site_stay_english(world):
    robot = add_channel(world, "dingtalk", "robot-key", site=True)
    alert = add_alert(world)
    assert enqueue(world, alert, Audience.SITE_GROUP, kind=NotificationKind.ALERT) == 1
    [row] = outbox(world.url, "channel_id = %s", robot)
    assert row["payload"]["title"].startswith("CRITICAL: SOS call")

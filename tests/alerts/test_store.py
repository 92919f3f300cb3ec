"""Alert store on the real database: one open alert per incident, redelivery is harmless,
severity upgrades, refractory suppression, assignment, resident cancel and condition cleared."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest

from alerts.config import AlertSettings
from alerts.model import (
    AlertClear,
    AlertStatus,
    AlertType,
    Audience,
    Severity,
)
from alerts.store import StoredAlert, store_clear, store_trigger
from kernel import db
from tests.support.alerts import (
    NOW,
    SETTINGS,
    T0,
    actions,
    add_user,
    alert,
    history,
    opened,
    s,
    steps,
    store,
    store_cancel_now,
    trigger,
)
from tests.support.database import count
from tests.support.database import execute as sql
from tests.support.homes import add_home
from tests.support.wait import wait_until


def test_repeat_attaches_and_redelivery_is_ignored(clean_db):
    home = add_home(clean_db)
    first = opened(clean_db, trigger(home, seq=1))
    assert first.uid is not None
    assert store(clean_db, trigger(home, seq=1)) is None  # redelivered while open
    repeat = store(clean_db, trigger(home, seq=2, at=T0 + s(20)))
    assert store(clean_db, trigger(home, seq=2, at=T0 + s(20))) is None  # redelivered repeat
    assert store(clean_db, trigger(home, seq=3, at=T0 + s(5))) is None  # stale, out of order
    assert repeat == StoredAlert(first.alert_id, False, first.uid, AlertStatus.OPEN,
                                 Severity.CRITICAL, count=2)
    row = alert(clean_db, first.alert_id)
    assert (row["count"], row["last_seen"], row["opened_at"]) == (2, T0 + s(20), T0)
    assert str(row["uid"]) == first.uid
    assert count(clean_db, "SELECT count(*) FROM alerts") == 1
    assert actions(clean_db, first.alert_id) == ["opened", "unassigned", "repeated"]


def test_new_alert_after_resolution_and_old_redelivery_ignored(clean_db):
    home = add_home(clean_db)
    first = opened(clean_db, trigger(home, seq=1))
    sql(clean_db, "UPDATE alerts SET status='resolved', resolved_at=%s WHERE id=%s",
        T0 + s(60), first.alert_id)
    assert store(clean_db, trigger(home, seq=1)) is None  # source dedup index
    later = opened(clean_db, trigger(home, seq=9, at=T0 + timedelta(hours=1)))
    assert later.alert_id != first.alert_id and later.uid != first.uid


def test_concurrent_open_attaches_to_the_winner(clean_db):
    """A writer that loses the race to open the alert attaches its trigger as a repeat."""
    home = add_home(clean_db)
    results: list[StoredAlert | None] = []
    worker = threading.Thread(target=lambda: results.append(
        store(clean_db, trigger(home, seq=2, at=T0 + s(1)))))
    with db.connect(clean_db, autocommit=True) as first, first.transaction():
        # the first writer's new alert stays uncommitted until the second one waits for it
        assert store_trigger(first, trigger(home, seq=1), SETTINGS, NOW) is not None
        worker.start()
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM pg_locks WHERE NOT granted"),
                   what="second writer blocked on the open alert")
    worker.join(10)
    assert len(results) == 1 and results[0] is not None and not results[0].created
    assert count(clean_db, "SELECT count(*) FROM alerts") == 1
    assert count(clean_db, "SELECT count FROM alerts") == 2


# --- severity upgrade -------------------------------------------------------------------------

def test_severity_upgrade_keeps_the_louder_and_replans_pending_steps(clean_db):
    home = add_home(clean_db)
    add_user(clean_db, "anna")
    first = opened(clean_db, trigger(home, "heart_rate_high", "warning", device=home.bed))
    assert [(r[0], r[1], r[2]) for r in steps(clean_db, first.alert_id)] == [
        (0, "assigned", NOW), (1, "site_workers", NOW + s(1800)),
        (2, "duty_officers", NOW + s(3600))]
    # step 0 went out; site workers were told (as if the tick ran at +1800 s)
    sql(clean_db, "UPDATE alert_escalations SET done_at=%s WHERE alert_id=%s AND step <= 1",
        NOW + s(1800), first.alert_id)
    up_at = NOW + s(2000)
    up = store(clean_db, trigger(home, "heart_rate_high", "urgent", at=T0 + s(2000),
                                 device=home.bed), now=up_at)
    assert up is not None and up.upgraded and up.severity is Severity.URGENT and up.count == 2
    assert alert(clean_db, first.alert_id)["severity"] == "urgent"
    # duty officers and family from the upgrade time; site workers are not told twice
    assert [(r[0], r[1], r[2], r[3] is not None) for r in steps(clean_db, first.alert_id)] == [
        (0, "assigned", NOW, True), (1, "site_workers", NOW + s(1800), True),
        (2, "duty_officers", up_at + s(600), False), (3, "family", up_at + s(1200), False)]
    assert actions(clean_db, first.alert_id)[-2:] == ["repeated", "escalated severity"]
    assert history(clean_db, first.alert_id)[-1][5] == "warning -> urgent"
    # a quieter repeat does not lower it
    quiet = store(clean_db, trigger(home, "heart_rate_high", "warning", at=T0 + s(2100),
                                    device=home.bed))
    assert quiet is not None and quiet.severity is Severity.URGENT and not quiet.upgraded
    assert alert(clean_db, first.alert_id)["severity"] == "urgent"


def test_upgrade_of_an_acknowledged_alert_plans_nothing(clean_db):
    home = add_home(clean_db)
    first = opened(clean_db, trigger(home, "bed_exit_no_return", "high", device=home.bed))
    sql(clean_db, "UPDATE alerts SET status='acknowledged' WHERE id=%s", first.alert_id)
    sql(clean_db, "UPDATE alert_escalations SET done_at=%s, skipped=true WHERE alert_id=%s",
        NOW, first.alert_id)
    up = store(clean_db, trigger(home, "bed_exit_no_return", "critical", at=T0 + s(60),
                                 device=home.bed))
    assert up is not None and up.upgraded and up.status is AlertStatus.ACKNOWLEDGED
    assert all(r[4] for r in steps(clean_db, first.alert_id))  # all skipped, none new


# --- refractory -------------------------------------------------------------------------------

def test_refractory_suppresses_then_reopens(clean_db):
    home = add_home(clean_db)
    first = opened(clean_db, trigger(home, "heart_rate_high", "urgent", device=home.bed),
                   now=T0)  # live: stored at its event time
    resolved_at = T0 + timedelta(minutes=10)
    sql(clean_db, "UPDATE alerts SET status='resolved', resolved_at=%s WHERE id=%s",
        resolved_at, first.alert_id)
    again = trigger(home, "heart_rate_high", "urgent", at=resolved_at + s(1799), device=home.bed)
    sup = store(clean_db, again)
    assert sup == StoredAlert(first.alert_id, False, first.uid, AlertStatus.RESOLVED,
                              Severity.URGENT, suppressed=True)
    assert store(clean_db, again) is None  # the same trigger again: nothing new
    assert actions(clean_db, first.alert_id)[-1] == "suppressed (refractory)"
    assert actions(clean_db, first.alert_id).count("suppressed (refractory)") == 1
    assert "1800 s refractory" in history(clean_db, first.alert_id)[-1][5]
    assert count(clean_db, "SELECT count(*) FROM alerts") == 1
    after = opened(clean_db, trigger(home, "heart_rate_high", "urgent",
                                     at=resolved_at + s(1801), device=home.bed))
    assert after.alert_id != first.alert_id


def test_refractory_is_on_event_time_in_a_replay(clean_db):
    """Old events replayed months later (or a device's backlog): staff resolve the alert at
    wall time W; incidents later in event time from the same replay still alert."""
    home = add_home(clean_db)
    wall = T0 + timedelta(days=200)
    first = opened(clean_db, trigger(home, "bed_exit_no_return", "high", device=home.bed),
                   now=wall)
    sql(clean_db, "UPDATE alerts SET status='resolved', resolved_at=%s WHERE id=%s",
        wall + s(30), first.alert_id)
    assert alert(clean_db, first.alert_id)["finished_event_at"] == T0 + s(30)
    within = store(clean_db, trigger(home, "bed_exit_no_return", "high", at=T0 + s(600),
                                     device=home.bed), now=wall + s(40))
    assert within is not None and within.suppressed
    later = store(clean_db, trigger(home, "bed_exit_no_return", "high",
                                    at=T0 + timedelta(hours=3), device=home.bed),
                  now=wall + s(41))
    assert later is not None and later.created and not later.suppressed


def test_sos_has_no_refractory_but_cancelled_alerts_count_when_configured(clean_db):
    home = add_home(clean_db)
    first = opened(clean_db, trigger(home, seq=1))
    assert store_cancel_now(clean_db, home, T0 + s(5)) == first.alert_id
    assert opened(clean_db, trigger(home, seq=2, at=T0 + s(10))).alert_id != first.alert_id
    sql(clean_db, "UPDATE alerts SET status='resolved', resolved_at=%s WHERE status='open'",
        T0 + s(11))
    strict = AlertSettings(refractory_s={AlertType.SOS: 60})
    sup = store(clean_db, trigger(home, seq=3, at=T0 + s(20)), settings=strict)
    assert sup is not None and sup.suppressed


# --- assignment -------------------------------------------------------------------------------

def test_assignment_least_active_first_ties_to_lowest_id(clean_db):
    homes = [add_home(clean_db, name=f"R{i}", suffix=str(i)) for i in range(4)]
    add_home(clean_db, site="south", name="S", suffix="s")
    anna, bert = add_user(clean_db, "anna"), add_user(clean_db, "bert")
    add_user(clean_db, "carl", on_duty=False)
    add_user(clean_db, "dora", active=False)
    add_user(clean_db, "emil", site="south")
    add_user(clean_db, "fay", role="duty_officer")
    ids = [opened(clean_db, trigger(homes[i])) for i in range(3)]
    assert [a.assigned_to for a in ids] == [anna, bert, anna]  # 0-0 tie, 1-0, 1-1 tie
    sql(clean_db, "UPDATE alerts SET status='acknowledged' WHERE id=%s", ids[0].alert_id)
    sql(clean_db, "UPDATE alerts SET status='resolved' WHERE id=%s", ids[1].alert_id)
    fourth = opened(clean_db, trigger(homes[3]))
    assert fourth.assigned_to == bert  # anna: 2 active (one acknowledged), bert: 0
    row = alert(clean_db, fourth.alert_id)
    assert (row["assigned_to"], row["assigned_at"]) == (bert, NOW)
    assert history(clean_db, fourth.alert_id)[1][:2] == ("assigned", "open")
    assert "bert" in history(clean_db, fourth.alert_id)[1][5]
    assert steps(clean_db, fourth.alert_id)[0][:3] == (0, "assigned", NOW)


def test_unassigned_when_nobody_is_on_duty(clean_db):
    home = add_home(clean_db)
    add_user(clean_db, "carl", on_duty=False)
    result = opened(clean_db, trigger(home))
    assert result.assigned_to is None
    assert alert(clean_db, result.alert_id)["assigned_to"] is None
    h = history(clean_db, result.alert_id)
    assert [x[0] for x in h] == ["opened", "unassigned"]
    assert "no care worker on duty" in h[1][5]
    # critical with nobody assigned: the duty officers hear of it at once (step 0)
    assert [(r[0], r[1]) for r in steps(clean_db, result.alert_id)] == [
        (0, Audience.DUTY_OFFICERS), (1, Audience.SITE_WORKERS), (2, Audience.DUTY_OFFICERS),
        (3, Audience.FAMILY)]


# --- resident cancel --------------------------------------------------------------------------

def test_cancel_within_window(clean_db):
    home = add_home(clean_db)
    add_user(clean_db, "anna")
    first = opened(clean_db, trigger(home))
    assert store_cancel_now(clean_db, home, T0 + s(30)) == first.alert_id
    row = alert(clean_db, first.alert_id)
    assert (row["status"], row["outcome"], row["cancelled_at"]) == (
        "cancelled", "cancelled_by_resident", T0 + s(30))
    assert all(r[3] == NOW and r[4] for r in steps(clean_db, first.alert_id))
    last = history(clean_db, first.alert_id)[-1]
    assert last[:4] == ("cancelled by resident", "cancelled", "resident", None)
    assert store_cancel_now(clean_db, home, T0 + s(30)) is None  # redelivered: no-op
    assert len(history(clean_db, first.alert_id)) == 3


def test_cancel_after_window_only_notes_it(clean_db):
    home = add_home(clean_db)
    first = opened(clean_db, trigger(home))
    assert store_cancel_now(clean_db, home, T0 + s(45)) is None
    assert store_cancel_now(clean_db, home, T0 + s(45)) is None  # redelivered
    assert alert(clean_db, first.alert_id)["status"] == "open"
    notes = [h for h in history(clean_db, first.alert_id) if h[0] == "cancel ignored"]
    assert len(notes) == 1
    assert notes[0][5] == "resident pressed cancel 45 s after the alarm; alert stays open"
    assert not any(r[4] for r in steps(clean_db, first.alert_id))


def test_cancel_after_acknowledgement_does_not_cancel(clean_db):
    home = add_home(clean_db)
    first = opened(clean_db, trigger(home))
    sql(clean_db, "UPDATE alerts SET status='acknowledged' WHERE id=%s", first.alert_id)
    assert store_cancel_now(clean_db, home, T0 + s(10)) is None
    assert alert(clean_db, first.alert_id)["status"] == "acknowledged"
    last = history(clean_db, first.alert_id)[-1]
    assert last[:2] == ("cancel ignored", "acknowledged")
    assert "already acknowledged" in last[5]


def test_cancel_needs_an_open_alert_from_the_same_device(clean_db):
    home = add_home(clean_db)
    assert store_cancel_now(clean_db, home, T0) is None
    first = opened(clean_db, trigger(home))
    assert store_cancel_now(clean_db, home, T0 + s(5), device=home.bed) is None
    other = opened(clean_db, trigger(home, "bed_exit_no_return", "high", device=home.button))
    assert store_cancel_now(clean_db, home, T0 + s(5)) == first.alert_id
    assert alert(clean_db, other.alert_id)["status"] == "open"


# --- condition cleared ------------------------------------------------------------------------

def test_clear_marks_the_condition_but_does_not_resolve(clean_db):
    home = add_home(clean_db)
    first = opened(clean_db, trigger(home, "heart_rate_high", "urgent", device=home.bed))
    clear = AlertClear(home.resident_id, home.site, "heart_rate_high", T0 + s(600))
    with db.connect(clean_db, autocommit=True) as conn:
        assert store_clear(conn, clear, NOW) == first.alert_id
        assert store_clear(conn, clear, NOW) is None  # already cleared
        assert store_clear(conn, AlertClear(home.resident_id, home.site, "apnea", T0),
                           NOW) is None
    row = alert(clean_db, first.alert_id)
    assert (row["status"], row["cleared_at"]) == ("open", T0 + s(600))
    assert history(clean_db, first.alert_id)[-1][:2] == ("condition cleared", "open")
    back = store(clean_db, trigger(home, "heart_rate_high", "urgent", at=T0 + s(900),
                                   device=home.bed))
    assert back is not None and back.alert_id == first.alert_id
    assert alert(clean_db, first.alert_id)["cleared_at"] is None
    assert history(clean_db, first.alert_id)[-1][5].endswith("condition back")


# --- history ----------------------------------------------------------------------------------

def test_history_is_append_only(clean_db):
    home = add_home(clean_db)
    first = opened(clean_db, trigger(home))
    with db.connect(clean_db, autocommit=True) as conn:
        for statement in ("UPDATE alert_history SET note = 'x' WHERE alert_id = %s",
                          "DELETE FROM alert_history WHERE alert_id = %s"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement, (first.alert_id,))
    assert all(h[2] == "system" and h[4] == NOW for h in history(clean_db, first.alert_id))


def test_assignment_follows_the_roster_at_the_event_time(clean_db):
    """A care worker rostered at the trigger's (event) time is assigned; one whose shift is
    over is not; the OFF override beats the roster (kernel.roster)."""
    home = add_home(clean_db)  # site "north", UTC
    carl = add_user(clean_db, "carl", on_duty=False)
    gina = add_user(clean_db, "gina", on_duty=False)
    local = T0.replace(tzinfo=None)
    sql(clean_db, "INSERT INTO shifts (site_id, user_id, starts_local, ends_local) VALUES "
        "('north', %s, %s, %s), ('north', %s, %s, %s)",
        carl, local - timedelta(hours=1), local + timedelta(hours=1),
        gina, local - timedelta(hours=3), local - timedelta(hours=1))
    first = opened(clean_db, trigger(home))
    assert first.assigned_to == carl
    sql(clean_db, "UPDATE alerts SET status='resolved' WHERE id=%s", first.alert_id)
    sql(clean_db, "UPDATE users SET duty_forced_off = true WHERE id=%s", carl)
    other = add_home(clean_db, name="R2", suffix="2")
    assert opened(clean_db, trigger(other)).assigned_to is None

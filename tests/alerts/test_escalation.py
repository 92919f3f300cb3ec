"""Escalation on the real database with an injected clock: the timetable per severity, an
acknowledgement stops it, a crash mid-step neither loses nor repeats a step, and the runner
reacts to new alerts at once."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerts.config import AlertSettings
from alerts.escalation import EscalationRunner, PlannedStep, escalation_tick, plan, replan
from alerts.lifecycle import acknowledge
from alerts.model import Audience, NotificationKind, Severity
from kernel import db
from tests.support.alerts import NOW, add_user, alert, history, opened, s, steps, trigger
from tests.support.database import count
from tests.support.database import execute as sql
from tests.support.homes import add_home
from tests.support.wait import wait_until

W, D, F, A, G = (Audience.SITE_WORKERS, Audience.DUTY_OFFICERS, Audience.FAMILY,
                 Audience.ASSIGNED, Audience.SITE_GROUP)
Call = tuple[int, Audience, NotificationKind, int]


class Recorder:
    """Fake `enqueue`: writes one outbox row in the caller's transaction (so a rolled-back step
    leaves none) and records the call; can be told to fail for an alert."""

    def __init__(self, fail_for: int | None = None) -> None:
        self.calls: list[Call] = []
        self.fail_for = fail_for
        self.lock = threading.Lock()

    def __call__(self, conn: psycopg.Connection[Any], alert_id: int, audience: Audience,
                 kind: NotificationKind, step: int) -> int:
        conn.execute("INSERT INTO notification_outbox (alert_id, kind, channel, target, payload)"
                     " VALUES (%s, %s, 'webhook', %s, '{}')", (alert_id, kind.value, audience))
        with self.lock:
            self.calls.append((alert_id, audience, kind, step))
        if alert_id == self.fail_for:
            raise RuntimeError("channel lookup blew up")
        return 1


def tick(url: str, at: datetime, enqueue: Recorder) -> int:
    with db.connect(url, autocommit=True) as conn:
        return escalation_tick(conn, at, enqueue)


def outbox(url: str, alert_id: int) -> int:
    return count(url, "SELECT count(*) FROM notification_outbox WHERE alert_id = %s", alert_id)


# --- the pure timetable -----------------------------------------------------------------------

def test_plan_defaults_per_severity():
    cfg = AlertSettings()
    assert plan(Severity.CRITICAL, cfg, NOW, assigned=True) == [
        PlannedStep(0, A, NOW), PlannedStep(1, W, NOW + s(60)),
        PlannedStep(2, D, NOW + s(180)), PlannedStep(3, F, NOW + s(600))]
    # Nobody assigned: the duty officers hear of a high (or louder) alert at once.
    assert [(p.step, p.audience, p.due_at - NOW)
            for p in plan("high", cfg, NOW, assigned=False)] == [
        (0, D, s(0)), (1, W, s(300)), (2, D, s(900)), (3, F, s(1800))]
    assert [p.due_at - NOW for p in plan("urgent", cfg, NOW, False)] == [
        s(0), s(180), s(600), s(1200)]
    assert [p.audience for p in plan("warning", cfg, NOW, False)] == [W, D]
    assert plan("info", cfg, NOW, assigned=False) == []
    assert plan("info", cfg, NOW, assigned=True) == [PlannedStep(0, A, NOW)]


def test_replan_skips_done_audiences_and_numbers_on():
    cfg = AlertSettings()
    assert replan("critical", cfg, NOW, {W}, next_step=2) == [
        PlannedStep(2, D, NOW + s(180)), PlannedStep(3, F, NOW + s(600))]


# --- ticks with an injected clock -------------------------------------------------------------

def test_critical_timetable(clean_db):
    home = add_home(clean_db)
    add_user(clean_db, "anna")
    sos = opened(clean_db, trigger(home))
    rec = Recorder()
    assert tick(clean_db, NOW, rec) == 1
    # Step 0 of a critical alert: the assigned worker and the site's group chats, at once.
    assert rec.calls == [(sos.alert_id, A, NotificationKind.ALERT, 0),
                         (sos.alert_id, G, NotificationKind.ALERT, 0)]
    assert tick(clean_db, NOW + s(59), rec) == 0
    assert tick(clean_db, NOW + s(60), rec) == 1
    assert tick(clean_db, NOW + s(60), rec) == 0  # done once
    assert alert(clean_db, sos.alert_id)["escalation_level"] == 1
    assert tick(clean_db, NOW + s(179), rec) == 0
    assert tick(clean_db, NOW + s(180), rec) == 1
    assert tick(clean_db, NOW + s(599), rec) == 0
    assert tick(clean_db, NOW + s(600), rec) == 1
    assert rec.calls[2:] == [(sos.alert_id, W, NotificationKind.ESCALATION, 1),
                             (sos.alert_id, D, NotificationKind.ESCALATION, 2),
                             (sos.alert_id, F, NotificationKind.ESCALATION, 3)]
    assert alert(clean_db, sos.alert_id)["escalation_level"] == 3
    assert [r[3] for r in steps(clean_db, sos.alert_id)] == [
        NOW, NOW + s(60), NOW + s(180), NOW + s(600)]
    assert [(h[0], h[4]) for h in history(clean_db, sos.alert_id)][2:] == [
        ("notified assigned", NOW), ("escalated to site_workers", NOW + s(60)),
        ("escalated to duty_officers", NOW + s(180)), ("escalated to family", NOW + s(600))]


def test_late_tick_catches_up_in_order(clean_db):
    home = add_home(clean_db)
    sos = opened(clean_db, trigger(home))  # nobody on duty: step 0 to the duty officers
    rec = Recorder()
    assert tick(clean_db, NOW + s(3600), rec) == 4
    assert [(c[1], c[3]) for c in rec.calls] == [(D, 0), (G, 0), (W, 1), (D, 2), (F, 3)]
    assert alert(clean_db, sos.alert_id)["escalation_level"] == 3


def test_acknowledgement_stops_later_steps(clean_db):
    home = add_home(clean_db)
    anna = add_user(clean_db, "anna")
    sos = opened(clean_db, trigger(home))
    rec = Recorder()
    assert tick(clean_db, NOW + s(60), rec) == 2  # step 0 (worker + group) and site workers

    async def ack() -> None:
        async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as conn:
            assert (await acknowledge(conn, sos.alert_id, anna, NOW + s(100))).ok

    asyncio.run(ack())
    assert tick(clean_db, NOW + s(180), rec) == 0
    assert tick(clean_db, NOW + s(600), rec) == 0
    assert [(c[1], c[3]) for c in rec.calls] == [(A, 0), (G, 0), (W, 1)]
    assert [(r[0], r[3], r[4]) for r in steps(clean_db, sos.alert_id)] == [
        (0, NOW + s(60), False), (1, NOW + s(60), False),
        (2, NOW + s(100), True), (3, NOW + s(100), True)]


def test_high_severity_delays(clean_db):
    home = add_home(clean_db)
    high = opened(clean_db, trigger(home, "bed_exit_no_return", "high", device=home.bed))
    rec = Recorder()
    # nobody on duty and high: step 0 to the duty officers (and the group chats) at once
    for at, expected in ((0, 1), (299, 0), (300, 1), (899, 0), (900, 1), (1799, 0), (1800, 1)):
        assert tick(clean_db, NOW + s(at), rec) == expected, at
    assert [(c[1], c[3]) for c in rec.calls] == [(D, 0), (G, 0), (W, 1), (D, 2), (F, 3)]
    assert all(c[0] == high.alert_id for c in rec.calls)


def test_unassigned_loud_alert_goes_to_duty_officers_and_group_at_once(clean_db):
    home = add_home(clean_db)
    add_user(clean_db, "carl", on_duty=False)  # nobody on duty: nobody assigned
    sos = opened(clean_db, trigger(home))
    quiet = opened(clean_db, trigger(home, "heart_rate_high", "warning", device=home.bed))
    assert steps(clean_db, sos.alert_id)[0][:3] == (0, D, NOW)
    assert [r[0] for r in steps(clean_db, quiet.alert_id)] == [1, 2]  # warning: no step 0
    rec = Recorder()
    assert tick(clean_db, NOW, rec) == 1  # one step, two notifications
    assert rec.calls == [(sos.alert_id, D, NotificationKind.ALERT, 0),
                         (sos.alert_id, G, NotificationKind.ALERT, 0)]
    assert outbox(clean_db, sos.alert_id) == 2 and outbox(clean_db, quiet.alert_id) == 0
    assert alert(clean_db, sos.alert_id)["escalation_level"] == 0
    assert history(clean_db, sos.alert_id)[-1][0] == "notified duty_officers"
    assert history(clean_db, sos.alert_id)[-1][5] == "step 0: 2 notification(s) queued"
    assert tick(clean_db, NOW + s(59), rec) == 0


def test_steps_of_finished_alerts_are_skipped(clean_db):
    home = add_home(clean_db)
    sos = opened(clean_db, trigger(home))
    sql(clean_db, "UPDATE alerts SET status = 'resolved' WHERE id = %s", sos.alert_id)
    rec = Recorder()
    assert tick(clean_db, NOW + s(3600), rec) == 0
    assert rec.calls == []
    assert all(r[3] == NOW + s(3600) and r[4] for r in steps(clean_db, sos.alert_id))


# --- crash safety -----------------------------------------------------------------------------

def test_failing_enqueue_rolls_back_and_is_done_exactly_once_later(clean_db):
    broken, fine = add_home(clean_db, name="A", suffix="a"), add_home(clean_db, name="B",
                                                                       suffix="b")
    bad = opened(clean_db, trigger(broken))
    good = opened(clean_db, trigger(fine))
    failing = Recorder(fail_for=bad.alert_id)
    assert tick(clean_db, NOW + s(180), failing) == 3  # the other alert is not held up
    assert outbox(clean_db, bad.alert_id) == 0  # the failed step left nothing behind
    assert [r[3] for r in steps(clean_db, bad.alert_id)] == [None, None, None, None]
    assert [c[3] for c in failing.calls if c[0] == bad.alert_id] == [0]  # later steps waited
    healthy = Recorder()
    assert tick(clean_db, NOW + s(180), healthy) == 3
    assert tick(clean_db, NOW + s(180), healthy) == 0
    assert [(c[1], c[3]) for c in healthy.calls] == [(D, 0), (G, 0), (W, 1), (D, 2)]
    # step 0 queues two (duty officers and the group chats), later steps one each
    assert outbox(clean_db, bad.alert_id) == 4 and outbox(clean_db, good.alert_id) == 4


def test_connection_lost_mid_step_neither_loses_nor_repeats(clean_db):
    home = add_home(clean_db)
    sos = opened(clean_db, trigger(home))

    class Crash(Recorder):
        def __call__(self, conn: psycopg.Connection[Any], alert_id: int, audience: Audience,
                     kind: NotificationKind, step: int) -> int:
            super().__call__(conn, alert_id, audience, kind, step)
            if step == 2:  # the process dies after queueing, before done_at is written
                sql(clean_db, "SELECT pg_terminate_backend(%s)", conn.info.backend_pid)
            return 1

    with db.connect(clean_db, autocommit=True) as conn, pytest.raises(psycopg.OperationalError):
        escalation_tick(conn, NOW + s(600), Crash())
    assert [r[3] is not None for r in steps(clean_db, sos.alert_id)] == [
        True, True, False, False]
    assert outbox(clean_db, sos.alert_id) == 3  # step 0 (duty officers + group), step 1
    restarted = Recorder()
    assert tick(clean_db, NOW + s(600), restarted) == 2
    assert tick(clean_db, NOW + s(600), restarted) == 0
    assert [c[3] for c in restarted.calls] == [2, 3]
    assert outbox(clean_db, sos.alert_id) == 5  # two for step 0, one per later step


def test_concurrent_ticks_do_each_step_once(clean_db):
    homes = [add_home(clean_db, name=f"R{i}", suffix=str(i)) for i in range(8)]
    for home in homes:
        opened(clean_db, trigger(home))
    rec = Recorder()
    start = threading.Barrier(3)
    done: list[int] = []

    def worker() -> None:
        with db.connect(clean_db, autocommit=True) as conn:
            start.wait()
            done.append(escalation_tick(conn, NOW + s(600), rec))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # per alert: steps 0-3; five calls (step 0 also tells the group chats)
    assert sum(done) == 8 * 4 and len(rec.calls) == 8 * 5
    assert len(set(rec.calls)) == 8 * 5
    assert count(clean_db, "SELECT count(*) FROM notification_outbox") == 8 * 5


# --- the runner -------------------------------------------------------------------------------

class Clock:
    """A settable clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_runner_wakes_on_new_alert_and_ticks_on_interval(clean_db):
    home = add_home(clean_db)
    add_user(clean_db, "anna")
    clock, rec = Clock(NOW), Recorder()
    runner = EscalationRunner(clean_db, interval_s=600, clock=clock, enqueue=rec)
    runner.start()
    try:
        wait_until(lambda: runner.ticks >= 1, what="first tick")
        sos = opened(clean_db, trigger(home))  # NOTIFY alerts: step 0 goes out at once
        # step 0 enqueues twice (assigned, then group): wait for both, not just the first
        wait_until(lambda: len(rec.calls) >= 2, what="step 0 on LISTEN")
        assert rec.calls == [(sos.alert_id, A, NotificationKind.ALERT, 0),
                             (sos.alert_id, G, NotificationKind.ALERT, 0)]
    finally:
        runner.stop()
    assert not runner.is_alive()

    fast = EscalationRunner(clean_db, interval_s=0.05, clock=clock, enqueue=rec)
    clock.advance(60)
    fast.start()
    try:
        wait_until(lambda: len(rec.calls) == 3, what="site workers step on the interval")
    finally:
        fast.stop()
    assert rec.calls[2] == (sos.alert_id, W, NotificationKind.ESCALATION, 1)


def test_runner_reconnects_after_losing_its_connection(clean_db):
    home = add_home(clean_db)
    clock, rec = Clock(NOW), Recorder()
    runner = EscalationRunner(clean_db, interval_s=600, clock=clock, enqueue=rec, backoff_s=0.05)
    runner.start()
    try:
        pid = wait_until(lambda: runner.backend_pid, what="runner connected")
        sql(clean_db, "SELECT pg_terminate_backend(%s)", pid)
        wait_until(lambda: runner.backend_pid not in (None, pid), what="runner reconnected")
        clock.advance(60)
        # nobody on duty: step 0 (duty officers + group) at once, step 1 due at NOW + 60 s
        sos = opened(clean_db, trigger(home))
        wait_until(lambda: len(rec.calls) >= 3, what="steps after reconnect")
        assert rec.calls == [(sos.alert_id, D, NotificationKind.ALERT, 0),
                             (sos.alert_id, G, NotificationKind.ALERT, 0),
                             (sos.alert_id, W, NotificationKind.ESCALATION, 1)]
    finally:
        runner.stop()

"""Staff actions on the real database: acknowledge (one winner), resolve, the sos_ack command and
a complete, immutable history."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import psycopg
import pytest

from alerts.escalation import escalation_tick
from alerts.lifecycle import ActionResult, AlertNotFound, acknowledge, resolve
from alerts.model import AlertStatus, Audience, NotificationKind, Outcome
from gateway.schema import decode_command
from kernel import db
from tests.support.alerts import (
    NOW,
    T0,
    add_user,
    alert,
    history,
    opened,
    s,
    steps,
    store_cancel_now,
    trigger,
)
from tests.support.database import count
from tests.support.database import execute as sql
from tests.support.homes import add_home

R = TypeVar("R")


def run(url: str, action: Callable[[psycopg.AsyncConnection[Any]], Awaitable[R]]) -> R:
    """Run one async action on a fresh autocommit connection."""
    async def go() -> R:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await action(conn)
    return asyncio.run(go())


def ack(url: str, alert_id: int, user: int, at: datetime = NOW,
        note: str | None = None) -> ActionResult:
    return run(url, lambda c: acknowledge(c, alert_id, user, at, note))


def res(url: str, alert_id: int, user: int, outcome: Outcome = Outcome.ASSISTED_AT_HOME,
        note: str | None = "helped back to bed", at: datetime = NOW) -> ActionResult:
    return run(url, lambda c: resolve(c, alert_id, user, outcome, note, at))


def commands(url: str) -> list[tuple[Any, ...]]:
    with db.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT alert_id, kind, channel, target, payload, dedup_key "
                            "FROM notification_outbox WHERE kind = 'command'").fetchall()


# --- acknowledge ------------------------------------------------------------------------------

def test_acknowledge_claims_skips_steps_and_queues_sos_ack(clean_db):
    home = add_home(clean_db)
    anna, bert = add_user(clean_db, "anna"), add_user(clean_db, "bert")
    sos = opened(clean_db, trigger(home))
    at = NOW + s(40)
    result = ack(clean_db, sos.alert_id, bert, at, note="on my way")
    assert result == ActionResult(True, sos.alert_id, AlertStatus.ACKNOWLEDGED, bert, at,
                                  "acknowledged")
    row = alert(clean_db, sos.alert_id)
    assert (row["status"], row["acknowledged_by"], row["acknowledged_at"]) == (
        "acknowledged", bert, at)
    assert row["assigned_to"] == anna  # acknowledging does not reassign
    assert all(done == at and skipped for *_, done, skipped in steps(clean_db, sos.alert_id))
    assert history(clean_db, sos.alert_id)[-1] == (
        "acknowledged", "acknowledged", "bert", bert, at, "on my way")
    [(alert_id, kind, channel, target, payload, dedup)] = commands(clean_db)
    assert (alert_id, kind, channel, dedup) == (
        sos.alert_id, "command", "mqtt", f"alert:{sos.alert_id}:sos_ack")
    assert target == f"eldercare/v1/north/{home.button}/cmd"
    cmd = decode_command(json.dumps(payload).encode())  # a valid contract-v1 command
    assert (cmd.alert_id, cmd.ts, cmd.message) == (sos.alert_id, at, "Help is on the way")

    again = ack(clean_db, sos.alert_id, anna, NOW + s(50))
    assert not again.ok and (again.status, again.by_user_id, again.at) == (
        AlertStatus.ACKNOWLEDGED, bert, at)
    assert "bert" in again.message
    assert len(commands(clean_db)) == 1


def test_no_sos_ack_for_other_alerts_or_devices(clean_db):
    home = add_home(clean_db)
    user = add_user(clean_db, "anna")
    fall_from_bed = opened(clean_db, trigger(home, "fall", device=home.bed))
    exit_alert = opened(clean_db, trigger(home, "bed_exit_no_return", "high", device=home.bed))
    for alert_id in (fall_from_bed.alert_id, exit_alert.alert_id):
        assert ack(clean_db, alert_id, user).ok
    assert commands(clean_db) == []


def test_fall_from_a_call_button_gets_sos_ack(clean_db):
    home = add_home(clean_db)
    user = add_user(clean_db, "anna")
    fall = opened(clean_db, trigger(home, "fall"))
    assert ack(clean_db, fall.alert_id, user).ok
    assert [c[0] for c in commands(clean_db)] == [fall.alert_id]


def test_unknown_alert(clean_db):
    user = add_user(clean_db, "anna", role="admin", site=None)
    with pytest.raises(AlertNotFound):
        ack(clean_db, 999, user)
    with pytest.raises(AlertNotFound):
        res(clean_db, 999, user)


def test_concurrent_acknowledge_has_exactly_one_winner(clean_db):
    homes = [add_home(clean_db, name=f"R{i}", suffix=str(i)) for i in range(6)]
    anna, bert = add_user(clean_db, "anna"), add_user(clean_db, "bert")

    async def race(alert_id: int) -> list[ActionResult]:
        async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as c1, \
                await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as c2:
            return list(await asyncio.gather(acknowledge(c1, alert_id, anna, NOW),
                                             acknowledge(c2, alert_id, bert, NOW + s(1))))

    for home in homes:
        alert_id = opened(clean_db, trigger(home)).alert_id
        results = asyncio.run(race(alert_id))
        winners = [r for r in results if r.ok]
        [loser] = [r for r in results if not r.ok]
        assert len(winners) == 1
        assert (loser.status, loser.by_user_id) == (AlertStatus.ACKNOWLEDGED,
                                                   winners[0].by_user_id)
        assert alert(clean_db, alert_id)["acknowledged_by"] == winners[0].by_user_id
        assert actions_of(clean_db, alert_id).count("acknowledged") == 1
        assert count(clean_db, "SELECT count(*) FROM notification_outbox WHERE alert_id = %s",
                     alert_id) == 1


def actions_of(url: str, alert_id: int) -> list[str]:
    return [str(h[0]) for h in history(url, alert_id)]


# --- resolve ----------------------------------------------------------------------------------

def test_resolve_acknowledged_with_outcome_and_note(clean_db):
    home = add_home(clean_db)
    anna = add_user(clean_db, "anna")
    sos = opened(clean_db, trigger(home))
    assert ack(clean_db, sos.alert_id, anna, NOW + s(30)).ok
    done = res(clean_db, sos.alert_id, anna, Outcome.AMBULANCE_CALLED, "suspected fracture",
               NOW + s(900))
    assert done == ActionResult(True, sos.alert_id, AlertStatus.RESOLVED, anna, NOW + s(900),
                                "resolved: ambulance_called")
    row = alert(clean_db, sos.alert_id)
    assert (row["status"], row["outcome"], row["note"], row["resolved_by"],
            row["resolved_at"], row["acknowledged_at"]) == (
        "resolved", "ambulance_called", "suspected fracture", anna, NOW + s(900), NOW + s(30))
    assert history(clean_db, sos.alert_id)[-1][:2] == ("resolved", "resolved")
    assert history(clean_db, sos.alert_id)[-1][5] == "ambulance_called: suspected fracture"


def test_resolve_open_alert_acknowledges_on_the_way(clean_db):
    home = add_home(clean_db)
    anna = add_user(clean_db, "anna")
    alert_id = opened(clean_db, trigger(home, "not_up", "high", device=home.bed)).alert_id
    assert res(clean_db, alert_id, anna, Outcome.FALSE_ALARM, None, NOW + s(60)).ok
    row = alert(clean_db, alert_id)
    assert (row["acknowledged_by"], row["acknowledged_at"]) == (anna, NOW + s(60))
    assert [h[:2] for h in history(clean_db, alert_id)][-2:] == [
        ("acknowledged", "acknowledged"), ("resolved", "resolved")]
    assert all(r[4] for r in steps(clean_db, alert_id))


def test_resolve_twice_and_resolve_cancelled(clean_db):
    home = add_home(clean_db)
    anna, bert = add_user(clean_db, "anna"), add_user(clean_db, "bert")
    first = opened(clean_db, trigger(home, seq=1))
    assert res(clean_db, first.alert_id, anna, at=NOW + s(60)).ok
    second = res(clean_db, first.alert_id, bert, at=NOW + s(70))
    assert not second.ok and (second.status, second.by_user_id, second.at) == (
        AlertStatus.RESOLVED, anna, NOW + s(60))
    assert alert(clean_db, first.alert_id)["resolved_by"] == anna
    late = ack(clean_db, first.alert_id, bert)
    assert not late.ok and late.status is AlertStatus.RESOLVED

    cancelled = opened(clean_db, trigger(home, seq=2, at=T0 + s(100)))
    assert store_cancel_now(clean_db, home, T0 + s(110)) == cancelled.alert_id
    gone = res(clean_db, cancelled.alert_id, anna)
    assert not gone.ok and gone.status is AlertStatus.CANCELLED and gone.by_user_id is None
    assert "resident" in gone.message
    with pytest.raises(ValueError, match="platform only"):
        res(clean_db, first.alert_id, anna, Outcome.CANCELLED_BY_RESIDENT)


def test_concurrent_resolve_has_exactly_one_winner(clean_db):
    home = add_home(clean_db)
    anna, bert = add_user(clean_db, "anna"), add_user(clean_db, "bert")

    async def race(alert_id: int) -> list[ActionResult]:
        async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as c1, \
                await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as c2:
            return list(await asyncio.gather(
                resolve(c1, alert_id, anna, Outcome.OTHER, "a", NOW),
                resolve(c2, alert_id, bert, Outcome.HOSPITAL, "b", NOW)))

    for i in range(4):
        alert_id = opened(clean_db, trigger(home, seq=i, at=T0 + s(i * 10))).alert_id
        results = asyncio.run(race(alert_id))
        assert sorted(r.ok for r in results) == [False, True]
        assert actions_of(clean_db, alert_id).count("resolved") == 1


# --- the whole story in the history -----------------------------------------------------------

def test_history_is_complete_who_and_when(clean_db):
    home = add_home(clean_db)
    anna = add_user(clean_db, "anna")
    sos = opened(clean_db, trigger(home))
    calls: list[tuple[int, Audience, NotificationKind, int]] = []

    def record(conn: Any, alert_id: int, audience: Audience, kind: NotificationKind,
               step: int) -> int:
        calls.append((alert_id, audience, kind, step))
        return 1

    with db.connect(clean_db, autocommit=True) as conn:
        assert escalation_tick(conn, NOW, record) == 1
        assert escalation_tick(conn, NOW + s(60), record) == 1
    assert ack(clean_db, sos.alert_id, anna, NOW + s(75)).ok
    assert res(clean_db, sos.alert_id, anna, Outcome.ASSISTED_AT_HOME, "helped up",
               NOW + s(600)).ok
    assert calls == [(sos.alert_id, Audience.ASSIGNED, NotificationKind.ALERT, 0),
                     (sos.alert_id, Audience.SITE_GROUP, NotificationKind.ALERT, 0),
                     (sos.alert_id, Audience.SITE_WORKERS, NotificationKind.ESCALATION, 1)]
    assert [h[:5] for h in history(clean_db, sos.alert_id)] == [
        ("opened", "open", "system", None, NOW),
        ("assigned", "open", "system", None, NOW),
        ("notified assigned", "open", "system", None, NOW),
        ("escalated to site_workers", "open", "system", None, NOW + s(60)),
        ("acknowledged", "acknowledged", "anna", anna, NOW + s(75)),
        ("resolved", "resolved", "anna", anna, NOW + s(600)),
    ]
    sql(clean_db, "SELECT 1")  # the history rows above cannot change: see test_store

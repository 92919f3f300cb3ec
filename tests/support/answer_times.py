"""Alerts with known answer times at site north (Asia/Shanghai), stored through the real store
functions with explicit instants: the answer-time tests' data (tests/dashboard/
test_answer_times.py, test_answer_times_page.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from alerts.config import AlertSettings
from alerts.escalation import escalation_tick
from alerts.lifecycle import acknowledge, resolve
from alerts.model import AlertCancel, AlertTrigger, AlertType, Outcome, Severity
from alerts.store import store_cancel, store_trigger
from kernel import db, sites
from tests.support.dashboard import World

SHANGHAI = ZoneInfo("Asia/Shanghai")
SETTINGS = AlertSettings()
DAY = "2026-03-02"


def local(text: str) -> datetime:
    """A Shanghai wall-clock time as an aware instant."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


# The app's clock: days after the reported day (so nothing is still undecided), or during
# the day shift of 2026-03-02 for the shift numbers.
AFTER = local("2026-03-05 08:00")
IN_SHIFT = local("2026-03-02 12:30")


@dataclass
class Stored:
    """The ids of the seeded alerts."""

    ids: dict[str, int]


async def _raise(conn: psycopg.AsyncConnection[Any], url: str, resident: int, type_: AlertType,
                 severity: Severity, at: datetime) -> int:
    with db.connect(url, autocommit=True) as sync:
        stored = store_trigger(sync, AlertTrigger(resident, "north", f"btn-{resident}", type_,
                                                  severity, at), SETTINGS, at)
    assert stored is not None and stored.created
    return stored.alert_id


async def seed(url: str, world: World) -> Stored:
    """North in Shanghai time; alerts around 2026-03-02 with known answer times."""
    with db.connect(url, autocommit=True) as sync:
        sync.execute("UPDATE sites SET timezone = 'Asia/Shanghai' WHERE id = 'north'")
        dan = sites.add_resident(sync, "north", "Dan Dahl", "4 Fjord Road")
        eve = sites.add_resident(sync, "north", "Eve Eng", "5 Fjord Road")
        sync.execute("INSERT INTO shifts (site_id, user_id, starts_local, ends_local) VALUES "
                     "('north', %s, '2026-03-02 08:00', '2026-03-02 20:00')", (world.care_north,))
    care, duty = world.care_north, world.duty_north
    sec = timedelta(seconds=1)
    ids: dict[str, int] = {}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        async def answered(name: str, resident: int, type_: AlertType, at: str,
                           ack: tuple[int, int] | None, res: tuple[int, int] | None) -> None:
            raised = local(at)
            ids[name] = await _raise(conn, url, resident, type_, Severity.CRITICAL, raised)
            if ack:
                await acknowledge(conn, ids[name], ack[1], raised + ack[0] * sec)
            if res:
                await resolve(conn, ids[name], res[1], Outcome.ASSISTED_AT_HOME, None,
                              raised + res[0] * sec)

        sos, fall = AlertType.SOS, AlertType.FALL
        await answered("a0", dan, sos, "2026-03-01 23:59:59", (10, care), (60, care))  # day before
        await answered("a1", dan, sos, "2026-03-02 07:30", (50, care), (300, care))  # UTC: 03-01
        await answered("a2", eve, fall, "2026-03-02 09:00", (120, duty), (900, duty))
        await answered("a3", dan, sos, "2026-03-02 11:00", None, (30, care))  # ack on resolve
        ids["a4"] = await _raise(conn, url, eve, AlertType.HEART_RATE_HIGH, Severity.URGENT,
                                 local("2026-03-02 12:00"))  # never acknowledged
        ids["a5"] = await _raise(conn, url, dan, sos, Severity.CRITICAL, local("2026-03-02 13:00"))
        with db.connect(url, autocommit=True) as sync:
            cancelled = store_cancel(sync, AlertCancel(dan, "north", f"btn-{dan}",
                                                       local("2026-03-02 13:00:10"), True),
                                     SETTINGS, local("2026-03-02 13:00:10"))
            assert cancelled == ids["a5"]
            escalation_tick(sync, local("2026-03-02 14:00"))  # a4 escalates
        await answered("a6", dan, sos, "2026-03-02 23:59:30", (20, care), (200, care))
        await answered("a7", eve, fall, "2026-03-03 00:00:10", (5, care), (10, care))  # next day
    return Stored(ids)



"""A planned stop of the platform, on the real database: the alert engine stopped and
started again on an injected clock. Devices that keep talking raise no device_offline, the
one the stop caused is resolved with a history line, a device that stays silent is reported
after the grace period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.config import AlertSettings
from alerts.model import AlertTrigger
from alerts.service import AlertEngine, EngineTiming
from alerts.store import RESTART_NOTE
from gateway.records import StatusRecord
from simulators.clock import ManualClock
from tests.support.alerts import history
from tests.support.database import count
from tests.support.homes import Home, add_home
from tests.support.wait import wait_until

W0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def engine(url: str, clock: ManualClock) -> AlertEngine:
    e = AlertEngine(url, AlertSettings(), [], publish=lambda *_: None, release=lambda _: None,
                    hold=lambda *_: None, lookup=lambda _: None, clock=clock,
                    timing=EngineTiming(tick_s=0.05, start_grace_s=0))
    e.start()
    return e


def beat(e: AlertEngine, home: Home, device: str, seconds: float, online: bool = True) -> None:
    """A status from `device`, live (received when sent)."""
    t = W0 + timedelta(seconds=seconds)
    e.on_records([StatusRecord(t, device, home.resident_id, int(seconds), online, 80, -60,
                               "fw", 60, None, t)], None)


def offline(url: str, where: str = "TRUE", *params: object) -> int:
    return count(url, f"SELECT count(*) FROM alerts WHERE type = 'device_offline' AND {where}",
                 *params)


def test_a_planned_stop_is_not_a_device_fault(clean_db: str) -> None:
    a = add_home(clean_db)
    b = add_home(clean_db, name="Bert", suffix="b")
    clock = ManualClock(W0)
    first = engine(clean_db, clock)
    try:
        for s in (0, 60):
            for home in (a, b):
                beat(first, home, home.bed, s)
                beat(first, home, home.button, s)
        clock.set(W0 + timedelta(seconds=61))
        beat(first, a, a.bed, 61, online=False)  # the demo's Ctrl-C: a clean power-off
        wait_until(lambda: offline(clean_db) == 1, what="the power-off's device_offline")
    finally:
        first.stop()

    clock.set(W0 + timedelta(seconds=600))  # the platform was down for nine minutes
    second = engine(clean_db, clock)
    try:
        for s in (605, 700, 790):  # devices that keep talking (all but b's call button)
            beat(second, a, a.bed, s)
            beat(second, a, a.button, s)
            beat(second, b, b.bed, s)
        wait_until(lambda: offline(clean_db, "status = 'resolved'") == 1,
                   what="the stop's alert resolved")
        clock.set(W0 + timedelta(seconds=600 + 200))  # past the grace of three heartbeats
        wait_until(lambda: offline(clean_db, "resident_id = %s", b.resident_id) == 1,
                   what="the silent button reported")
    finally:
        second.stop()
    assert offline(clean_db) == 2
    assert offline(clean_db, "resident_id = %s AND status = 'open' AND device_id = %s "
                             "AND opened_at = %s", b.resident_id, b.button,
                   W0 + timedelta(seconds=600 + 180)) == 1
    resolved = count(clean_db, "SELECT id FROM alerts WHERE resident_id = %s", a.resident_id)
    last = history(clean_db, resolved)[-1]
    assert (last[0], last[1], last[2]) == ("resolved", "resolved", "system")
    assert RESTART_NOTE in last[5]
    assert count(clean_db, "SELECT count(*) FROM alerts WHERE outcome = 'false_alarm'") == 1


def test_an_alert_the_database_refuses_does_not_stop_the_worker(clean_db: str) -> None:
    """A store that fails for another reason than a lost connection (here: a resident that
    does not exist) is logged and skipped; the next resident's SOS is still stored."""
    home = add_home(clean_db)
    released: list[int] = []
    e = AlertEngine(clean_db, AlertSettings(), [], publish=lambda *_: None,
                    release=released.append, hold=lambda *_: None, lookup=lambda _: None,
                    clock=ManualClock(W0), timing=EngineTiming(tick_s=0.05, start_grace_s=0))
    e.start()
    try:
        for token, resident in ((7, 999_999), (8, home.resident_id)):
            e._submit([AlertTrigger(resident, home.site, home.button, "sos", "critical", W0,
                                    source_seq=1)], token)
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM alerts WHERE resident_id = %s",
                                 home.resident_id) == 1, what="the next SOS stored")
        wait_until(lambda: 8 in released, what="the stored SOS's message released")
        assert e.failed == 1
        # The SOS that could not be stored is never acknowledged: no PUBACK, no receipt; the
        # device repeats it and the broker redelivers it to the next run.
        assert 7 not in released
    finally:
        e.stop()

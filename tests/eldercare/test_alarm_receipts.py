"""End-to-end alarm receipts (docs/protocol.md, "alarm_received"): the platform confirms an
SOS or fall only once it is stored, answers every repeat, and stores each alarm once, so a
device that repeats its alarm until the receipt loses nothing, not even in a broker crash."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from eldercare.embedded import start_postgres
from eldercare.pipeline import Pipeline
from gateway.schema import DeviceEvent
from kernel import db
from simulators.clock import ManualClock
from simulators.devices import CallButtonSim
from tests.support.bus import BusListener
from tests.support.database import count
from tests.support.devices import forget_device
from tests.support.homes import Home, seed_home
from tests.support.pipeline import running_pipeline
from tests.support.services import Broker, OwnBroker
from tests.support.wait import wait_until


def rows(url: str, device_id: str, seq: int) -> int:
    """Stored event rows of one alarm."""
    return count(url, "SELECT count(*) FROM device_events WHERE device_id = %s AND seq = %s",
                 device_id, seq)


def alerts_of(url: str, device_id: str) -> list[tuple[int, str, int, int]]:
    """(id, type, source_seq, count) of a device's alerts."""
    with db.connect(url, autocommit=True) as conn:
        return [(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in conn.execute(
            "SELECT id, type, source_seq, count FROM alerts WHERE device_id = %s ORDER BY id",
            (device_id,)).fetchall()]


def receipts_for(button: CallButtonSim, seq: int) -> list[int | None]:
    """alert_id of every receipt the button got for alarm `seq`."""
    return [r.alert_id for r in button.receipts if r.seq == seq]


def repeat(button: CallButtonSim, clock: ManualClock, alarm: DeviceEvent) -> None:
    """Make the button send `alarm` again, as a device whose receipt was lost does."""
    button.outbox.add(alarm, clock())
    clock.advance(2)
    assert button.resend_due() == 1


@pytest.fixture
def home(clean_db: str, broker: Broker) -> Home:
    return seed_home(clean_db, broker.admin)


@pytest.fixture
def button(home: Home, broker: Broker) -> Iterator[tuple[CallButtonSim, ManualClock]]:
    clock = ManualClock(datetime.now(UTC))  # device time: within the retention window
    sim = CallButtonSim(home.button, port=broker.port, clock=clock, alarm_tick_s=None)
    yield sim, clock
    sim.shutdown()
    forget_device(home.button, broker.port)  # no retained status left for later tests


def test_stored_alarms_are_confirmed_and_repeats_are_answered_but_stored_once(
        clean_db: str, broker: Broker, home: Home,
        button: tuple[CallButtonSim, ManualClock]) -> None:
    sim, clock = button
    with running_pipeline(broker.pipeline, clean_db, prefix="receipt") as pipe:
        assert sim.connect(wait=10)
        sos = sim.press_sos()
        clock.advance(30)
        fall = sim.fall()
        wait_until(lambda: not sim.outbox, what="both alarms confirmed")
        # A receipt means stored: the row and the alert are committed when it arrives.
        assert rows(clean_db, sim.device_id, sos.seq) == rows(clean_db, sim.device_id,
                                                              fall.seq) == 1
        stored = alerts_of(clean_db, sim.device_id)
        assert [(typ, seq, n) for _, typ, seq, n in stored] == [("sos", sos.seq, 1),
                                                                 ("fall", fall.seq, 1)]
        assert receipts_for(sim, sos.seq) == [stored[0][0]]
        assert receipts_for(sim, fall.seq) == [stored[1][0]]

        repeat(sim, clock, sos)  # the receipt was lost: the device repeats the alarm
        wait_until(lambda: len(receipts_for(sim, sos.seq)) == 2, what="the repeat answered")
        assert receipts_for(sim, sos.seq) == [stored[0][0]] * 2
        assert pipe.receipts.in_flight == 0

    # A later platform run (no memory of the alarm) still answers a repeat, stores nothing.
    with running_pipeline(broker.pipeline, clean_db, prefix="receipt2"):
        repeat(sim, clock, sos)
        wait_until(lambda: len(receipts_for(sim, sos.seq)) == 3, what="answered after restart")
    assert rows(clean_db, sim.device_id, sos.seq) == 1
    assert alerts_of(clean_db, sim.device_id) == stored  # no new alert, no repeat counted


def test_an_alarm_is_not_confirmed_while_the_platform_is_down(
        clean_db: str, broker: Broker, home: Home,
        button: tuple[CallButtonSim, ManualClock]) -> None:
    """No pipeline, no receipt: the device keeps the alarm and keeps repeating it."""
    sim, clock = button
    assert sim.connect(wait=10)
    sos = sim.press_sos()
    for _ in range(3):
        clock.advance(60)
        assert sim.resend_due() == 1
    assert sos.seq in sim.outbox and sim.receipts == []


def test_sos_survives_a_broker_kill_right_after_its_puback(clean_db: str,
                                                           own_broker: OwnBroker) -> None:
    """Pipeline down, SOS pressed and PUBACKed, Mosquitto SIGKILLed before it saved the
    message, broker and pipeline restarted: the alarm is stored, exactly once, because the
    button repeated it until the receipt (issue 11, the lost SOS)."""
    home = seed_home(clean_db, own_broker.admin)
    name = f"fault{time.time_ns()}"

    def pipeline() -> Pipeline:
        pipe = Pipeline(own_broker.pipeline, clean_db, sites=[], name=name, batch_ms=50)
        pipe.start()
        wait_until(pipe.connected.is_set, timeout=30, what="pipeline connected")
        return pipe

    pipeline().stop()  # its persistent session now exists: the broker queues for it
    clock = ManualClock(datetime.now(UTC))  # device time: within the retention window
    sim = CallButtonSim(home.button, port=own_broker.port, clock=clock, alarm_tick_s=None)
    pipe: Pipeline | None = None
    try:
        assert sim.connect(wait=10)
        sos = sim.press_sos("pressed while the platform was down")
        sent = sim.last_sent
        assert sent is not None
        wait_until(sent.is_published, what="the broker's PUBACK for the SOS")
        own_broker.kill()
        own_broker.start()
        pipe = pipeline()

        def confirmed() -> bool:  # the button's timer: repeats fall due as its clock moves
            clock.advance(5)
            sim.resend_due()
            return not sim.outbox

        wait_until(confirmed, timeout=90, interval=0.2, what="the SOS confirmed")
        assert rows(clean_db, sim.device_id, sos.seq) == 1
        assert [(typ, seq, n) for _, typ, seq, n in alerts_of(clean_db, sim.device_id)] == [
            ("sos", sos.seq, 1)]
        assert receipts_for(sim, sos.seq)
    finally:
        sim.shutdown()
        if pipe is not None:
            pipe.stop()
    assert count(clean_db, "SELECT count(*) FROM device_events WHERE device_id = %s",
                 sim.device_id) == 1


def test_repeats_of_a_held_alarm_leave_the_receive_window_to_a_new_sos(
        own_pg: tuple[Any, list[Any]], broker: Broker) -> None:
    """Database down: one button repeats its SOS more often than the events session's receive
    window holds messages. Each repeat is acknowledged at once (its first copy is held until
    stored), so another resident's SOS still reaches the bus while the database is down; once
    it is back both alarms are stored once and both buttons get their receipt."""
    cfg, procs = own_pg
    first, second = seed_home(cfg.url, broker.admin), seed_home(cfg.url, broker.admin,
                                                                name="Second Resident")
    window = 8
    bus = BusListener(broker)
    pipe = Pipeline(broker.pipeline, cfg.url, sites=[], name=f"window{time.time_ns()}",
                    batch_ms=50, event_receive_maximum=window)
    clock = ManualClock(datetime.now(UTC))  # device time: within the retention window
    sims = [CallButtonSim(h.button, port=broker.port, clock=clock, alarm_tick_s=None)
            for h in (first, second)]
    try:
        pipe.start()
        assert all(s.connect(wait=10) for s in sims)
        wait_until(pipe.connected.is_set, what="pipeline connected")
        procs[0].stop()
        sos = sims[0].press_sos()
        wait_until(lambda: sos_announced(bus, first.resident_id), timeout=30,
                   what="the first SOS on the bus")
        for _ in range(3 * window):  # the receipt cannot come: the device keeps repeating
            clock.advance(60)
            assert sims[0].resend_due() == 1
            sent = sims[0].last_sent
            assert sent is not None
            wait_until(sent.is_published, what="the broker took the repeat")
        other = sims[1].press_sos()
        wait_until(lambda: sos_announced(bus, second.resident_id), timeout=30,
                   what="the second resident's SOS on the bus, the database still down")
        assert sims[0].receipts == [] and sims[1].receipts == []  # nothing stored yet
        procs[0] = start_postgres(cfg)
        wait_until(lambda: receipts_for(sims[0], sos.seq) and receipts_for(sims[1], other.seq),
                   timeout=60, what="both alarms confirmed once the database is back")
        for sim, alarm in zip(sims, (sos, other), strict=True):
            assert rows(cfg.url, sim.device_id, alarm.seq) == 1
            stored = alerts_of(cfg.url, sim.device_id)
            assert [(typ, seq) for _, typ, seq, _ in stored] == [("sos", alarm.seq)]
            assert set(receipts_for(sim, alarm.seq)) == {stored[0][0]}
        assert pipe.receipts.in_flight == 0
    finally:
        for sim in sims:
            sim.shutdown()
        pipe.stop()
        bus.close()
        for h in (first, second):
            forget_device(h.button, broker.port)


def sos_announced(bus: BusListener, resident_id: int) -> bool:
    """An SOS of the resident reached the live bus."""
    return any(e.type == "sos" and e.resident_id == resident_id for e in bus.events)

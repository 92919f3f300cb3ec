"""The demo responder against a served web app on the real database: it logs in as a care
worker, acknowledges and resolves an alert through the HTTP API when its plan says so, leaves
what a person acknowledged, and gives way when a person gets to an alert first (409)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest

from alerts.model import AlertStatus, Severity
from dashboard.app import create_app
from kernel import accounts, db
from simulators.clock import ManualClock
from simulators.responder import AlertView, Responder, ResponderLogin, ResponderPolicy, plan_for
from tests.support.dashboard import PASSWORD, SECRET, World, cached_hash, insert_alert, seed_world
from tests.support.live import Served, running_server
from tests.support.wait import wait_until

SEED = 4
POLICY = ResponderPolicy()


@dataclass(frozen=True)
class Desk:
    world: World
    served: Served
    responder_id: int
    url: str  # the database


@pytest.fixture
def desk(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    """The dashboard tests' seeded world, served, with a responder account at site north."""
    monkeypatch.setattr(accounts, "hash_password", cached_hash)
    world = seed_world(clean_db)
    with db.connect(clean_db) as conn:
        responder_id = accounts.add_user(conn, "responder-north", PASSWORD, "care_worker",
                                         "north", full_name="Simulated care worker")
        conn.commit()
    with running_server(create_app(clean_db, SECRET)) as served:
        yield Desk(world, served, responder_id, clean_db)


class Ticks:
    """A monotonic clock for the responder's listing schedule that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _row(url: str, alert_id: int) -> tuple[str, int | None, int | None, str | None, datetime,
                                            datetime | None]:
    with db.connect(url) as conn:
        row = conn.execute("SELECT status, acknowledged_by, resolved_by, outcome, created_at, "
                           "acknowledged_at FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3], row[4], row[5]


def _responder(desk: Desk, clock: ManualClock, ticks: Ticks, client: httpx.Client,
               list_every_s: float = 0.0) -> Responder:
    return Responder(desk.served.url, [ResponderLogin("responder-north", PASSWORD, "north")],
                     seed=SEED, policy=POLICY, clock=clock, list_every_s=list_every_s,
                     client=client, monotonic=ticks)


def test_it_acknowledges_then_resolves_through_the_api_when_due_and_leaves_the_rest(
        desk: Desk, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="simulators.responder")
    sos = desk.world.sos_alice
    status, _, _, _, created, _ = _row(desk.url, sos)
    assert status == "open"
    plan = plan_for(AlertView(sos, "north", "sos", Severity.CRITICAL, AlertStatus.OPEN, created),
                    SEED, POLICY)
    clock = ManualClock(created + timedelta(seconds=plan.ack_after_s - 1))
    ticks = Ticks()
    with httpx.Client(timeout=10) as client:
        responder = _responder(desk, clock, ticks, client)
        assert responder.tick() == 0  # not yet its time
        assert _row(desk.url, sos)[0] == "open"

        clock.set(created + timedelta(seconds=plan.ack_after_s))
        assert responder.tick() == 1
        status, acked_by, _, _, _, acked_at = _row(desk.url, sos)
        assert (status, acked_by) == ("acknowledged", desk.responder_id)
        assert acked_at is not None

        clock.set(acked_at + timedelta(seconds=plan.resolve_after_s - 1))
        assert responder.tick() == 0
        clock.set(acked_at + timedelta(seconds=plan.resolve_after_s))
        assert responder.tick() == 1
        status, _, resolved_by, outcome, _, _ = _row(desk.url, sos)
        assert (status, resolved_by, outcome) == ("resolved", desk.responder_id,
                                                  plan.outcome.value)

        clock.set(clock() + timedelta(days=1))  # however late: nothing else is its to do
        assert responder.tick() == 0
    # A person's acknowledgement (battery_alice, care-north) is left alone; the other site's
    # alert (sos_carol, south) is out of the responder's scope.
    assert _row(desk.url, desk.world.battery_alice)[:3] == ("acknowledged", desk.world.care_north,
                                                            None)
    assert _row(desk.url, desk.world.sos_carol)[0] == "open"
    messages = [r.getMessage() for r in caplog.records if r.name == "simulators.responder"]
    assert sum(f"acknowledged alert {sos} " in m for m in messages) == 1
    assert sum(f"resolved alert {sos} " in m for m in messages) == 1
    assert sum(f"leaves alert {desk.world.battery_alice} " in m for m in messages) == 1


def test_a_person_who_acknowledges_first_wins_and_the_responder_leaves_the_alert(
        desk: Desk, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="simulators.responder")
    with db.connect(desk.url) as conn:
        fall = insert_alert(conn, desk.world.bob, "north", "fall", "critical", minutes_ago=1)
        conn.commit()
    created = _row(desk.url, fall)[4]
    clock = ManualClock(created)
    ticks = Ticks()
    with httpx.Client(timeout=10) as client:
        responder = _responder(desk, clock, ticks, client, list_every_s=3600.0)
        responder.tick()  # it has seen the fall open; its next listing is an hour away
        token = client.post(f"{desk.served.url}/api/v1/auth/token",
                            data={"username": "duty-north", "password": PASSWORD}).json()
        person = client.post(f"{desk.served.url}/api/v1/alerts/{fall}/ack",
                             headers={"Authorization": f"Bearer {token['access_token']}"})
        assert person.status_code == 200, person.text
        clock.set(created + timedelta(days=1))  # every plan is due: it tries, and loses
        responder.tick()
        ticks.now = 7200.0  # its next listing shows the person's acknowledgement
        responder.tick()
    status, acked_by, resolved_by, _, _, _ = _row(desk.url, fall)
    assert (status, acked_by, resolved_by) == ("acknowledged", desk.world.duty_north, None)
    messages = [r.getMessage() for r in caplog.records if r.name == "simulators.responder"]
    assert any(f"leaves alert {fall} (acknowledge): Already acknowledged by Dora Duty" in m
               for m in messages), messages


def test_run_answers_alerts_until_stopped(desk: Desk) -> None:
    """The loop the demo's `responder` part runs: it keeps ticking until told to stop."""
    sos = desk.world.sos_alice
    clock = ManualClock(_row(desk.url, sos)[4] + timedelta(days=1))  # every plan is due
    stop = threading.Event()
    with httpx.Client(timeout=10) as client:
        responder = Responder(desk.served.url,
                              [ResponderLogin("responder-north", PASSWORD, "north")],
                              seed=SEED, clock=clock, list_every_s=0.05, client=client)
        thread = threading.Thread(target=responder.run, args=(stop, 0.05), daemon=True)
        thread.start()
        try:
            wait_until(lambda: _row(desk.url, sos)[0] == "resolved", timeout=30,
                       what="the responder to resolve the SOS")
        finally:
            stop.set()
            thread.join(30)
        assert not thread.is_alive()
    assert responder.actions == 2  # one acknowledgement, one resolution

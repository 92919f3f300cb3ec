"""The district at a glance (dashboard/homes.py): the one state per home, its precedence (pure,
with an injected now) and GET /api/v1/homes/state on the real database with seeded homes in
every state, its filters, counts and scope."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.homes import HomeFacts, HomeState, home_state
from dashboard.vocabulary import vocabulary
from kernel import db
from tests.support.dashboard import insert_alert, login
from tests.support.home_states import seed_states

NOW = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

# -- the rule (pure) --------------------------------------------------------------------------

IN_BED = HomeFacts(latest=NOW - MIN, occupied=True)


@pytest.mark.parametrize(("facts", "state"), [
    (HomeFacts(), HomeState.NO_DATA),
    (IN_BED, HomeState.IN_BED),
    (HomeFacts(latest=NOW - MIN, occupied=False, occupied_recently=True), HomeState.UP),
    (HomeFacts(latest=NOW - MIN, occupied=False, occupied_recently=False), HomeState.AWAY),
    (replace(IN_BED, visit_overdue=True), HomeState.VISIT_OVERDUE),
    (replace(IN_BED, latest=NOW - 16 * MIN), HomeState.OFFLINE),   # silent bed sensor
    (replace(IN_BED, devices_offline=1, visit_overdue=True), HomeState.OFFLINE),
    (replace(IN_BED, active_alerts=1, devices_offline=1, visit_overdue=True), HomeState.ALERT),
    (HomeFacts(visit_overdue=True), HomeState.VISIT_OVERDUE),
])
def test_the_first_state_that_holds_wins(facts: HomeFacts, state: HomeState) -> None:
    assert home_state(facts, NOW) == state


def test_the_states_are_in_the_vocabulary_in_order_of_precedence() -> None:
    terms = vocabulary("en").home_states
    assert [t.value for t in terms] == [s.value for s in HomeState]
    assert all(t.label for t in terms)


# -- the endpoint -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_home_gets_its_state_with_counts_and_filters(client, world, clean_db):
    homes = seed_states(clean_db, world)
    headers = await login(client, "duty-north")
    resp = await client.get("/api/v1/homes/state", headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    got = {h["resident_id"]: h["state"] for h in body["homes"]}
    assert got == {homes["alert"]: "alert", homes["no_data"]: "no_data",
                   homes["offline"]: "offline", homes["silent"]: "offline",
                   homes["overdue"]: "visit_overdue", homes["in_bed"]: "in_bed",
                   homes["up"]: "up", homes["up_rollup"]: "up", homes["away"]: "away"}
    assert body["counts"] == {"alert": 1, "offline": 2, "visit_overdue": 1, "away": 1,
                              "up": 2, "in_bed": 1, "no_data": 1}
    alice = next(h for h in body["homes"] if h["resident_id"] == world.alice)
    assert (alice["active_alerts"], alice["top_severity"], alice["devices_offline"]) == (
        2, "critical", 1)  # the open SOS and the acknowledged low battery
    assert alice["site_timezone"] == "UTC"

    resp = await client.get("/api/v1/homes/state?risk=dementia&site=north", headers=headers)
    assert {h["resident_id"] for h in resp.json()["homes"]} == {homes["up"], homes["away"]}
    assert resp.json()["counts"]["up"] == 1 and resp.json()["counts"]["alert"] == 0


@pytest.mark.anyio
async def test_only_staff_and_only_their_site(client, world, clean_db):
    seed_states(clean_db, world)
    south = await login(client, "duty-south")
    resp = await client.get("/api/v1/homes/state", headers=south)
    assert [h["resident_id"] for h in resp.json()["homes"]] == [world.carol]
    assert resp.json()["counts"]["alert"] == 1
    resp = await client.get("/api/v1/homes/state?site=north", headers=south)
    assert resp.status_code == 403
    family = await login(client, "family-alice")
    assert (await client.get("/api/v1/homes/state", headers=family)).status_code == 403
    admin = await login(client, "admin")
    resp = await client.get("/api/v1/homes/state", headers=admin)
    assert len(resp.json()["homes"]) == 10
    assert (await client.get("/api/v1/homes/state")).status_code == 401


@pytest.mark.anyio
async def test_an_open_alert_carries_its_escalation_deadline_and_who_has_it(
        client, world, clean_db):
    with db.connect(clean_db) as conn:
        sos = insert_alert(conn, world.bob, "north", "sos", "critical", minutes_ago=1,
                           assigned_to=world.care_north)
        due = datetime.now(UTC) + timedelta(minutes=2)
        conn.execute("INSERT INTO alert_escalations (alert_id, step, audience, due_at, done_at)"
                     " VALUES (%s, 0, 'assigned', now(), now()),"
                     " (%s, 1, 'duty_officers', %s, NULL),"
                     " (%s, 2, 'site_workers', %s, NULL)",
                     (sos, sos, due, sos, due + timedelta(minutes=5)))
        conn.commit()
    headers = await login(client, "duty-north")
    listed = {a["id"]: a for a in (await client.get(
        "/api/v1/alerts?status=open&status=acknowledged", headers=headers)).json()}
    assert datetime.fromisoformat(listed[sos]["escalates_at"]) == due
    assert listed[sos]["assigned_name"] == "Carl Care"
    assert listed[world.battery_alice]["escalates_at"] is None  # acknowledged: no deadline
    assert listed[world.battery_alice]["acknowledged_name"] == "Carl Care"

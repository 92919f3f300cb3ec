"""The visits API on the real database: plans, due dates, recording, "go and check", the
family's view, and who may do what (role × route, site X vs Y, family of A vs B)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kernel import accounts, db, sites
from tests.support.dashboard import PASSWORD, login
from tests.support.visits import ALL_TICKED, completed_visit

pytestmark = pytest.mark.anyio

async def test_a_care_worker_records_a_visit_from_arrival_to_leaving(client, world):
    headers = await login(client, "care-north")
    resp = await client.post("/api/v1/visits", json={"resident_id": world.alice},
                             headers=headers)
    assert resp.status_code == 201, resp.text
    visit = resp.json()
    assert (visit["status"], visit["assigned_to"], visit["site_id"]) == (
        "planned", world.care_north, "north")
    assert visit["assigned_name"] == "Carl Care"
    url = f"/api/v1/visits/{visit['id']}"
    resp = await client.patch(url, json={"action": "leave"}, headers=headers)
    assert resp.status_code == 409
    assert resp.json()["detail"] == "Record your arrival first"
    resp = await client.patch(url, json={"action": "arrive"}, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "in_progress" and resp.json()["arrived_at"]
    resp = await client.patch(url, json={
        "checklist": {**ALL_TICKED, "medication": False}, "findings": "  Tablets left over ",
        "follow_up": True, "follow_up_note": "Ask the GP about the dosage"}, headers=headers)
    assert resp.status_code == 200, resp.text
    resp = await client.patch(url, json={"action": "leave"}, headers=headers)
    body = resp.json()
    assert body["status"] == "completed" and body["left_at"] >= body["arrived_at"]
    assert body["findings"] == "Tablets left over"
    assert body["checklist"]["medication"] is False and body["checklist"]["seen_well"] is True
    assert (body["follow_up"], body["follow_up_note"]) == (True, "Ask the GP about the dosage")
    resp = await client.patch(url, json={"action": "arrive"}, headers=headers)
    assert resp.status_code == 409
    plan = (await client.get(f"/api/v1/residents/{world.alice}/visit-plan",
                             headers=headers)).json()
    assert plan["last_visit_at"] == body["left_at"]
    assert plan["effective_interval_days"] == 30 and plan["overdue"] is False


async def test_bad_input_is_a_field_error(client, world):
    headers = await login(client, "duty-north")
    visit = (await client.post("/api/v1/visits", json={"resident_id": world.bob},
                               headers=headers)).json()
    url = f"/api/v1/visits/{visit['id']}"
    for body, field in (({"checklist": {"dance": True}}, "checklist"),
                        ({"findings": "a\x00b"}, "findings"),
                        ({"follow_up": "yes"}, "follow_up"),
                        ({"action": "fly"}, "action"),
                        ({"assigned_to": world.duty_south}, "assigned_to"),
                        ({"colour": "red"}, "colour")):
        resp = await client.patch(url, json=body, headers=headers)
        assert resp.status_code == 422, (body, resp.text)
        assert field in resp.text, body
    resp = await client.put("/api/v1/sites/north/visit-plan",
                            json={"interval_days": 0, "high_risk_interval_days": 7},
                            headers=headers)
    assert resp.status_code == 422 and "interval_days" in resp.text
    resp = await client.put(f"/api/v1/residents/{world.bob}/visit-plan",
                            json={"interval_days": 400}, headers=headers)
    assert resp.status_code == 422


async def test_the_site_default_and_the_residents_override_set_the_due_date(
        client, world, clean_db):
    completed_visit(clean_db, world.bob, "north", days_ago=10)
    headers = await login(client, "duty-north")
    due = {d["resident_id"]: d for d in (await client.get(
        "/api/v1/visits/due", headers=headers)).json()}
    assert set(due) == {world.alice, world.bob}  # their own site only
    assert (due[world.bob]["interval_days"], due[world.bob]["overdue"]) == (30, False)
    resp = await client.put("/api/v1/sites/north/visit-plan",
                            json={"interval_days": 14, "high_risk_interval_days": 7},
                            headers=headers)
    assert resp.json() == {"site_id": "north", "interval_days": 14,
                           "high_risk_interval_days": 7}
    resp = await client.put(f"/api/v1/residents/{world.bob}/visit-plan",
                            json={"interval_days": 7}, headers=headers)
    plan = resp.json()
    assert (plan["interval_days"], plan["site_interval_days"],
            plan["effective_interval_days"], plan["overdue"]) == (7, 14, 7, True)
    overdue = (await client.get("/api/v1/visits/due", params={"overdue": "true"},
                                headers=headers)).json()
    assert [d["resident_id"] for d in overdue] == [world.bob]
    assert overdue[0]["days_overdue"] >= 2
    resp = await client.put(f"/api/v1/residents/{world.bob}/visit-plan",
                            json={"interval_days": None}, headers=headers)
    assert resp.json()["effective_interval_days"] == 14


async def test_a_resident_with_a_risk_category_gets_the_sites_high_risk_interval(
        client, world, clean_db):
    headers = await login(client, "duty-north")
    await client.put("/api/v1/sites/north/visit-plan",
                     json={"interval_days": 30, "high_risk_interval_days": 7}, headers=headers)
    resp = await client.patch(f"/api/v1/residents/{world.bob}", json={"risks": ["dementia"]},
                              headers=headers)
    assert resp.status_code == 200, resp.text
    due = {d["resident_id"]: d for d in (await client.get(
        "/api/v1/visits/due", headers=headers)).json()}
    assert (due[world.bob]["interval_days"], due[world.alice]["interval_days"]) == (7, 30)
    plan = (await client.get(f"/api/v1/residents/{world.bob}/visit-plan",
                             headers=headers)).json()
    assert (plan["site_interval_days"], plan["effective_interval_days"]) == (7, 7)


async def test_a_visit_booked_for_a_past_date_is_overdue(client, world, clean_db):
    """A visit the duty officer booked for a date that has passed is overdue on the due
    list (and so on the duty screen's panel), whatever the plan's interval says."""
    headers = await login(client, "duty-north")
    today = (await client.get("/api/v1/visits/due", headers=headers)).json()
    due_alice = next(d for d in today if d["resident_id"] == world.alice)["due_on"]
    booked = (date.fromisoformat(due_alice) - timedelta(days=3)).isoformat()
    resp = await client.post("/api/v1/visits", json={"resident_id": world.alice,
                                                      "due_on": booked}, headers=headers)
    assert resp.status_code == 201, resp.text
    overdue = (await client.get("/api/v1/visits/due", params={"overdue": "true"},
                                headers=headers)).json()
    alice = [d for d in overdue if d["resident_id"] == world.alice]
    assert alice and alice[0]["due_on"] == booked and alice[0]["days_overdue"] >= 3


async def test_overdue_open_visits_are_listed(client, world, clean_db):
    headers = await login(client, "duty-north")
    today = (await client.post("/api/v1/visits", json={"resident_id": world.alice},
                               headers=headers)).json()
    late = (await client.post("/api/v1/visits", json={
        "resident_id": world.bob, "assigned_to": world.care_north,
        "due_on": (datetime.now(UTC) - timedelta(days=3)).date().isoformat()},
        headers=headers)).json()
    assert late["overdue"] is True and today["overdue"] is False
    listed = (await client.get("/api/v1/visits", params={"overdue": "true"},
                               headers=headers)).json()
    assert [v["id"] for v in listed] == [late["id"]]
    mine = (await client.get("/api/v1/visits", params={"worker": world.care_north},
                             headers=await login(client, "care-north"))).json()
    assert [v["id"] for v in mine] == [late["id"]]


async def test_go_and_check_from_an_alert(client, world):
    headers = await login(client, "care-north")
    resp = await client.post(f"/api/v1/alerts/{world.sos_alice}/visit", headers=headers)
    assert resp.status_code == 201, resp.text
    visit = resp.json()
    assert (visit["alert_id"], visit["resident_id"], visit["assigned_to"]) == (
        world.sos_alice, world.alice, world.care_north)
    assert visit["overdue"] is False
    resp = await client.post(f"/api/v1/alerts/{world.sos_alice}/visit", headers=headers)
    assert resp.status_code == 409
    listed = (await client.get("/api/v1/visits", params={"alert": world.sos_alice},
                               headers=headers)).json()
    assert [v["id"] for v in listed] == [visit["id"]]


async def test_the_family_reads_visits_in_their_own_words(client, world, clean_db):
    completed_visit(clean_db, world.alice, "north", days_ago=9, findings="Fridge empty")
    latest = completed_visit(clean_db, world.alice, "north", days_ago=2,
                             findings="Knee pain", follow_up=True)
    staff = await login(client, "duty-north")
    await client.post("/api/v1/visits", json={"resident_id": world.alice}, headers=staff)
    family = await login(client, "family-alice")
    resp = await client.get(f"/api/v1/residents/{world.alice}/visits", headers=family)
    assert resp.status_code == 200
    visits = resp.json()
    assert [set(v) for v in visits] == [{"id", "started_at", "ended_at", "summary"}] * 2
    assert visits[0]["id"] == latest  # newest first; the planned one is not shown
    assert [v["summary"] for v in visits] == [
        "A carer visited; the care team is following something up.",
        "A carer visited; all was well."]
    assert "Knee" not in resp.text and "GP" not in resp.text and "Carl" not in resp.text
    resp = await client.get(f"/api/v1/residents/{world.alice}/visits",
                            params={"limit": 1}, headers=family)
    assert len(resp.json()) == 1
    resp = await client.get(f"/api/v1/residents/{world.alice}/visits",
                            params={"limit": 51}, headers=family)
    assert resp.status_code == 422
    full = (await client.get(f"/api/v1/residents/{world.alice}/visits",
                             headers=staff)).json()
    assert len(full) == 3 and full[0]["status"] == "planned"
    assert full[1]["findings"] == "Knee pain"


# --- the database's own checks (who may call which route: test_role_matrix.py) -------------


def test_the_migration_refuses_a_completed_visit_without_times(clean_db):
    with db.connect(clean_db) as conn:
        sites.add_site(conn, "west", "West")
        rid = sites.add_resident(conn, "west", "Wanda West")
        conn.commit()
        with pytest.raises(Exception, match="check"):
            conn.execute("INSERT INTO visits (resident_id, site_id, status, due_on) "
                         "VALUES (%s, 'west', 'completed', '2026-01-01')", (rid,))


async def test_care_workers_record_only_their_own_visits(client, world, clean_db):
    with db.connect(clean_db) as conn:
        other = accounts.add_user(conn, "care-north-2", PASSWORD, "care_worker", "north")
        conn.commit()
    duty = await login(client, "duty-north")
    theirs = (await client.post("/api/v1/visits", json={
        "resident_id": world.alice, "assigned_to": other}, headers=duty)).json()
    open_one = (await client.post("/api/v1/visits", json={"resident_id": world.bob},
                                  headers=duty)).json()
    assert open_one["assigned_to"] is None
    care = await login(client, "care-north")
    resp = await client.patch(f"/api/v1/visits/{theirs['id']}", json={"action": "arrive"},
                              headers=care)
    assert resp.status_code == 403
    resp = await client.post("/api/v1/visits", json={
        "resident_id": world.alice, "assigned_to": other}, headers=care)
    assert resp.status_code == 403
    resp = await client.patch(f"/api/v1/visits/{open_one['id']}", json={"action": "arrive"},
                              headers=care)
    assert resp.json()["assigned_to"] == world.care_north  # arriving takes it
    resp = await client.patch(f"/api/v1/visits/{theirs['id']}", json={"action": "cancel"},
                              headers=duty)
    assert resp.json()["status"] == "cancelled"
    resp = await client.patch(f"/api/v1/visits/{theirs['id']}", json={"findings": "x"},
                              headers=duty)
    assert resp.status_code == 409


async def test_go_and_check_by_a_duty_officer_goes_to_the_alerts_assignee(
        client, world, clean_db):
    with db.connect(clean_db, autocommit=True) as conn:
        conn.execute("UPDATE alerts SET assigned_to = %s WHERE id = %s",
                     (world.care_north, world.sos_alice))
        conn.execute("UPDATE alerts SET assigned_to = %s WHERE id = %s",
                     (world.duty_south, world.battery_alice))  # not of her site
    duty = await login(client, "duty-north")
    resp = await client.post(f"/api/v1/alerts/{world.sos_alice}/visit", headers=duty)
    assert resp.json()["assigned_to"] == world.care_north
    resp = await client.post(f"/api/v1/alerts/{world.battery_alice}/visit", headers=duty)
    assert resp.status_code == 201 and resp.json()["assigned_to"] is None
    due = (await client.get("/api/v1/visits/due", headers=duty)).json()
    assert {d["resident_id"]: d["open_visit_assigned_to"] for d in due}[world.alice] \
        == world.care_north

"""The resident ledger and sites API (issue 13): create, edit, reveal, notes, timeline,
alert settings, filters, sites; who may do what."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kernel import accounts, db, ledger
from tests.support.dashboard import PASSWORD, World, login
from tests.support.visits import completed_visit

pytestmark = pytest.mark.anyio

NEW = {
    "site_id": "north", "full_name": "Dagny Dahl", "sex": "female", "birth_year": 1931,
    "address": "4 Fjord Road", "access_notes": "Key safe left of the door", "door_code": "4711",
    "phone": "+47 555 01 234", "living_situation": "alone", "risks": ["very_old", "alone"],
    "care_level": "3", "health_notes": "Hard of hearing", "gp": "Dr Lund, +47 555 09 999",
    "contacts": [{"name": "Erik Dahl", "relation": "son", "phone": "+47 555 11 111"},
                 {"name": "Frida Dahl", "relation": "daughter", "phone": "555 22 222",
                  "notified": False}],
    "new_consents": [{"kind": "monitoring", "granted": True, "given_by": "Dagny Dahl",
                      "given_on": "2026-01-05", "method": "signed paper form"}],
}


async def call(client: httpx.AsyncClient, user: str, method: str, path: str,
               **kwargs: Any) -> httpx.Response:
    headers = await login(client, user)
    return await client.request(method, path, headers=headers, **kwargs)


async def create(client: httpx.AsyncClient, user: str = "admin", **changes: Any) -> dict[str, Any]:
    resp = await call(client, user, "POST", "/api/v1/residents", json={**NEW, **changes})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_admin_creates_a_resident_with_the_whole_ledger_entry(client, world: World):
    body = await create(client)
    assert body["risks"] == ["very_old", "alone"] and body["status"] == "active"
    assert [c["name"] for c in body["contacts"]] == ["Erik Dahl", "Frida Dahl"]
    assert [c["position"] for c in body["contacts"]] == [1, 2]
    assert body["contacts"][1]["notified"] is False
    assert body["consents"][0]["method"] == "signed paper form"
    assert body["has_door_code"] is True and "door_code" not in body
    again = await call(client, "care-north", "GET", f"/api/v1/residents/{body['id']}")
    assert again.status_code == 200 and again.json()["gp"].startswith("Dr Lund")
    assert "door_code" not in again.json()


async def test_the_door_code_is_revealed_only_on_its_own_request_to_editors(client, world):
    rid = (await create(client))["id"]
    resp = await call(client, "duty-north", "POST", f"/api/v1/residents/{rid}/reveal-access")
    assert resp.status_code == 200 and resp.json()["door_code"] == "4711"
    denied = await call(client, "care-north", "POST", f"/api/v1/residents/{rid}/reveal-access")
    assert denied.status_code == 403
    other = await call(client, "duty-south", "POST", f"/api/v1/residents/{rid}/reveal-access")
    assert other.status_code == 404


async def test_patch_changes_only_what_was_sent_and_status_drives_active(client, world):
    rid = (await create(client))["id"]
    resp = await call(client, "duty-north", "PATCH", f"/api/v1/residents/{rid}",
                      json={"status": "in_hospital",
                            "contacts": [{"name": "Frida Dahl", "phone": "555 22 222"}]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "in_hospital" and body["active"] is True
    assert body["phone"] == NEW["phone"] and [c["name"] for c in body["contacts"]] == ["Frida Dahl"]
    resp = await call(client, "admin", "PATCH", f"/api/v1/residents/{rid}",
                      json={"status": "discharged"})
    assert resp.json()["active"] is False
    listed = await call(client, "admin", "GET", "/api/v1/residents")
    assert rid not in [r["id"] for r in listed.json()]
    listed = await call(client, "admin", "GET", "/api/v1/residents",
                        params={"status": "discharged"})
    assert [r["id"] for r in listed.json()] == [rid]


async def test_bad_fields_are_422_naming_each_field(client, world):
    rid = (await create(client))["id"]
    resp = await call(client, "admin", "PATCH", f"/api/v1/residents/{rid}",
                      json={"risks": ["lonely"], "phone": "call me", "birth_year": 1800,
                            "status": None})
    assert resp.status_code == 422
    fields = {e["loc"][-1] for e in resp.json()["errors"]}
    assert {"phone", "birth_year"} <= fields
    assert any("risks" in e["loc"] for e in resp.json()["errors"])
    resp = await call(client, "admin", "PATCH", f"/api/v1/residents/{rid}",
                      json={"full_name": "x\x00y"})
    assert resp.status_code == 422


async def test_filters_by_risk_status_site_and_text(client, world):
    rid = (await create(client))["id"]
    async def ids(**params: Any) -> list[int]:
        resp = await call(client, "admin", "GET", "/api/v1/residents", params=params)
        assert resp.status_code == 200, resp.text
        return [r["id"] for r in resp.json()]
    assert await ids(risk="very_old") == [rid]
    assert await ids(risk=["dementia", "alone"]) == [rid]
    assert await ids(risk="dementia") == []
    assert await ids(q="dagny") == [rid]
    assert await ids(q="fjord", site="north") == [world.alice, world.bob, rid]
    assert await ids(q="fjord", limit=1, offset=1) == [world.bob]
    assert await ids(q="100%") == []


async def test_family_keeps_the_old_shape_and_is_refused_the_ledger(client, world):
    resp = await call(client, "family-alice", "GET", f"/api/v1/residents/{world.alice}")
    assert resp.status_code == 200 and "status" not in resp.json()
    for method, path in (("GET", f"/api/v1/residents/{world.alice}/timeline"),
                         ("GET", f"/api/v1/residents/{world.alice}/notes"),
                         ("GET", f"/api/v1/residents/{world.alice}/alert-settings"),
                         ("POST", "/api/v1/residents"),
                         ("GET", "/api/v1/sites")):
        resp = await call(client, "family-alice", method, path, json=NEW)
        assert resp.status_code == 403, (path, resp.text)


async def test_notes_and_the_timeline(client, world, clean_db):
    completed_visit(clean_db, world.alice, "north", days_ago=2, findings="Kitchen tap leaks",
                    follow_up=True)
    resp = await call(client, "duty-north", "POST", f"/api/v1/residents/{world.alice}/notes",
                      json={"body": "Daughter visits on Sundays"})
    assert resp.status_code == 201, resp.text
    notes = await call(client, "care-north", "GET", f"/api/v1/residents/{world.alice}/notes")
    assert [n["body"] for n in notes.json()] == ["Daughter visits on Sundays"]
    assert (await call(client, "care-north", "POST", f"/api/v1/residents/{world.alice}/notes",
                       json={"body": "x"})).status_code == 403
    timeline = await call(client, "care-north", "GET",
                          f"/api/v1/residents/{world.alice}/timeline")
    kinds = [e["kind"] for e in timeline.json()]
    assert kinds.count("alert") == 2 and kinds.count("device_added") == 2 and "note" in kinds
    visit = next(e for e in timeline.json() if e["kind"] == "visit")
    assert (visit["summary"], visit["detail"]) == ("follow-up needed",
                                                   "Kitchen tap leaks / call the GP")
    assert (await call(client, "duty-south", "GET",
                       f"/api/v1/residents/{world.alice}/timeline")).status_code == 404


async def test_alert_settings_are_validated_field_by_field(client, world):
    path = f"/api/v1/residents/{world.alice}/alert-settings"
    resp = await call(client, "duty-north", "PUT", path,
                      json={"heart_rate": {"urgent_at_or_above": "fast"}})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["loc"][:3] == ["body", "heart_rate", "urgent_at_or_above"]
    good = {"heart_rate": {"urgent_at_or_above": 140}}
    resp = await call(client, "duty-north", "PUT", path, json=good)
    assert resp.status_code == 200, resp.text
    assert resp.json()["effective"]["heart_rate"]["urgent_at_or_above"] == 140
    assert (await call(client, "care-north", "GET", path)).json()["override"] == good
    assert (await call(client, "care-north", "PUT", path, json=good)).status_code == 403
    resp = await call(client, "admin", "PUT", path, json={})
    assert resp.json()["override"] is None


async def test_sites_admin_creates_and_edits_staff_see_their_own(client, world):
    resp = await call(client, "admin", "POST", "/api/v1/sites",
                      json={"id": "east", "name": "East", "timezone": "Asia/Shanghai",
                            "address": "9 Dong Road"})
    assert resp.status_code == 201, resp.text
    again = await call(client, "admin", "POST", "/api/v1/sites",
                       json={"id": "east", "name": "East"})
    assert again.status_code == 409
    bad = await call(client, "admin", "PATCH", "/api/v1/sites/east",
                     json={"timezone": "Mars/Olympus"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"][-1] == "timezone"
    resp = await call(client, "admin", "PATCH", "/api/v1/sites/east", json={"name": "East End"})
    assert resp.json()["name"] == "East End" and resp.json()["timezone"] == "Asia/Shanghai"
    assert [s["id"] for s in (await call(client, "duty-north", "GET", "/api/v1/sites")).json()
            ] == ["north"]
    assert (await call(client, "duty-north", "GET", "/api/v1/sites/south")).status_code == 404
    assert (await call(client, "duty-north", "PATCH", "/api/v1/sites/north",
                       json={"name": "N"})).status_code == 403
    assert (await call(client, "admin", "PATCH", "/api/v1/sites/nowhere",
                       json={"name": "N"})).status_code == 404


async def test_a_site_has_the_language_of_its_group_channels(client, world):
    """Created with one (or English), changed alone, listed; one the platform does not speak
    is a 422 naming `language`, never a 500 from the database."""
    resp = await call(client, "admin", "POST", "/api/v1/sites",
                      json={"id": "east", "name": "East", "timezone": "Asia/Shanghai",
                            "language": "zh-CN"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["language"] == "zh-CN"
    plain = await call(client, "admin", "POST", "/api/v1/sites", json={"id": "west", "name": "W"})
    assert plain.json()["language"] == "en"
    bad = await call(client, "admin", "POST", "/api/v1/sites",
                     json={"id": "far", "name": "Far", "language": "fr"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"][-1] == "language", bad.text
    bad = await call(client, "admin", "PATCH", "/api/v1/sites/east", json={"language": "fr"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"][-1] == "language", bad.text
    null = await call(client, "admin", "PATCH", "/api/v1/sites/east", json={"language": None})
    assert null.status_code == 422
    resp = await call(client, "admin", "PATCH", "/api/v1/sites/east", json={"language": "en"})
    assert resp.status_code == 200 and resp.json()["language"] == "en"
    assert resp.json()["timezone"] == "Asia/Shanghai"
    listed = (await call(client, "admin", "GET", "/api/v1/sites")).json()
    assert {s["id"]: s["language"] for s in listed} == {"east": "en", "west": "en",
                                                        "north": "en", "south": "en"}
    assert (await call(client, "duty-north", "PATCH", "/api/v1/sites/north",
                       json={"language": "zh-CN"})).status_code == 403


async def test_send_test_goes_through_the_real_webhook_sender(world, clean_db):
    from alerts.notify.settings import NotifySettings
    from dashboard.app import create_app
    from tests.alerts.notify.receivers import Receiver
    from tests.support.dashboard import SECRET

    receiver = Receiver()
    app = create_app(clean_db, SECRET,
                     notify_settings=NotifySettings(allow_private_targets=True))
    try:
        async with (app.router.lifespan_context(app),
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url="http://dashboard.test") as client):
            auth = await login(client, "duty-north")
            made = await client.post("/api/v1/sites/north/channels", headers=auth,
                                     json={"kind": "webhook", "target": receiver.url("/hook")})
            assert made.status_code == 201, made.text
            cid = made.json()["id"]
            resp = await client.post(f"/api/v1/sites/north/channels/{cid}/test", headers=auth)
            assert resp.status_code == 200 and resp.json()["sent"] is True, resp.text
            [got] = receiver.received("/hook")
            assert "Test message for site north" in got.body.decode()
            # the group reads it in its site's language, whatever the tester reads
            with db.connect(clean_db, autocommit=True) as conn:
                conn.execute("UPDATE sites SET language = 'zh-CN' WHERE id = 'north'")
            resp = await client.post(f"/api/v1/sites/north/channels/{cid}/test", headers=auth)
            assert resp.json()["sent"] is True, resp.text
            chinese = receiver.received("/hook")[-1].body.decode()
            assert "站点 north" in chinese and "Test message" not in chinese, chinese
            with db.connect(clean_db, autocommit=True) as conn:
                conn.execute("UPDATE sites SET language = 'en' WHERE id = 'north'")
            receiver.script("/hook", (500, {}))
            resp = await client.post(f"/api/v1/sites/north/channels/{cid}/test", headers=auth)
            assert resp.json()["sent"] is False and "500" in resp.json()["detail"]
            other = await client.post(f"/api/v1/sites/north/channels/{cid}/test",
                                      headers=await login(client, "duty-south"))
            assert other.status_code == 403
            wrong = await client.post(f"/api/v1/sites/south/channels/{cid}/test",
                                      headers=await login(client, "admin"))
            assert wrong.status_code == 404
    finally:
        receiver.close()


async def test_a_birth_date_gives_the_birth_year(client, world):
    rid = (await create(client, birth_year=None))["id"]
    resp = await call(client, "admin", "PATCH", f"/api/v1/residents/{rid}",
                      json={"birth_date": "1930-02-03", "birth_year": None})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["birth_date"], resp.json()["birth_year"]) == ("1930-02-03", 1930)
    resp = await call(client, "admin", "PATCH", f"/api/v1/residents/{rid}",
                      json={"birth_date": "1930-02-03", "birth_year": 1931})
    assert resp.status_code == 422 and "disagree" in resp.text


@pytest.mark.parametrize(("year", "ok"), [
    (ledger.MIN_BIRTH_YEAR - 1, False), (ledger.MIN_BIRTH_YEAR, True),
    (ledger.MAX_BIRTH_YEAR, True), (ledger.MAX_BIRTH_YEAR + 1, False)])
async def test_birth_year_edges_are_the_ledgers(client, world, year: int, ok: bool):
    """The web form refuses exactly what the import refuses (kernel.ledger's limits;
    tests/gateway/test_bulk_import.py checks the import's side with the same edges)."""
    resp = await call(client, "admin", "POST", "/api/v1/residents",
                      json={"site_id": "north", "full_name": "Edge", "birth_year": year})
    assert resp.status_code == (201 if ok else 422), resp.text
    if not ok:
        assert [e["loc"] for e in resp.json()["errors"]] == [["body", "birth_year"]]


@pytest.mark.parametrize(("column", "limit"), [
    ("full_name", ledger.MAX_FULL_NAME), ("address", ledger.MAX_ADDRESS)])
async def test_text_lengths_are_the_ledgers(client, world, column: str, limit: int):
    for length, code in ((limit, 201), (limit + 1, 422)):
        resp = await call(client, "admin", "POST", "/api/v1/residents",
                          json={"site_id": "north", "full_name": "A", column: "y" * length})
        assert resp.status_code == code, (column, length)


async def test_a_care_worker_reads_the_numbers_to_call_of_their_sites_residents_only(
        client, world: World, clean_db):
    """The phone page's "Call or find the way" (static/reach.js): a care worker reads a
    resident's phone, address and emergency contacts (name, relation, phone) in calling order
    for their own site; another site's care worker gets 404, family the old shape without
    contacts."""
    rid = (await create(client))["id"]  # Dagny Dahl at north, contacts son then daughter
    with db.connect(clean_db, autocommit=True) as conn:
        accounts.add_user(conn, "care-south", PASSWORD, "care_worker", "south")
    resp = await call(client, "care-north", "GET", f"/api/v1/residents/{rid}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["phone"], body["address"]) == ("+47 555 01 234", "4 Fjord Road")
    assert [(c["position"], c["name"], c["relation"], c["phone"]) for c in body["contacts"]] == [
        (1, "Erik Dahl", "son", "+47 555 11 111"), (2, "Frida Dahl", "daughter", "555 22 222")]
    assert (await call(client, "care-south", "GET", f"/api/v1/residents/{rid}")
            ).status_code == 404
    family = await call(client, "family-alice", "GET", f"/api/v1/residents/{world.alice}")
    assert family.status_code == 200 and "contacts" not in family.json()


async def test_the_timeline_shows_device_moves_and_revocations(client, world, clean_db):
    """Device changes from device_history (as gateway.device_lifecycle writes it): the
    button moved from Alice to Bob leaves Alice's timeline and joins Bob's; the revoked bed
    sensor is shown as removed."""
    with db.connect(clean_db, autocommit=True) as conn:
        conn.execute("INSERT INTO device_history (device_id, action, site_id, resident_id, "
                     "from_site_id, from_resident_id, actor) "
                     "VALUES ('btn-alice', 'move', 'north', %s, 'north', %s, 'ada')",
                     (world.bob, world.alice))
        conn.execute("INSERT INTO device_history (device_id, action, site_id, resident_id, "
                     "actor) VALUES ('bed-alice', 'revoke', 'north', %s, 'ada')",
                     (world.alice,))
    alice = (await call(client, "duty-north", "GET",
                        f"/api/v1/residents/{world.alice}/timeline")).json()
    bob = (await call(client, "duty-north", "GET",
                      f"/api/v1/residents/{world.bob}/timeline")).json()
    devices = {(e["kind"], e["ref"], e["detail"]) for e in alice if e["kind"].startswith("device")}
    assert devices == {("device_removed", "btn-alice", "moved to another resident"),
                       ("device_removed", "bed-alice", "revoked")}
    assert ("device_added", "btn-alice", "moved here from another resident") in {
        (e["kind"], e["ref"], e["detail"]) for e in bob}

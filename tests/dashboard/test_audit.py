"""The audit trail through the API: what is recorded, and the admin's search and export."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from kernel import audit, db
from tests.support.dashboard import PASSWORD, World, login

pytestmark = pytest.mark.anyio

TOKEN_URL = "/api/v1/auth/token"


def _records(url: str, where: str = "true") -> list[dict[str, Any]]:
    with db.connect(url, autocommit=True) as conn:
        cur = conn.execute("SELECT actor, actor_id, address, action, target_type, target_id, "
                           f"resident_id, outcome, detail FROM audit_log WHERE {where} "
                           "ORDER BY id")
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


async def test_a_workers_reads_are_recorded_with_actor_address_and_outcome(
        client: httpx.AsyncClient, world: World, clean_db: str) -> None:
    headers = await login(client, "care-north")
    assert (await client.get(f"/api/v1/residents/{world.alice}/vitals",
                             headers=headers)).status_code == 200
    assert (await client.get(f"/api/v1/alerts?resident={world.alice}",
                             headers=headers)).status_code == 200
    assert (await client.get(f"/api/v1/alerts/{world.sos_alice}",
                             headers=headers)).status_code == 200
    assert (await client.get(f"/api/v1/residents/{world.carol}",  # another site: 404
                             headers=headers)).status_code == 404
    rows = _records(clean_db)
    assert [(r["action"], r["outcome"]) for r in rows] == [
        ("auth.login", "ok"), ("vitals.read", "ok"), ("alert.list", "ok"),
        ("alert.read", "ok"), ("resident.read", "denied")]
    assert {(r["actor"], r["actor_id"], r["address"]) for r in rows} == {
        ("care-north", world.care_north, "127.0.0.1")}
    assert [(r["target_type"], r["target_id"], r["resident_id"]) for r in rows[1:]] == [
        ("resident", str(world.alice), world.alice), ("alert", None, world.alice),
        ("alert", str(world.sos_alice), world.alice),
        ("resident", str(world.carol), world.carol)]
    assert world.sos_alice in rows[2]["detail"]["alerts"]
    assert rows[4]["detail"] == {"status": 404}


async def test_logins_are_recorded_success_and_failure(client: httpx.AsyncClient, world: World,
                                                       clean_db: str) -> None:
    await client.post(TOKEN_URL, data={"username": "duty-north", "password": "wrong one"})
    await client.post(TOKEN_URL, data={"username": "nobody", "password": "wrong one"})
    await login(client, "duty-north")
    rows = _records(clean_db)
    assert [(r["actor"], r["actor_id"], r["outcome"], r["detail"]) for r in rows] == [
        ("duty-north", world.duty_north, "denied", {"reason": "bad username or password"}),
        ("nobody", None, "denied", {"reason": "bad username or password"}),
        ("duty-north", world.duty_north, "ok", {}),
    ]


async def test_changes_record_before_and_after(client: httpx.AsyncClient, world: World,
                                               clean_db: str) -> None:
    headers = await login(client, "care-north")
    resp = await client.post(f"/api/v1/alerts/{world.sos_alice}/ack", headers=headers,
                             json={"note": "on my way"})
    assert resp.status_code == 200
    resp = await client.post(f"/api/v1/alerts/{world.sos_alice}/ack", headers=headers)
    assert resp.status_code == 409
    acks = _records(clean_db, "action = 'alert.ack'")
    assert acks[0]["outcome"] == "ok" and acks[0]["resident_id"] == world.alice
    assert acks[0]["detail"] == {"before": {"status": "open"},
                                 "after": {"status": "acknowledged", "note": "on my way"}}
    assert acks[1]["outcome"] == "error" and acks[1]["detail"]["status"] == 409


async def test_only_admins_search_and_the_attempt_is_recorded(
        client: httpx.AsyncClient, world: World, clean_db: str) -> None:
    for username in ("duty-north", "care-north", "family-alice"):
        headers = await login(client, username)
        assert (await client.get("/api/v1/audit", headers=headers)).status_code == 403
        assert (await client.get("/api/v1/audit/export", headers=headers)).status_code == 403
    denied = _records(clean_db, "action LIKE 'audit.%'")
    assert len(denied) == 6 and {r["outcome"] for r in denied} == {"denied"}
    admin = await login(client, "admin")
    assert (await client.get("/api/v1/audit", headers=admin)).status_code == 200


async def test_search_filters_and_pages(client: httpx.AsyncClient, world: World,
                                        clean_db: str) -> None:
    worker = await login(client, "care-north")
    for _ in range(3):
        await client.get(f"/api/v1/residents/{world.alice}/vitals", headers=worker)
    await client.get(f"/api/v1/residents/{world.bob}/vitals", headers=worker)
    admin = await login(client, "admin")
    query = {"actor": "CARE-NORTH", "resident": world.alice, "action": "vitals.read",
             "outcome": "ok", "limit": 2}
    first = await client.get("/api/v1/audit", params=query, headers=admin)
    assert first.status_code == 200
    page = first.json()
    assert len(page) == 2 and page[0]["id"] > page[1]["id"]
    assert {(e["actor"], e["resident_id"]) for e in page} == {("care-north", world.alice)}
    link = first.headers["Link"]
    second = await client.get(link[1:link.index(">")], headers=admin)
    assert [e["resident_id"] for e in second.json()] == [world.alice]
    assert "Link" not in second.headers
    bad = await client.get("/api/v1/audit", params={"action": "nonsense"}, headers=admin)
    assert bad.status_code == 422 and "action" in bad.json()["detail"]
    bad = await client.get("/api/v1/audit", params={"since": "2026-01-02T00:00:00Z",
                                                    "until": "2026-01-01T00:00:00Z"},
                           headers=admin)
    assert bad.status_code == 422


async def test_export_is_csv_and_is_itself_recorded(client: httpx.AsyncClient, world: World,
                                                    clean_db: str) -> None:
    worker = await login(client, "care-north")
    await client.get(f"/api/v1/residents/{world.alice}", headers=worker)
    admin = await login(client, "admin")
    resp = await client.get("/api/v1/audit/export", params={"actor": "care-north"},
                            headers=admin)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["action"] for r in rows] == ["resident.read", "auth.login"]
    export = _records(clean_db, "action = 'audit.export'")
    assert export[0]["actor"] == "admin"
    assert export[0]["detail"]["rows"] == 2
    assert export[0]["detail"]["filters"] == {"actor": "care-north"}
    with db.connect(clean_db, autocommit=True) as conn:
        assert audit.verify(conn).intact


async def test_the_address_honours_only_trusted_proxies(client: httpx.AsyncClient,
                                                        world: World, clean_db: str) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 4711)),
            base_url="http://dashboard.test") as elsewhere:
        resp = await elsewhere.post(TOKEN_URL, data={"username": "admin",
                                                     "password": PASSWORD},
                                    headers={"X-Forwarded-For": "10.9.9.9"})
        assert resp.status_code == 200
    assert _records(clean_db)[0]["address"] == "203.0.113.9"


async def test_opening_the_live_feed_is_recorded(world: World, clean_db: str) -> None:
    from dashboard.app import create_app
    from tests.support.dashboard import SECRET
    from tests.support.live import live, open_stream, running_server, token_for
    from tests.support.wait import wait_until

    app = create_app(clean_db, SECRET)
    with running_server(app) as srv:
        wait_until(lambda: live(app).database_up, what="the live feed's database")
        async with httpx.AsyncClient(base_url=srv.url) as http:
            token = await token_for(http, "care-north")
            async with open_stream(http, token):
                pass
    streams = _records(clean_db, "action = 'alert.stream'")
    assert [(r["actor"], r["outcome"]) for r in streams] == [("care-north", "ok")]


async def test_visits_are_recorded_with_before_and_after(client: httpx.AsyncClient,
                                                         world: World, clean_db: str) -> None:
    headers = await login(client, "care-north")
    resp = await client.post("/api/v1/visits", json={"resident_id": world.alice},
                             headers=headers)
    visit = resp.json()["id"]
    url = f"/api/v1/visits/{visit}"
    await client.patch(url, json={"action": "arrive"}, headers=headers)
    await client.patch(url, json={"findings": "All well"}, headers=headers)
    await client.get(f"/api/v1/residents/{world.alice}/visits", headers=headers)
    await client.get(f"/api/v1/residents/{world.carol}/visits", headers=headers)  # other site
    rows = _records(clean_db, "action LIKE 'visit%'")
    assert [(r["action"], r["target_type"], r["target_id"], r["resident_id"], r["outcome"])
            for r in rows] == [
        ("visit.create", "visit", str(visit), world.alice, "ok"),
        ("visit.change", "visit", str(visit), world.alice, "ok"),
        ("visit.change", "visit", str(visit), world.alice, "ok"),
        ("visit.read", "resident", str(world.alice), world.alice, "ok"),
        ("visit.read", "resident", str(world.carol), world.carol, "denied")]
    assert rows[1]["detail"]["before"]["status"] == "planned"
    assert rows[1]["detail"]["after"]["status"] == "in_progress"
    assert rows[2]["detail"] == {"before": {"findings": ""}, "after": {"findings": "All well"}}


async def test_export_gives_each_time_in_the_sites_zone_beside_the_utc_one(
        client: httpx.AsyncClient, world: World, clean_db: str) -> None:
    """Issue 14: people read the site's time (`site_time`, 24 h); `at` stays ISO 8601 UTC."""
    with db.connect(clean_db) as conn:
        conn.execute("UPDATE sites SET timezone = 'Asia/Shanghai'")
        conn.commit()
    worker = await login(client, "care-north")
    await client.get(f"/api/v1/residents/{world.alice}", headers=worker)
    admin = await login(client, "admin")
    resp = await client.get("/api/v1/audit/export", params={"actor": "care-north"},
                            headers=admin)
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert rows
    for row in rows:
        at = datetime.fromisoformat(row["at"])
        assert at.utcoffset() == timedelta(0)
        assert row["timezone"] == "Asia/Shanghai"
        assert row["site_time"] == at.astimezone(ZoneInfo("Asia/Shanghai")).strftime(
            "%Y-%m-%d %H:%M")


async def test_refusals_record_their_own_status_not_500(client: httpx.AsyncClient,
                                                        world: World, clean_db: str) -> None:
    """A refused change (wrong current password 400, taken name 409, invalid body 422) is
    recorded with the status the client got (the new-user trial found 500 for all)."""
    headers = await login(client, "admin")
    answers = [
        (await client.post("/api/v1/me/password", headers=headers, json={
            "current_password": "not my password", "new_password": "a brand new passphrase 9"}
                           )).status_code,
        (await client.post("/api/v1/users", headers=headers, json={
            "username": "duty-north", "role": "admin", "full_name": "Again"})).status_code,
        (await client.post("/api/v1/users", headers=headers, json={
            "username": "x", "role": "no such role"})).status_code]
    assert answers == [400, 409, 422]
    rows = _records(clean_db, "action IN ('user.password_change', 'user.create')")
    assert [(r["action"], r["outcome"], r["detail"].get("status")) for r in rows] == [
        ("user.password_change", "error", 400), ("user.create", "error", 409),
        ("user.create", "error", 422)]

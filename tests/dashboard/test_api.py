"""Residents and alerts API: role scope, filters, validation and health."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dashboard import deps
from dashboard import health as dashboard_health
from dashboard.models import FamilyAlertOut
from eldercare.embedded import free_port
from kernel import db
from tests.support.dashboard import (
    STAFF_FIELDS,
    STAFF_TEXT,
    World,
    app_client,
    insert_alert,
    login,
)

pytestmark = pytest.mark.anyio


async def get(client: httpx.AsyncClient, user: str, path: str, **params: Any) -> Any:
    resp = await client.get(path, params=params, headers=await login(client, user))
    assert resp.status_code == 200, resp.text
    return resp.json()


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


# --- scope ------------------------------------------------------------------------


async def test_admin_sees_residents_and_alerts_of_both_sites(client, world):
    residents = await get(client, "admin", "/api/v1/residents")
    assert {r["site_id"] for r in residents} == {"north", "south"}
    assert set(ids(residents)) == {world.alice, world.bob, world.carol}
    alerts = await get(client, "admin", "/api/v1/alerts")
    # newest first
    assert ids(alerts) == [world.sos_carol, world.sos_alice, world.battery_alice, world.fall_bob]


async def test_residents_carry_devices_and_open_alert_count(client, world):
    residents = {r["id"]: r for r in await get(client, "admin", "/api/v1/residents")}
    alice = residents[world.alice]
    assert alice["full_name"] == "Alice Andersen"
    assert alice["address"] == "1 Fjord Road"
    assert alice["site_id"] == "north"
    assert alice["open_alerts"] == 1  # the acknowledged low-battery alert is not 'open'
    devices = {d["id"]: d for d in alice["devices"]}
    assert devices["btn-alice"]["type"] == "call_button"
    assert devices["btn-alice"]["online"] is True
    assert devices["btn-alice"]["battery"] == 85
    assert devices["bed-alice"]["online"] is False
    assert devices["bed-alice"]["last_seen"] is not None
    assert residents[world.bob]["open_alerts"] == 0
    assert residents[world.bob]["devices"] == []
    carol_button = residents[world.carol]["devices"][0]
    assert carol_button["online"] is None and carol_button["battery"] is None


async def test_care_worker_sees_only_own_site(client, world):
    residents = await get(client, "care-north", "/api/v1/residents")
    assert set(ids(residents)) == {world.alice, world.bob}
    alerts = await get(client, "care-north", "/api/v1/alerts")
    assert set(ids(alerts)) == {world.sos_alice, world.battery_alice, world.fall_bob}
    assert {a["site_id"] for a in alerts} == {"north"}


async def test_duty_officer_sees_only_own_site(client, world):
    assert ids(await get(client, "duty-south", "/api/v1/residents")) == [world.carol]
    assert ids(await get(client, "duty-south", "/api/v1/alerts")) == [world.sos_carol]


async def test_staff_asking_for_another_site_get_403(client, world):
    headers = await login(client, "care-north")
    for path in ("/api/v1/residents", "/api/v1/alerts"):
        resp = await client.get(path, params={"site": "south"}, headers=headers)
        assert resp.status_code == 403
        assert resp.json()["detail"] == (
            "You can only see site 'north'; site 'south' is outside your access")
    assert len(await get(client, "care-north", "/api/v1/residents", site="north")) == 2


async def test_admin_site_filter(client, world):
    assert ids(await get(client, "admin", "/api/v1/residents", site="south")) == [world.carol]
    assert ids(await get(client, "admin", "/api/v1/alerts", site="south")) == [world.sos_carol]


async def test_family_sees_only_their_relative(client, world):
    assert ids(await get(client, "family-alice", "/api/v1/residents")) == [world.alice]
    alerts = await get(client, "family-alice", "/api/v1/alerts")
    assert ids(alerts) == [world.sos_alice, world.battery_alice]
    assert {a["resident_name"] for a in alerts} == {"Alice Andersen"}
    # a site filter only narrows their own residents
    assert ids(await get(client, "family-alice", "/api/v1/residents", site="south")) == []


async def test_family_asking_for_another_residents_alert_is_denied(client, world):
    headers = await login(client, "family-alice")
    for alert_id in (world.fall_bob, world.sos_carol):
        resp = await client.get(f"/api/v1/alerts/{alert_id}", headers=headers)
        assert resp.status_code == 404
        assert resp.json()["detail"] == "Alert not found"
    for resident_id in (world.bob, world.carol):
        resp = await client.get(f"/api/v1/residents/{resident_id}", headers=headers)
        assert resp.status_code == 404
        resp = await client.get("/api/v1/alerts", params={"resident": resident_id}, headers=headers)
        assert resp.status_code == 404
        assert resp.json()["detail"] == "Resident not found"


async def test_out_of_scope_is_indistinguishable_from_missing(client, world):
    headers = await login(client, "care-north")
    hidden = await client.get(f"/api/v1/alerts/{world.sos_carol}", headers=headers)
    missing = await client.get("/api/v1/alerts/999999", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


async def test_alert_detail_with_history(client, world):
    detail = await get(client, "duty-north", f"/api/v1/alerts/{world.fall_bob}")
    assert detail["resident_name"] == "Bob Berg"
    assert detail["status"] == "resolved"
    assert detail["resolved_by"] == world.duty_north
    assert detail["outcome"] == "false_alarm"
    assert detail["note"] == "Sensor knocked over"
    assert [h["action"] for h in detail["history"]] == ["opened", "acknowledged", "resolved"]
    assert detail["history"][1]["actor_id"] == world.duty_north
    sos = await get(client, "duty-north", f"/api/v1/alerts/{world.sos_alice}")
    assert sos["details"] == {"detail": "long press"}
    assert sos["history"] == []


# --- what family members see ---------------------------------------------------------


def _staff_history(database_url: str, world: World) -> int:
    """A resolved fall of Alice's with the internal record a real one gets."""
    with db.connect(database_url) as conn:
        alert_id = insert_alert(
            conn, world.alice, "north", "fall", "critical", status="resolved", minutes_ago=90,
            assigned_to=world.care_north, acknowledged_by=world.care_north,
            acknowledged_at=datetime.now(UTC), resolved_by=world.duty_north,
            resolved_at=datetime.now(UTC), outcome="assisted_at_home",
            note="Fell while drunk again; spoke to GP", details={"assignee": "care-north"})
        for action, status, actor_id, actor, note in (
                ("opened", "open", None, "system", "fall detected by bed-alice"),
                ("assigned", "open", None, "system",
                 f"assigned to care-north (user {world.care_north}, 0 other active alert(s))"),
                ("notified assigned", "open", None, "system", "care-north by webpush"),
                ("acknowledged", "acknowledged", world.care_north, "care-north", "on my way"),
                ("resolved", "resolved", world.duty_north, "duty-north",
                 "Fell while drunk again; spoke to GP")):
            conn.execute("INSERT INTO alert_history (alert_id, action, actor_id, actor, status, "
                         "note) VALUES (%s, %s, %s, %s, %s, %s)",
                         (alert_id, action, actor_id, actor, status, note))
        conn.commit()
    return alert_id


def _no_staff_internals(body: Any) -> None:
    text = json.dumps(body)
    for word in STAFF_TEXT:
        assert word not in text, word
    items = body if isinstance(body, list) else [body, *body.get("history", [])]
    for item in items:
        assert not STAFF_FIELDS & set(item), item


async def test_family_gets_a_family_view_without_staff_internals(client, world, clean_db):
    fall = _staff_history(clean_db, world)
    listed = await get(client, "family-alice", "/api/v1/alerts")
    _no_staff_internals(listed)
    assert set(listed[0]) == set(FamilyAlertOut.model_fields)
    by_id = {a["id"]: a for a in listed}
    assert by_id[fall]["summary"] == "Resolved: a carer helped at home"
    assert by_id[world.sos_alice]["summary"] == "The care team has been alerted"
    assert by_id[world.battery_alice]["summary"] == "A carer is responding"
    for alert_id in (fall, world.sos_alice, world.battery_alice):
        detail = await get(client, "family-alice", f"/api/v1/alerts/{alert_id}")
        _no_staff_internals(detail)
    detail = await get(client, "family-alice", f"/api/v1/alerts/{fall}")
    assert [h["event"] for h in detail["history"]] == [
        "The care team was alerted", "A carer is responding", "Resolved: a carer helped at home"]
    assert detail["outcome"] == "assisted_at_home"
    assert detail["resolved_at"] is not None
    # Staff still see the whole record.
    staff = await get(client, "duty-north", f"/api/v1/alerts/{fall}")
    assert staff["note"] == "Fell while drunk again; spoke to GP"
    assert staff["assigned_to"] == world.care_north
    assert "assigned" in [h["action"] for h in staff["history"]]


async def test_single_resident(client, world):
    alice = await get(client, "family-alice", f"/api/v1/residents/{world.alice}")
    assert alice["full_name"] == "Alice Andersen"
    assert len(alice["devices"]) == 2


# --- filters -----------------------------------------------------------------------


async def test_alert_item_has_every_field(client, world):
    items = await get(client, "admin", "/api/v1/alerts", resident=world.alice,
                      type="low_battery")
    item = items[0]
    assert set(item) == {
        "id", "resident_id", "resident_name", "site_id", "device_id", "type", "severity",
        "status", "opened_at", "created_at", "last_seen", "count", "assigned_to",
        "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at", "outcome", "note",
        "escalates_at", "assigned_name", "acknowledged_name", "site_timezone"}
    assert item["acknowledged_by"] == world.care_north
    assert item["acknowledged_at"] is not None
    assert item["device_id"] == "bed-alice"


async def test_alert_rows_carry_their_sites_time_zone(client, world, clean_db):
    """Every alert says its site's zone (issue 14: pages show its times in it, never the
    browser's): the list, the detail and an action's answer alike."""
    with db.connect(clean_db, autocommit=True) as conn:
        conn.execute("UPDATE sites SET timezone = 'Asia/Shanghai' WHERE id = 'north'")
        conn.execute("UPDATE sites SET timezone = 'Asia/Urumqi' WHERE id = 'south'")
    items = await get(client, "admin", "/api/v1/alerts")
    zones = {item["id"]: item["site_timezone"] for item in items}
    assert zones[world.sos_alice] == zones[world.fall_bob] == "Asia/Shanghai"
    assert zones[world.sos_carol] == "Asia/Urumqi"
    detail = await get(client, "duty-south", f"/api/v1/alerts/{world.sos_carol}")
    assert detail["site_timezone"] == "Asia/Urumqi"
    headers = await login(client, "duty-north")
    acked = await client.post(f"/api/v1/alerts/{world.sos_alice}/ack", headers=headers)
    assert acked.status_code == 200, acked.text
    assert acked.json()["site_timezone"] == "Asia/Shanghai"


@pytest.mark.parametrize(("params", "expected"), [
    ({"status": "open"}, ["sos_carol", "sos_alice"]),
    ({"status": ["open", "acknowledged"]}, ["sos_carol", "sos_alice", "battery_alice"]),
    ({"type": "sos"}, ["sos_carol", "sos_alice"]),
    ({"type": "fall"}, ["fall_bob"]),
    ({"severity": "warning"}, ["battery_alice"]),
    ({"site": "north", "status": "open"}, ["sos_alice"]),
    ({"resident": "ALICE"}, ["sos_alice", "battery_alice"]),
    ({"limit": 1}, ["sos_carol"]),
    ({"type": "tamper"}, []),
])
async def test_alert_filters(client, world, params, expected):
    if params.get("resident") == "ALICE":
        params = {**params, "resident": world.alice}
    alerts = await get(client, "admin", "/api/v1/alerts", **params)
    assert ids(alerts) == [getattr(world, name) for name in expected]


@pytest.mark.parametrize(("params", "mentions"), [
    ({"status": "bogus"}, "query parameter 'status'"),
    ({"severity": "loud"}, "query parameter 'severity'"),
    ({"limit": 0}, "query parameter 'limit'"),
    ({"limit": 501}, "query parameter 'limit'"),
    ({"resident": "abc"}, "query parameter 'resident'"),
    ({"site": "Not A Site!"}, "query parameter 'site'"),
    ({"type": "DROP TABLE"}, "query parameter 'type'"),
])
async def test_bad_filters_are_422_with_a_readable_detail(client, world, params, mentions):
    resp = await client.get("/api/v1/alerts", params=params, headers=await login(client, "admin"))
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert isinstance(detail, str)
    assert detail.startswith("Invalid request: ")
    assert mentions in detail
    assert f"(got {str(next(iter(params.values())))!r})" in detail


async def test_bad_path_id_is_422(client, world):
    resp = await client.get("/api/v1/alerts/abc", headers=await login(client, "admin"))
    assert resp.status_code == 422
    assert "path parameter 'alert_id'" in resp.json()["detail"]


# --- paging and time filters -----------------------------------------------------------


def _many_alerts(database_url: str, world: World, count: int) -> None:
    """`count` alerts of Bob's, several sharing one created_at (ties need the id)."""
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with db.connect(database_url) as conn:
        for n in range(count):
            at = base + timedelta(minutes=n // 3)
            insert_alert(conn, world.bob, "north", "tamper", "warning", status="resolved",
                         opened_at=at, created_at=at, last_seen=at)
        conn.commit()


async def _all_pages(client: httpx.AsyncClient, headers: dict[str, str], **params: Any
                     ) -> tuple[list[int], int]:
    """Every id, following the Link headers; and the number of pages."""
    seen: list[int] = []
    url: str | None = "/api/v1/alerts"
    pages = 0
    while url is not None:
        resp = await client.get(url, params=params if pages == 0 else None, headers=headers)
        assert resp.status_code == 200, resp.text
        seen.extend(ids(resp.json()))
        pages += 1
        link = resp.headers.get("link")
        url = link[1:link.index(">")] if link else None
        assert pages < 50
    return seen, pages


async def test_paging_through_alerts_has_no_duplicates_or_gaps(client, world, clean_db):
    _many_alerts(clean_db, world, 11)
    headers = await login(client, "admin")
    everything = ids(await get(client, "admin", "/api/v1/alerts", limit=500))
    assert len(everything) == 15
    seen, pages = await _all_pages(client, headers, limit=4)
    assert pages == 4
    assert seen == everything
    # Filters travel with the cursor; an alert stored while paging does not shift the pages.
    first = await client.get("/api/v1/alerts", params={"type": "tamper", "limit": 5},
                             headers=headers)
    link = first.headers["link"]
    assert link.endswith('>; rel="next"') and "type=tamper" in link
    with db.connect(clean_db) as conn:
        newest = insert_alert(conn, world.bob, "north", "tamper", "warning", minutes_ago=0)
        conn.commit()
    rest, _ = await _all_pages(client, headers, type="tamper", limit=5,
                               cursor=link[link.index("cursor=") + 7:link.index(">")])
    assert newest not in rest
    assert ids(first.json()) + rest == [a for a in everything if a not in (
        world.sos_carol, world.sos_alice, world.battery_alice, world.fall_bob)]
    # The last page has no Link.
    last = await client.get("/api/v1/alerts", params={"limit": 500}, headers=headers)
    assert "link" not in last.headers


async def test_alerts_since_and_until_filter_on_opened_time(client, world, clean_db):
    _many_alerts(clean_db, world, 6)  # opened 12:00 x3, 12:01 x3 on 2026-03-01
    tamper = {"type": "tamper", "limit": 500}
    assert len(await get(client, "admin", "/api/v1/alerts", **tamper,
                         since="2026-03-01T12:01:00Z")) == 3
    assert len(await get(client, "admin", "/api/v1/alerts", **tamper,
                         until="2026-03-01T12:01:00Z")) == 3
    assert len(await get(client, "admin", "/api/v1/alerts", **tamper,
                         since="2026-03-01T13:00:00+01:00", until="2026-03-01T12:00:30")) == 3
    assert await get(client, "admin", "/api/v1/alerts", **tamper,
                     since="2026-03-01T12:02:00Z") == []


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "2026-03-01T12:00:00Z", "until": "2026-03-01T12:00:00Z"}, "until"),
    ({"since": "2026-03-02", "until": "2026-03-01"}, "until"),
    ({"since": "yesterday"}, "since"),
    ({"until": "0001-01-01T01:00:00"}, "until"),
    ({"since": "9999-12-31T23:59:59-14:00"}, "since"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "MjAyNi0wMy0wMVQxMjowMDowMHwtNQ"}, "cursor"),  # a negative id
    ({"cursor": "x" * 201}, "cursor"),
    ({"cursor": "\x00"}, "cursor"),
])
async def test_bad_paging_values_are_422_naming_the_field(client, world, params, field):
    resp = await client.get("/api/v1/alerts", params=params, headers=await login(client, "admin"))
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["errors"][0]["loc"] == ["query", field]
    assert f"query parameter '{field}'" in body["detail"]


# --- health and page -------------------------------------------------------------------


async def test_health_without_auth(client):
    resp = await client.get("/api/v1/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "database": True}


async def test_health_reports_database_down(monkeypatch):
    monkeypatch.setattr(dashboard_health, "HEALTH_TIMEOUT_S", 0.5)
    monkeypatch.setattr(deps, "CONNECTION_TIMEOUT_S", 0.5)
    url = f"postgresql://nobody:nothing@127.0.0.1:{free_port()}/none?connect_timeout=1"
    async with app_client(url) as client:
        resp = await client.get("/api/v1/health")
        assert resp.status_code == 200
        assert resp.json() == {"status": "ok", "database": False}
        # data routes answer 503 rather than a bare 500 when the database is down
        resp = await client.get("/api/v1/alerts", headers={"Authorization": "Bearer x"})
        assert resp.status_code == 503


async def test_duty_page_and_static_files_are_served(client):
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'src="/static/app.js"' in page.text
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        resp = await client.get(f"/static/{name}")
        assert resp.status_code == 200
        assert kind in resp.headers["content-type"]

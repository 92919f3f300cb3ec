"""Residents and alerts API: role scope, filters, validation and health."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dashboard import app as dashboard_app
from dashboard import deps
from eldercare.services import free_port
from tests.dashboard.conftest import app_client, login

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
    sos = await get(client, "family-alice", f"/api/v1/alerts/{world.sos_alice}")
    assert sos["details"] == {"detail": "long press"}
    assert sos["history"] == []


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
        "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at", "outcome", "note"}
    assert item["acknowledged_by"] == world.care_north
    assert item["acknowledged_at"] is not None
    assert item["device_id"] == "bed-alice"


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


# --- health and page -------------------------------------------------------------------


async def test_health_without_auth(client):
    resp = await client.get("/api/v1/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "database": True}


async def test_health_reports_database_down(monkeypatch):
    monkeypatch.setattr(dashboard_app, "HEALTH_TIMEOUT_S", 0.5)
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

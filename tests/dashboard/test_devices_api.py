"""Device administration and bulk import through /api/v1, on the real database and broker:
provision (secret + QR once), roles and sites, live revoke, move, history, list, import."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from dashboard.app import create_app
from dashboard.devices import DevicesConfig
from gateway.device_accounts import DeviceAccounts
from kernel import db
from tests.support.dashboard import SECRET, World, login
from tests.support.probe import NOT_AUTHORIZED, TIMEOUT, Probe
from tests.support.services import Broker

pytestmark = pytest.mark.anyio


@pytest.fixture
async def dev_client(clean_db: str, broker: Broker) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app that can manage devices on the test broker."""
    cfg = DevicesConfig(DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port)),
                        broker.pipeline, broker.admin)
    app = create_app(clean_db, SECRET, devices=cfg)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://dashboard.test") as client):
        yield client


async def test_admin_provisions_a_call_button_shown_once_and_it_connects(
        dev_client: httpx.AsyncClient, world: World, broker: Broker,
        probes: list[Probe]) -> None:
    h = await login(dev_client, "admin")
    resp = await dev_client.post(f"/api/v1/residents/{world.alice}/devices",
                                 json={"type": "call_button"}, headers=h)
    assert resp.status_code == 201, resp.text
    cred = resp.json()
    assert cred["site"] == "north" and cred["resident_id"] == world.alice
    assert cred["qr_svg"].startswith("<svg")
    assert cred["topic_prefix"] == f"eldercare/v1/north/{cred['device_id']}"
    dev = Probe(broker.port, cred["username"], cred["password"], cred["device_id"])
    probes.append(dev)
    dev.wait_connected()
    detail = (await dev_client.get(f"/api/v1/devices/{cred['device_id']}", headers=h)).json()
    assert "password" not in detail
    assert [(e["action"], e["actor"]) for e in detail["history"]] == [("provision", "admin")]


async def test_bad_provision_input_is_a_field_error(dev_client: httpx.AsyncClient,
                                                    world: World) -> None:
    h = await login(dev_client, "admin")
    resp = await dev_client.post(f"/api/v1/residents/{world.alice}/devices",
                                 json={"type": "toaster"}, headers=h)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["loc"][-1] == "type"


async def test_revoke_cuts_the_connected_device_and_is_recorded(
        dev_client: httpx.AsyncClient, world: World, broker: Broker,
        probes: list[Probe]) -> None:
    h = await login(dev_client, "duty-north")
    cred = (await dev_client.post(f"/api/v1/residents/{world.bob}/devices",
                                  json={"type": "call_button"}, headers=h)).json()
    dev = Probe(broker.port, cred["username"], cred["password"], cred["device_id"])
    probes.append(dev)
    dev.wait_connected()
    south = await login(dev_client, "duty-south")
    assert (await dev_client.post(f"/api/v1/devices/{cred['device_id']}/revoke",
                                  headers=south)).status_code == 404
    resp = await dev_client.post(f"/api/v1/devices/{cred['device_id']}/revoke", headers=h)
    assert resp.status_code == 204, resp.text
    assert dev.disconnected.wait(TIMEOUT), "revoked device still connected"
    again = Probe(broker.port, cred["username"], cred["password"], cred["device_id"])
    probes.append(again)
    assert again.wait_refused().value == NOT_AUTHORIZED
    assert (await dev_client.post(f"/api/v1/devices/{cred['device_id']}/revoke",
                                  headers=h)).status_code == 409
    detail = (await dev_client.get(f"/api/v1/devices/{cred['device_id']}", headers=h)).json()
    assert [e["action"] for e in detail["history"]] == ["revoke", "provision"]
    assert detail["active"] is False


async def test_move_within_and_across_sites(dev_client: httpx.AsyncClient,
                                            world: World) -> None:
    admin = await login(dev_client, "admin")
    cred = (await dev_client.post(f"/api/v1/residents/{world.alice}/devices",
                                  json={"type": "bed_sensor"}, headers=admin)).json()
    duty = await login(dev_client, "duty-north")
    url = f"/api/v1/devices/{cred['device_id']}/move"
    assert (await dev_client.post(url, json={"resident_id": world.carol},
                                  headers=duty)).status_code == 404
    moved = await dev_client.post(url, json={"resident_id": world.bob}, headers=duty)
    assert moved.status_code == 200 and moved.json()["resident_id"] == world.bob
    across = await dev_client.post(url, json={"resident_id": world.carol}, headers=admin)
    assert across.json()["site_id"] == "south"
    assert (await dev_client.post(url, json={"resident_id": 0},
                                  headers=admin)).status_code == 422


async def test_list_is_limited_to_the_duty_officers_site(dev_client: httpx.AsyncClient,
                                                         world: World) -> None:
    duty = await login(dev_client, "duty-north")
    rows = (await dev_client.get("/api/v1/devices", headers=duty)).json()
    assert {r["site_id"] for r in rows} == {"north"}
    assert (await dev_client.get("/api/v1/devices?site=south", headers=duty)).status_code == 403
    admin = await login(dev_client, "admin")
    online = (await dev_client.get("/api/v1/devices?online=true&type=call_button",
                                   headers=admin)).json()
    assert [r["id"] for r in online] == ["btn-alice"]
    care = await login(dev_client, "care-north")
    assert (await dev_client.get("/api/v1/devices", headers=care)).status_code == 403
    assert (await dev_client.get("/api/v1/devices/btn-carol", headers=duty)).status_code == 404


GOOD = ("site,full_name,address,birth_year,bed_sensor,call_button\n"
        "north,Dag Dahl,4 Fjord Road,1936,yes,yes\n"
        "north,Eva Eide,,1941,no,yes\n")
BAD = ("site,full_name,address,birth_year,bed_sensor,call_button\n"
       "north,Dag Dahl,4 Fjord Road,1936,yes,yes\n"
       "nowhere,,x,19x6,maybe,no\n")


async def test_import_with_errors_writes_nothing_and_reports_each(
        dev_client: httpx.AsyncClient, world: World, clean_db: str) -> None:
    h = await login(dev_client, "admin")
    resp = await dev_client.post("/api/v1/import", headers=h,
                                 files={"file": ("elders.csv", BAD.encode(), "text/csv")})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["applied"] is False and body["credentials_csv"] is None
    assert {(e["row"], e["column"]) for e in body["error_list"]} == {
        (3, "site"), (3, "full_name"), (3, "birth_year"), (3, "bed_sensor")}
    assert body["errors_csv"].splitlines()[0] == "row,column,message"
    with db.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM residents WHERE full_name = 'Dag Dahl'"
                            ).fetchone() == (0,)


async def test_import_problems_are_reported_in_the_readers_language(
        dev_client: httpx.AsyncClient, world: World) -> None:
    h = {**await login(dev_client, "admin"), "Accept-Language": "zh-CN"}
    resp = await dev_client.post("/api/v1/import", headers=h,
                                 files={"file": ("elders.csv", BAD.encode(), "text/csv")})
    assert resp.status_code == 200, resp.text
    by_column = {e["column"]: e["message"] for e in resp.json()["error_list"]}
    assert by_column == {"site": "站点 'nowhere' 不存在", "full_name": "姓名为必填项",
                         "birth_year": "不是整数", "bed_sensor": "必须是 yes 或 no"}
    assert "姓名为必填项" in resp.json()["errors_csv"]


async def test_import_dry_run_then_for_real(dev_client: httpx.AsyncClient, world: World,
                                            clean_db: str) -> None:
    duty = await login(dev_client, "duty-north")
    dry = (await dev_client.post("/api/v1/import", headers=duty, data={"dry_run": "true"},
                                 files={"file": ("e.csv", GOOD.encode(), "text/csv")})).json()
    assert (dry["valid_rows"], dry["applied"]) == (2, False)
    assert (dry["residents"], dry["devices"], dry["broker_accounts"]) == (2, 3, 3)
    real = (await dev_client.post("/api/v1/import", headers=duty,
                                  files={"file": ("e.csv", GOOD.encode(), "text/csv")})).json()
    assert (real["residents"], real["devices"], real["applied"]) == (2, 3, True)
    lines = real["credentials_csv"].splitlines()
    assert lines[0].startswith("device_id,type,site,resident_id,username,password")
    assert len(lines) == 4
    twice = (await dev_client.post("/api/v1/import", headers=duty,
                                   files={"file": ("e.csv", GOOD.encode(), "text/csv")})).json()
    assert twice["applied"] is False and twice["residents"] == 0
    assert {(e["row"], e["column"]) for e in twice["error_list"]} == {(2, "full_name"),
                                                                       (3, "full_name")}
    south = await login(dev_client, "duty-south")
    refused = (await dev_client.post("/api/v1/import", headers=south,
                                     files={"file": ("e.csv", GOOD.encode(), "text/csv")})
               ).json()
    assert refused["applied"] is False and refused["errors"] == 2  # rows name site north


def _device_records(url: str) -> list[tuple[object, ...]]:
    with db.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT action, target_type, target_id, resident_id, detail FROM audit_log "
            "WHERE action LIKE 'device.%%' OR action = 'import' ORDER BY id").fetchall()


async def test_the_audit_names_the_device_and_an_import_each_device_it_made(
        dev_client: httpx.AsyncClient, world: World, clean_db: str) -> None:
    """The new-user trial: web provisioning recorded the resident id as the target, and an
    import one row with detail {}. Now the device is the target (its resident named), as in
    the CLI, and an import adds one record per device and its counts and file name."""
    h = await login(dev_client, "admin")
    cred = (await dev_client.post(f"/api/v1/residents/{world.alice}/devices",
                                  json={"type": "call_button"}, headers=h)).json()
    device = cred["device_id"]
    assert (await dev_client.post(f"/api/v1/devices/{device}/move", headers=h,
                                  json={"resident_id": world.bob})).status_code == 200
    assert (await dev_client.post(f"/api/v1/devices/{device}/revoke",
                                  headers=h)).status_code == 204
    real = await dev_client.post("/api/v1/import", headers=h,
                                 files={"file": ("e.csv", GOOD.encode(), "text/csv")})
    assert real.json()["applied"] is True
    rows = _device_records(clean_db)
    assert [r[:4] for r in rows[:3]] == [
        ("device.provision", "device", device, world.alice),
        ("device.update", "device", device, world.bob),
        ("device.revoke", "device", device, world.bob)]
    made = [r for r in rows[3:] if r[0] == "device.provision"]
    [done] = [r for r in rows[3:] if r[0] == "import"]
    assert len(made) == 3 and all(r[1] == "device" and r[3] is not None for r in made)
    assert (done[1], done[2]) == ("import", "e.csv")
    detail = done[4]
    assert isinstance(detail, dict)
    assert (detail["file"], detail["residents"], detail["devices"], detail["dry_run"]) == (
        "e.csv", 2, 3, False)

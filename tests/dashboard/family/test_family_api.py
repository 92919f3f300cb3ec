"""GET /api/v1/family/residents and /summary on the real database, at an injected instant."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest

from alerts.notify.outbox import enqueue_all_clears
from dashboard.app import create_app
from ingest.rollups import rollup_minutes
from kernel import db
from tests.dashboard.family.seed import LAST_NIGHT, NOW, FamilyWorld, local, seed_family
from tests.support.dashboard import (
    SECRET,
    STAFF_FIELDS,
    STAFF_TEXT,
    World,
    insert_alert,
    login,
)

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def family_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app whose clock stands at NOW."""
    app = create_app(database_url, SECRET, clock=lambda: NOW)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://dashboard.test") as client):
        yield client


@pytest.fixture
def family(world: World, clean_db: str) -> FamilyWorld:
    return seed_family(clean_db, world)


async def get(client: httpx.AsyncClient, user: str, path: str, expect: int = 200) -> object:
    resp = await client.get(path, headers=await login(client, user))
    assert resp.status_code == expect, resp.text
    return resp.json()


async def test_my_residents_lists_only_linked_ones_with_their_state(world, family, clean_db):
    async with family_client(clean_db) as client:
        listed = await get(client, "family-alice", "/api/v1/family/residents")
    assert [r["id"] for r in listed] == [world.alice]
    assert listed[0]["timezone"] == "Asia/Shanghai"
    assert listed[0]["state"]["kind"] == "up"
    assert listed[0]["state"]["text"] == "Up and about since 09:12"
    assert listed[0]["active_alerts"] == 0


async def test_summary_tells_last_night_the_week_and_the_handled_sos(world, family, clean_db):
    async with family_client(clean_db) as client:
        body = await get(client, "family-alice",
                         f"/api/v1/family/residents/{world.alice}/summary")
    night = body["last_night"]
    assert night["day"] == LAST_NIGHT.isoformat()
    # 02:10, 04:40 and 06:48: she was back in bed (a nap, 08:30) before her rise at 09:12,
    # so 06:48 counts as an exit too (docs/storage.md: an exit ends back in bed)
    assert night["night_exits"] == 3
    assert night["time_in_bed_s"] == (8 * 60 + 34 - 14 - 9) * 60  # 22:14-06:48, 23 min up
    assert night["resting_hr"]["kind"] == "lower"  # 52-55 a minute vs usual 61-62
    assert night["resting_hr"]["text"] == "lower than usual"
    assert night["breathing"] == {"value": 14.0, "usual": 14.0, "kind": "usual",
                                  "text": "about usual"}
    assert [d["day"] for d in body["days"]][-1] == LAST_NIGHT.isoformat()
    assert len(body["days"]) == 7
    # 4-10 Mar: 02:10 (and 04:40 on even days); getting up at 06:48 is her rise, no exit
    assert [d["night_exits"] for d in body["days"]] == [2, 1, 2, 1, 2, 1, 3]
    assert body["days"][-1]["alerts"] == 1
    # the 7-night chart's resting heart rate: 61-64 a minute before, 52-55 last night
    assert [d["resting_hr"] for d in body["days"]] == [61.0] * 6 + [52.0]
    (sos,) = body["alerts"]
    assert sos["id"] == family.sos
    assert sos["summary"] == "Resolved: a carer helped at home"
    assert [h["event"] for h in sos["history"]] == [
        "The care team was alerted", "A carer is responding", "Resolved: a carer helped at home"]
    assert sos["told"] is True
    assert sos["all_clear"] == "All clear at 08:31: a carer helped at home"


async def test_the_family_view_carries_no_staff_internals(world, family, clean_db):
    async with family_client(clean_db) as client:
        for path in ("/api/v1/family/residents",
                     f"/api/v1/family/residents/{world.alice}/summary"):
            body = await get(client, "family-alice", path)
            text = json.dumps(body)
            for word in (*STAFF_TEXT, "care-north", "4711", "staff-only", "assigned to"):
                assert word not in text, word
            alerts = body["alerts"] if isinstance(body, dict) else []
            for item in [*alerts, *(h for a in alerts for h in a["history"])]:
                assert not STAFF_FIELDS & set(item), item


async def state_text(database_url: str) -> str:
    async with family_client(database_url) as client:
        (alice,) = await get(client, "family-alice", "/api/v1/family/residents")
    return str(alice["state"]["text"])


async def test_back_in_bed_counts_from_the_first_reading_of_the_new_run(world, family,
                                                                        clean_db):
    with db.connect(clean_db) as conn:
        conn.execute("DELETE FROM bed_telemetry WHERE time >= %s", (local(LAST_NIGHT, "10:20"),))
        conn.execute("DELETE FROM vitals_1m WHERE bucket >= %s", (local(LAST_NIGHT, "10:20"),))
        # in bed from 10:20 (NOW is 10:30), and the mat's undebounced blips: a few seconds
        # of false absence at 10:25:30 (rolled up) and at 10:29:40 (not rolled up yet)
        for at, occupied in [*((local(LAST_NIGHT, f"10:{m}") + timedelta(seconds=s), True)
                               for m in range(20, 30) for s in (0, 20, 50)),
                             (local(LAST_NIGHT, "10:25:30"), False),
                             (local(LAST_NIGHT, "10:29:40"), False),
                             (local(LAST_NIGHT, "10:29:45"), True)]:
            conn.execute("INSERT INTO bed_telemetry (time, device_id, resident_id, seq, "
                         "occupied, heart_rate, respiration_rate, movement, received_at) "
                         "VALUES (%s, 'bed-alice', %s, %s, %s, 60, 14, 1, %s)",
                         (at, world.alice, int(at.timestamp()), occupied, at))
        rollup_minutes(conn, local(LAST_NIGHT, "10:20"), local(LAST_NIGHT, "10:29"))
        conn.commit()
    # the blip the rollup has not reached yet still counts (seconds of resolution there)
    assert await state_text(clean_db) == "In bed since 10:29"
    with db.connect(clean_db) as conn:
        rollup_minutes(conn, local(LAST_NIGHT, "10:29"), local(LAST_NIGHT, "10:30"))
        conn.commit()
    assert await state_text(clean_db) == "In bed since 10:20"


async def test_an_offline_sensor_the_centre_was_alerted_to_says_so(world, family, clean_db):
    silent_from = local(LAST_NIGHT, "03:00")
    with db.connect(clean_db) as conn:
        conn.execute("DELETE FROM bed_telemetry WHERE time > %s", (silent_from,))
        conn.execute("UPDATE devices SET online = false, last_seen = %s WHERE id = 'bed-alice'",
                     (silent_from,))
        conn.commit()
    assert await state_text(clean_db) == "Sensor offline since 03:00"
    with db.connect(clean_db) as conn:
        insert_alert(conn, world.alice, "north", "device_offline", "warning",
                     device_id="bed-alice", opened_at=local(LAST_NIGHT, "03:05"))
        conn.commit()
    assert await state_text(clean_db) == ("Sensor offline since 03:00 — the centre has "
                                          "been told")


async def test_a_cancelled_alert_they_were_told_about_gets_its_all_clear(world, family,
                                                                         clean_db):
    pressed = local(LAST_NIGHT, "09:40")
    with db.connect(clean_db) as conn:
        sos = insert_alert(conn, world.alice, "north", "sos", "critical", status="cancelled",
                           outcome="cancelled_by_resident", opened_at=pressed,
                           created_at=pressed, last_seen=pressed,
                           cancelled_at=pressed + timedelta(seconds=40))
        conn.execute(
            "INSERT INTO notification_outbox (alert_id, kind, channel, channel_id, user_id, "
            "target, payload, status, dedup_key) SELECT %s, 'alert', 'email', id, user_id, "
            "target, '{}', 'sent', 'test:cancelled' FROM notification_channels "
            "WHERE user_id = %s", (sos, world.family_alice))
        conn.commit()
        enqueue_all_clears(conn, NOW)
        conn.commit()
    async with family_client(clean_db) as client:
        body = await get(client, "family-alice",
                         f"/api/v1/family/residents/{world.alice}/summary")
    newest = body["alerts"][0]
    assert newest["id"] == sos
    assert newest["summary"] == "Cancelled by the resident"
    assert newest["all_clear"] == "All clear at 09:40: cancelled by the resident"


async def test_the_family_view_speaks_the_readers_language(world, family, clean_db):
    """The sentences the server writes for a relative follow the request's language; the
    numbers, kinds and times stay as they are."""
    async with family_client(clean_db) as client:
        zh = {**await login(client, "family-alice"), "Accept-Language": "zh-CN"}
        listed = (await client.get("/api/v1/family/residents", headers=zh)).json()
        body = (await client.get(f"/api/v1/family/residents/{world.alice}/summary",
                                 headers=zh)).json()
        alert = (await client.get(f"/api/v1/alerts/{family.sos}", headers=zh)).json()
        alerts = (await client.get("/api/v1/alerts", headers=zh)).json()
    assert listed[0]["state"] == {"kind": "up", "since": listed[0]["state"]["since"],
                                  "text": "09:12 起已起床活动"}
    assert body["last_night"]["resting_hr"]["text"] == "低于平时"
    assert body["last_night"]["breathing"]["text"] == "与平时相当"
    (sos,) = body["alerts"]
    assert sos["summary"] == "处置完成：护理员已上门协助"
    assert [h["event"] for h in sos["history"]] == [
        "已通知护理团队", "护理员正在处置", "处置完成：护理员已上门协助"]
    assert sos["all_clear"] == "08:31 警报解除：护理员已上门协助"
    assert alert["summary"] == sos["summary"] and alert["history"][0]["event"] == "已通知护理团队"
    assert {a["summary"] for a in alerts if a["id"] == family.sos} == {"处置完成：护理员已上门协助"}

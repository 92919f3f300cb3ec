"""GET /api/v1/digest/outliers (the duty officer's daily digest) and GET
/api/v1/residents/{id}/daily (the daily routine chart), on the real database. Who may call
them is tests/dashboard/test_role_matrix.py; here: what they say."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from alerts.learning.outliers import FEATURE_BY_KEY
from dashboard import digest
from dashboard.app import create_app
from kernel import db
from tests.support.dashboard import SECRET, World, login, seed_world
from tests.support.outliers import DIGEST_DAY, DIGEST_DONE, insert_nights, seed_digest

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(clean_db: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(clean_db, SECRET, clock=lambda: DIGEST_DONE)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://dashboard.test") as c):
        yield c


@pytest.fixture
def world(clean_db: str) -> World:
    w = seed_world(clean_db)
    seed_digest(clean_db, w.alice, w.bob)
    return w


async def test_the_digest_names_the_resident_and_what_changed(client: httpx.AsyncClient,
                                                               world: World) -> None:
    resp = await client.get("/api/v1/digest/outliers",
                            headers=await login(client, "duty-north"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["day"] == DIGEST_DAY.isoformat()
    assert body["summary"] == "1 resident whose last nights look unlike their usual"
    assert (body["scored"], body["skipped"]) == (2, 0)
    [alice] = body["residents"]
    assert (alice["resident_id"], alice["resident_name"]) == (world.alice, "Alice Andersen")
    assert alice["score"] > alice["threshold"] or alice["distance"] > alice["distance_line"]
    texts = [r["text"] for r in alice["reasons"]]
    rise = next(t for t in texts if t.startswith("Rise time"))
    assert re.fullmatch(r"Rise time 09:\d\d vs usual 0[67]:\d\d", rise), rise
    assert any(t.startswith("Night exits ") for t in texts)


async def test_an_administrator_names_the_site_and_a_day(client: httpx.AsyncClient,
                                                          world: World) -> None:
    headers = await login(client, "admin")
    resp = await client.get("/api/v1/digest/outliers", params={"site": "north"},
                            headers=headers)
    assert resp.json()["residents"][0]["resident_id"] == world.alice
    other = await client.get("/api/v1/digest/outliers", headers=headers,
                             params={"site": "north", "day": "2026-03-09"})
    assert other.json()["day"] == "2026-03-09"
    assert other.json()["residents"] == []
    assert other.json()["summary"].startswith("No digest yet")
    south = await client.get("/api/v1/digest/outliers", params={"site": "south"},
                             headers=headers)
    assert south.json()["summary"] == "No resident's last nights look unlike their usual"
    missing = await client.get("/api/v1/digest/outliers", params={"site": "nowhere"},
                               headers=headers)
    assert missing.status_code == 404


async def test_the_daily_features_come_with_their_usual_band(client: httpx.AsyncClient,
                                                               world: World,
                                                               clean_db: str) -> None:
    with db.connect(clean_db, autocommit=True) as conn:  # a day the sensor was mostly off
        insert_nights(conn, world.alice, "UTC", [(DIGEST_DAY, {
            "rise": 400.0, "in_bed_h": 2.0, "exits": 0.0, "hr": 60.0, "rr": 15.0,
            "move": 9.0})], data_minutes=200)
    resp = await client.get(f"/api/v1/residents/{world.alice}/daily", params={"days": 30},
                            headers=await login(client, "care-north"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["until"] == DIGEST_DAY.isoformat()  # the app's clock, the resident's date
    assert [f["key"] for f in body["features"]][:3] == ["rise_time", "time_in_bed",
                                                         "night_exits"]
    points = body["points"]
    assert len(points) == 30 and points[-1]["day"] == DIGEST_DAY.isoformat()
    assert points[-1]["covered"] is False
    last_usual = points[-2]  # the last shifted night: far above its band
    band = last_usual["usual"]["rise_time"]
    assert band["low"] < 420 < band["high"]
    assert last_usual["values"]["rise_time"] > band["high"]
    assert points[0]["usual"]["rise_time"] is not None  # 28 days before the first shown


def test_values_read_as_people_write_them() -> None:
    assert digest.value_text("clock", 9 * 60 + 40, "en") == "09:40"
    assert digest.value_text("hours", 7.46, "en") == "7.5 h"
    assert digest.value_text("rate", 61.6, "en") == "62 /min"
    assert digest.reason_text(FEATURE_BY_KEY["rise_time"], 580.0, 430.0, "en") == \
        "Rise time 09:40 vs usual 07:10"
    assert digest.summary_text(3, "en") == "3 residents whose last nights look unlike " \
                                           "their usual"


"""Vitals API: buckets from raw, per-minute and per-day data; scope; parameter errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from dashboard import vitals as vitals_api
from dashboard.models import VitalsOut
from kernel import db
from tests.support.dashboard import World, login
from tests.support.rollups import ROLLUP_TABLES, insert_readings

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PATH = "/api/v1/residents/{}/vitals"


@pytest.fixture
def vitals_world(world: World, clean_db: str, owner_url: str) -> World:
    """The seeded world, rollup tables emptied, and 2 h of readings for Alice from T0.

    Every 10 s: heart rate 60 in the first hour and 80 in the second, respiration 14,
    movement 2; out of bed (no vitals) for the first 30 s of every 5th minute.
    """
    readings = []
    for i in range(2 * 360):
        t = T0 + timedelta(seconds=10 * i)
        out = (i // 6) % 5 == 0 and i % 6 < 3
        hr = None if out else (60.0 if i < 360 else 80.0)
        readings.append((t, not out, hr, None if out else 14.0, 0 if out else 2))
    with db.connect(owner_url, autocommit=True) as conn:  # the application may not TRUNCATE
        conn.execute(f"TRUNCATE {ROLLUP_TABLES}")
    with db.connect(clean_db, autocommit=True) as conn:
        insert_readings(conn, readings, resident_id=world.alice, device="bed-alice")
    return world


async def vitals(client: httpx.AsyncClient, user: str, resident: int, **params: Any
                 ) -> httpx.Response:
    return await client.get(PATH.format(resident), params=params,
                            headers=await login(client, user))


def iso(t: datetime) -> str:
    return t.isoformat()


async def test_short_range_is_bucketed_from_raw(client, vitals_world):
    resp = await vitals(client, "care-north", vitals_world.alice, bucket="30m",
                        **{"from": iso(T0), "to": iso(T0 + timedelta(hours=2))})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["source"] == "raw" and body["bucket_seconds"] == 1800
    assert body["from"] == "2026-03-02T08:00:00Z" and body["to"] == "2026-03-02T10:00:00Z"
    points = body["points"]
    assert [p["t"] for p in points] == [f"2026-03-02T{h:02d}:{m:02d}:00Z"
                                        for h in (8, 9) for m in (0, 30)]
    assert [p["heart_rate"] for p in points] == [60.0, 60.0, 80.0, 80.0]
    assert all(p["samples"] == 180 for p in points)
    assert points[0]["occupied_fraction"] == pytest.approx(1 - 18 / 180)
    assert points[0]["movement"] == pytest.approx(2 * (1 - 18 / 180))
    assert points[0]["respiration_rate"] == pytest.approx(14.0)
    assert VitalsOut.model_validate(body).points[0].samples == 180  # the documented shape
    assert '"occupied_fraction":0.9,' in resp.text  # rounded, no numeric noise


async def test_buckets_without_vitals_have_nulls(client, vitals_world):
    resp = await vitals(client, "admin", vitals_world.alice, bucket="10s",
                        **{"from": iso(T0), "to": iso(T0 + timedelta(minutes=1))})
    points = resp.json()["points"]
    assert len(points) == 6
    assert points[0] == {"t": "2026-03-02T08:00:00Z", "heart_rate": None,
                         "respiration_rate": None, "movement": 0, "occupied_fraction": 0,
                         "samples": 1}
    assert points[3]["heart_rate"] == 60 and points[3]["occupied_fraction"] == 1


async def test_long_range_uses_the_minute_rollup_plus_the_raw_tail(client, vitals_world,
                                                                   clean_db):
    with db.connect(clean_db, autocommit=True) as conn:
        # rolled up to 09:30 only: the rest must come from raw readings
        conn.execute("INSERT INTO vitals_1m (resident_id, bucket, hr_avg, rr_avg, "
                     "movement_avg, occupied_fraction, samples, hr_samples, rr_samples) "
                     "SELECT %s, time_bucket('1 minute', time), avg(heart_rate), "
                     "avg(respiration_rate), avg(movement), avg(occupied::int), count(*), "
                     "count(heart_rate), count(respiration_rate) FROM bed_telemetry "
                     "WHERE time < %s GROUP BY 2", (vitals_world.alice,
                                                    T0 + timedelta(minutes=90)))
        conn.execute("INSERT INTO job_watermarks VALUES ('vitals_1m', %s, now())",
                     (T0 + timedelta(minutes=90),))
    resp = await vitals(client, "admin", vitals_world.alice, bucket="1h",
                        **{"from": iso(T0 - timedelta(hours=10)),
                           "to": iso(T0 + timedelta(hours=2))})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["source"] == "1m"
    points = body["points"]
    assert [p["t"] for p in points] == ["2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z"]
    assert [p["samples"] for p in points] == [360, 360]
    # weighted by readings with a heart rate: exactly the raw averages
    assert [p["heart_rate"] for p in points] == [pytest.approx(60.0), pytest.approx(80.0)]
    assert points[1]["occupied_fraction"] == pytest.approx(0.9)


async def test_whole_day_buckets_come_from_daily_summaries(client, vitals_world, clean_db):
    with db.connect(clean_db, autocommit=True) as conn:
        for k, hr in enumerate((60.0, 70.0)):
            day = date(2026, 3, 2) + timedelta(days=k)  # Monday, Tuesday
            conn.execute(
                "INSERT INTO resident_daily (resident_id, day, timezone, day_start, "
                "data_minutes, time_in_bed_s, night_exits, hr_avg, rr_avg, movement_avg, "
                "occupied_fraction, samples, hr_samples, rr_samples, computed_at) VALUES "
                "(%s, %s, 'UTC', %s, 1440, 30000, 1, %s, 14, 2, 0.4, 17280, 8000, 8000, "
                "now())", (vitals_world.alice, day, datetime(2026, 3, 2 + k, tzinfo=UTC), hr))
    resp = await vitals(client, "admin", vitals_world.alice, bucket="1d",
                        **{"from": "2026-02-25T00:00:00Z", "to": "2026-03-04T00:00:00Z"})
    body = resp.json()
    assert body["source"] == "1d"
    assert [(p["t"], p["heart_rate"]) for p in body["points"]] == [
        ("2026-03-02T00:00:00Z", 60.0), ("2026-03-03T00:00:00Z", 70.0)]
    resp = await vitals(client, "admin", vitals_world.alice, bucket="7d",
                        **{"from": "2026-02-25T00:00:00Z", "to": "2026-03-04T00:00:00Z"})
    (week,) = resp.json()["points"]  # weeks start on Monday
    assert week["t"] == "2026-03-02T00:00:00Z"
    assert week["heart_rate"] == pytest.approx(65.0) and week["samples"] == 2 * 17280


async def test_default_range_is_the_last_24_hours(client, vitals_world):
    resp = await vitals(client, "admin", vitals_world.alice)
    body = resp.json()
    assert resp.status_code == 200 and body["bucket_seconds"] == 300
    span = (datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"]))
    assert span == timedelta(hours=24)
    assert body["points"] == []  # the fixture's readings are in the past


# --- scope ------------------------------------------------------------------------


async def test_family_sees_only_their_own_relative(client, vitals_world):
    params = {"from": iso(T0), "to": iso(T0 + timedelta(hours=1))}
    own = await vitals(client, "family-alice", vitals_world.alice, **params)
    assert own.status_code == 200 and len(own.json()["points"]) == 12
    other = await vitals(client, "family-alice", vitals_world.bob, **params)
    assert other.status_code == 404 and other.json()["detail"] == "Resident not found"


async def test_other_site_and_unknown_resident_answer_404(client, vitals_world):
    assert (await vitals(client, "duty-south", vitals_world.alice)).status_code == 404
    assert (await vitals(client, "admin", 999_999)).status_code == 404


async def test_requires_login(client, vitals_world):
    assert (await client.get(PATH.format(vitals_world.alice))).status_code == 401


# --- bad parameters ---------------------------------------------------------------------


@pytest.mark.parametrize("bucket", ["5x", "0", "-5m", "1.5h", "367d", "m"])
async def test_bad_bucket_is_422_with_a_hint(client, vitals_world, bucket):
    resp = await vitals(client, "admin", vitals_world.alice, bucket=bucket)
    assert resp.status_code == 422
    assert "e.g. 30s, 5m, 1h or 1d" in resp.json()["detail"]


async def test_reversed_range_is_422(client, vitals_world):
    resp = await vitals(client, "admin", vitals_world.alice,
                        **{"from": iso(T0), "to": iso(T0 - timedelta(hours=1))})
    assert resp.status_code == 422
    assert "'from' must be earlier than 'to'" in resp.json()["detail"]


async def test_unparseable_time_is_422(client, vitals_world):
    resp = await vitals(client, "admin", vitals_world.alice, **{"from": "yesterday"})
    assert resp.status_code == 422
    assert "query parameter 'from'" in resp.json()["detail"]


async def test_too_many_points_is_422_telling_to_widen_the_bucket(client, vitals_world):
    resp = await vitals(client, "admin", vitals_world.alice, bucket="1m",
                        **{"from": iso(T0), "to": iso(T0 + timedelta(days=30))})
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert "43200 buckets" in detail and "wider 'bucket'" in detail


# --- pure rules ----------------------------------------------------------------------


def test_bucket_parsing():
    assert [vitals_api.parse_bucket(b) for b in ("90", "30s", "5m", "1H", " 1d ")] == [
        90, 30, 300, 3600, 86400]


def test_source_selection():
    day = timedelta(days=1)
    assert vitals_api.choose_source(T0, T0 + timedelta(hours=6), 3600) == "raw"
    assert vitals_api.choose_source(T0, T0 + day, 30) == "raw"
    assert vitals_api.choose_source(T0, T0 + day, 90) == "raw"  # not whole minutes
    assert vitals_api.choose_source(T0, T0 + 7 * day, 60) == "1m"
    assert vitals_api.choose_source(T0, T0 + 7 * day, 3600) == "1m"
    assert vitals_api.choose_source(T0, T0 + 30 * day, 86400) == "1d"
    vitals_api.check_points(T0, T0 + 7 * day, 60)  # 10,080 points: allowed

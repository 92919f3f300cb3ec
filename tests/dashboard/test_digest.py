"""GET /api/v1/digest/outliers (the duty officer's daily digest) and GET
/api/v1/residents/{id}/daily (the daily routine chart), on the real database. Who may call
them is tests/dashboard/test_role_matrix.py; here: what they say."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import httpx
import pytest

from alerts.learning import store
from alerts.learning.baselines import baseline
from alerts.learning.features import FEATURES, feature
from alerts.learning.routine import RoutineSettings
from dashboard import digest
from dashboard.app import create_app
from kernel import db
from tests.support.dashboard import SECRET, World, login, seed_world
from tests.support.outliers import (
    DIGEST_DAY,
    DIGEST_DONE,
    insert_nights,
    open_routine_change,
    seed_digest,
)

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
            "restless": 9.0})], data_minutes=200)
    resp = await client.get(f"/api/v1/residents/{world.alice}/daily", params={"days": 30},
                            headers=await login(client, "care-north"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["until"] == DIGEST_DAY.isoformat()  # the app's clock, the resident's date
    # the one feature list (alerts/learning/features.py): the person's, then the sensor's
    assert [f["key"] for f in body["features"]] == [f.name for f in FEATURES]
    kinds = {f["key"]: f["kind"] for f in body["features"]}
    assert kinds["coverage"] == "device" and kinds["rise_time"] == "person"
    axes = {f["key"]: f["axis"] for f in body["features"]}
    assert axes["time_in_bed_s"] == {"scale": 3600.0, "offset": 0.0, "template": "{value} h"}
    assert axes["bedtime"]["template"] is None and axes["bedtime"]["offset"] == 720
    points = body["points"]
    assert len(points) == 30 and points[-1]["day"] == DIGEST_DAY.isoformat()
    assert points[-1]["covered"] is False
    assert points[-1]["values"]["rise_time"] is None  # a person feature of a poor day
    assert points[-1]["values"]["coverage"] == pytest.approx(100 * 200 / 1440, abs=0.01)
    last_usual = points[-2]  # the last shifted night: far above its band
    band = last_usual["usual"]["rise_time"]
    assert band["low"] < 420 < band["high"] and band["personal"] is True
    assert last_usual["values"]["rise_time"] > band["high"]
    assert re.fullmatch(r"09:\d\d", last_usual["texts"]["rise_time"])
    assert points[0]["usual"]["rise_time"] is not None  # 28 days before the first shown
    assert "coverage" not in last_usual["usual"]  # device features have no usual band
    for key, usual in last_usual["usual"].items():  # counts and durations: never below 0
        if key not in ("bedtime", "rise_time"):
            assert usual["low"] >= 0 and not usual["low_text"].startswith("-"), key


async def test_todays_partial_row_shows_only_what_is_final(client: httpx.AsyncClient,
                                                           world: World, clean_db: str) -> None:
    """Today's row, upserted every 15 minutes, is partial: at 12:31 its night (the rise) is
    final and shown, fully covered over the minutes its data reaches; its time in bed and
    the sensor's coverage are not (half a day's time in bed is no day's); at 12:29 nothing."""
    def summarised_until(at: datetime) -> None:
        with db.connect(clean_db, autocommit=True) as conn:
            insert_nights(conn, world.alice, "UTC", [(DIGEST_DAY, {
                "rise": 400.0, "in_bed_h": 7.0, "exits": 1.0, "hr": 60.0, "rr": 15.0,
                "restless": 5.0})], data_minutes=(at - midnight) // timedelta(minutes=1))
            conn.execute("UPDATE resident_daily SET data_until = %s, night_final_at = %s "
                         "WHERE resident_id = %s AND day = %s",
                         (at, midnight + timedelta(hours=12, minutes=30), world.alice,
                          DIGEST_DAY))

    midnight = datetime.combine(DIGEST_DAY, time(0), UTC)
    url, headers = f"/api/v1/residents/{world.alice}/daily", await login(client, "care-north")
    summarised_until(midnight + timedelta(hours=12, minutes=31))
    today = (await client.get(url, headers=headers)).json()["points"][-1]
    assert today["day"] == DIGEST_DAY.isoformat() and today["covered"] is True
    assert today["values"]["rise_time"] == pytest.approx(400.0)
    assert today["texts"]["rise_time"] == "06:40"
    for name in ("time_in_bed_s", "away_s", "coverage", "offline_min", "min_battery"):
        assert today["values"][name] is None and today["texts"][name] is None, name
    summarised_until(midnight + timedelta(hours=12, minutes=29))
    early = (await client.get(url, headers=headers)).json()["points"][-1]
    assert all(v is None for v in early["values"].values())


async def test_the_band_is_routine_changes_baseline(client: httpx.AsyncClient, world: World,
                                                     clean_db: str) -> None:
    """The chart's band is the baseline routine change judges each day against (28 days,
    a week's gap, 14 counted days), the population default before that."""
    resp = await client.get(f"/api/v1/residents/{world.alice}/daily", params={"days": 60},
                            headers=await login(client, "care-north"))
    points = resp.json()["points"]
    with db.connect(clean_db) as conn:
        days = store.load_days(conn, [world.alice], DIGEST_DAY - timedelta(days=200),
                               DIGEST_DAY)[world.alice]
    rise = feature("rise_time")
    for point in (points[0], points[25], points[-2]):
        expected = baseline(days, rise, date.fromisoformat(point["day"]),
                            gap_days=RoutineSettings().gap_days)
        band = point["usual"]["rise_time"]
        assert band["median"] == pytest.approx(expected.median, abs=1e-3)
        assert band["personal"] is expected.personal
        assert band["high"] - band["median"] == pytest.approx(2 * expected.sigma(), abs=1e-3)
    assert points[0]["usual"]["rise_time"]["personal"] is False  # population default
    assert points[0]["usual"]["rise_time"]["median"] == rise.default_median
    assert points[-2]["usual"]["rise_time"]["personal"] is True


async def test_the_chart_opens_on_the_routine_change_alert(client: httpx.AsyncClient,
                                                             world: World,
                                                             clean_db: str) -> None:
    headers = await login(client, "care-north")
    url = f"/api/v1/residents/{world.alice}/daily"
    assert (await client.get(url, headers=headers)).json()["routine_change"] is None
    day = DIGEST_DAY - timedelta(days=2)
    alert = open_routine_change(clean_db, world.alice, "north", "night_exits", day)
    focus = (await client.get(url, headers=headers)).json()["routine_change"]
    assert focus == {"alert_id": alert, "feature": "night_exits", "day": day.isoformat(),
                     "active": True, "changes": [{
                         "feature": "night_exits", "direction": "up", "day": day.isoformat(),
                         "explanation": "Night exits 4.0 vs usual 1.0 over the last 3 days"}]}
    named = (await client.get(url, params={"alert": alert}, headers=headers)).json()
    assert named["routine_change"]["alert_id"] == alert
    # another resident's alert is not this resident's focus
    bob = await client.get(f"/api/v1/residents/{world.bob}/daily", params={"alert": alert},
                           headers=headers)
    assert bob.json()["routine_change"] is None


def test_values_read_as_people_write_them() -> None:
    rise = feature("rise_time")
    assert digest.reason_text(rise, 580.0, 430.0, "en") == "Rise time 09:40 vs usual 07:10"
    assert digest.reason_text(feature("time_in_bed_s"), 7.46 * 3600, 8.5 * 3600, "en") == \
        "Time in bed 7.5 h vs usual 8.5 h"
    assert digest.reason_text(feature("resting_hr"), 61.64, 58.0, "en") == \
        "Resting heart rate 61.6/min vs usual 58.0/min"
    assert digest.summary_text(3, "en") == "3 residents whose last nights look unlike " \
                                           "their usual"


async def test_a_feature_that_joins_the_open_alert_is_shown_in_the_readers_language(
        client: httpx.AsyncClient, world: World, clean_db: str) -> None:
    """Night exits opened the alert, the resting heart rate joined it two days later: the
    alert's detail and the resident's chart carry both, each explained in the language the
    page asks for."""
    headers = await login(client, "care-north")
    first, later = DIGEST_DAY - timedelta(days=3), DIGEST_DAY - timedelta(days=1)
    alert = open_routine_change(clean_db, world.alice, "north", "night_exits", first)
    assert open_routine_change(clean_db, world.alice, "north", "resting_hr", later) == alert
    detail = (await client.get(f"/api/v1/alerts/{alert}", headers=headers)).json()
    assert [(c["feature"], c["day"]) for c in detail["routine_changes"]] == [
        ("night_exits", first.isoformat()), ("resting_hr", later.isoformat())]
    assert detail["routine_changes"][1]["explanation"] == (
        "Resting heart rate 4.0/min vs usual 1.0/min over the last 3 days")
    assert any(h["action"] == "routine change added" for h in detail["history"])
    zh = {**headers, "Accept-Language": "zh-CN"}
    chinese = (await client.get(f"/api/v1/alerts/{alert}", headers=zh)).json()
    for change in chinese["routine_changes"]:
        assert "usual" not in change["explanation"] and "Night" not in change["explanation"]
    daily = (await client.get(f"/api/v1/residents/{world.alice}/daily",
                              params={"alert": alert}, headers=zh)).json()
    focus = daily["routine_change"]
    assert focus["feature"] == "night_exits"
    assert [c["feature"] for c in focus["changes"]] == ["night_exits", "resting_hr"]
    assert focus["changes"] == [{k: c[k] for k in ("feature", "direction", "day",
                                                    "explanation")}
                                for c in chinese["routine_changes"]]

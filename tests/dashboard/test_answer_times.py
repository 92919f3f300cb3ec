"""Answer-time numbers of a site from alerts stored in the real database with known times
(store_trigger / acknowledge / resolve / store_cancel with explicit instants, never the wall
clock), read through the API with the app's clock fixed: the report of a local calendar day
in Asia/Shanghai, the current roster shift, CSV and XLSX content, roles and scopes, audit."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dashboard.app import create_app
from kernel import db
from tests.support.answer_times import AFTER, DAY, IN_SHIFT, Stored, seed
from tests.support.dashboard import SECRET, World, login

pytestmark = pytest.mark.anyio
API = "/api/v1"


@pytest.fixture
async def stored(world: World, clean_db: str) -> Stored:
    return await seed(clean_db, world)


async def _client(url: str, now: datetime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(url, SECRET, clock=lambda: now)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://dashboard.test") as client):
        yield client


@pytest.fixture
async def after(clean_db: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(clean_db, AFTER):
        yield client


@pytest.fixture
async def in_shift(clean_db: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(clean_db, IN_SHIFT):
        yield client


async def _get(client: httpx.AsyncClient, user: str, path: str) -> httpx.Response:
    return await client.get(f"{API}{path}", headers=await login(client, user))


async def test_the_days_report_counts_the_sites_local_day(after: httpx.AsyncClient,
                                                          stored: Stored, world: World) -> None:
    resp = await _get(after, "duty-north", f"/sites/north/answer-times/report?date={DAY}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["start_local"], body["end_local"]) == ("2026-03-02 00:00", "2026-03-03 00:00")
    assert body["start"] == "2026-03-01T16:00:00Z"
    every = body["all"]
    assert (every["opened"], every["acknowledged"], every["unanswered"], every["cancelled"],
            every["escalated"]) == (6, 4, 1, 1, 1)
    # acknowledged after 50, 120, 30, 20 s; a4 is late for both limits
    assert (every["within_60"]["within"], every["within_60"]["decided"]) == (3, 5)
    assert every["within_60"]["verdict"] == "not_met"
    assert (every["within_180"]["within"], every["within_180"]["decided"]) == (4, 5)
    assert (every["ack_median_s"], every["ack_p90_s"]) == (30.0, 120.0)
    assert (every["resolve_median_s"], every["resolve_p90_s"]) == (200.0, 900.0)
    calls = body["alarm_calls"]
    assert (calls["opened"], calls["within_60"]["share"], calls["within_180"]["share"]) == (
        5, 0.75, 1.0)
    assert calls["within_180"]["verdict"] == "met"
    assert [s["severity"] for s in body["by_severity"]] == ["critical", "urgent"]
    workers = {w["username"]: w for w in body["by_worker"]}
    assert workers["care-north"]["acknowledged"] == 3
    assert workers["care-north"]["within_60"]["share"] == 1.0
    assert workers["duty-north"]["ack_median_s"] == 120.0
    assert body["labels"]["metrics"]["within_60"] == "Acknowledged within 60 s"
    assert body["labels"]["verdicts"]["met"] == "Target met"


async def test_the_week_holds_every_day_of_it(after: httpx.AsyncClient, stored: Stored) -> None:
    resp = await _get(after, "admin", f"/sites/north/answer-times/report?period=week&date={DAY}")
    body = resp.json()
    assert (body["start_local"], body["end_local"]) == ("2026-03-02 00:00", "2026-03-09 00:00")
    assert body["all"]["opened"] == 7  # a1..a7 (a0 was on Sunday)


async def test_the_shift_numbers_start_with_the_running_shift(
        in_shift: httpx.AsyncClient, stored: Stored, world: World) -> None:
    resp = await _get(in_shift, "duty-north", "/sites/north/answer-times/shift")
    body = resp.json()
    assert body["window"] == "shift"
    assert (body["start_local"], body["end_local"]) == ("2026-03-02 08:00", "2026-03-02 12:30")
    every = body["all"]  # a2, a3, a4 (a4 30 min old, unacknowledged: late)
    assert (every["opened"], every["within_60"]["within"], every["within_60"]["decided"]) == (
        3, 1, 3)
    assert every["within_180"]["within"] == 2
    assert body["open_now"] == 3  # a4 and the world's two active north alerts
    # a care worker sees the team's numbers and only their own row
    mine = (await _get(in_shift, "care-north", "/sites/north/answer-times/shift")).json()
    assert [w["username"] for w in mine["by_worker"]] == ["care-north"]
    assert mine["all"] == every


async def test_without_a_running_shift_the_last_12_hours(after: httpx.AsyncClient,
                                                         stored: Stored) -> None:
    body = (await _get(after, "admin", "/sites/north/answer-times/shift")).json()
    assert body["window"] == "last_12h"
    assert (body["start_local"], body["all"]["opened"]) == ("2026-03-04 20:00", 0)


async def test_csv_export_has_the_reports_numbers_and_is_audited(
        after: httpx.AsyncClient, stored: Stored, clean_db: str) -> None:
    resp = await _get(after, "duty-north", f"/sites/north/answer-times/report.csv?date={DAY}")
    assert resp.status_code == 200
    assert 'filename="answer-times-north-day-2026-03-02.csv"' in resp.headers[
        "content-disposition"]
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == ["Answer-time compliance", "north",
                       "2026-03-02 00:00 – 2026-03-03 00:00 (Asia/Shanghai)"]
    header = rows[1]
    assert header[:4] == ["Group", "Name", "Alerts opened", "Acknowledged"]
    by_name = {(r[0], r[1]): dict(zip(header, r, strict=True)) for r in rows[2:]}
    every = by_name[("All alerts", "")]
    assert every["Acknowledged within 60 s"] == "0.6"
    assert every["Median time to acknowledge"] == "30.0"
    assert every["60 s target"] == "Target not met"
    assert by_name[("Alarm calls (SOS and falls)", "")]["180 s target"] == "Target met"
    assert by_name[("Severity", "Urgent")]["Not acknowledged yet"] == "1"
    assert by_name[("Worker", "Carl Care")]["Acknowledged"] == "3"
    with db.connect(clean_db) as conn:
        detail = conn.execute("SELECT detail FROM audit_log WHERE action = 'export' "
                              "ORDER BY id DESC LIMIT 1").fetchone()
    assert detail is not None
    info: Any = detail[0]
    assert info["format"] == "csv" and info["report"] == "answer_times"


async def test_xlsx_export_has_the_reports_numbers(after: httpx.AsyncClient,
                                                   stored: Stored) -> None:
    from openpyxl import load_workbook

    resp = await _get(after, "admin", f"/sites/north/answer-times/report.xlsx?date={DAY}")
    assert resp.status_code == 200
    sheet = load_workbook(io.BytesIO(resp.content)).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][:2] == ["Answer-time compliance", "north"]
    header = rows[2]
    every = dict(zip(header, rows[3], strict=True))
    assert (every["Group"], every["Alerts opened"], every["Acknowledged within 60 s"]) == (
        "All alerts", 6, 0.6)
    assert every["90th percentile time to resolve"] == 900.0
    assert sheet.cell(row=4, column=5).number_format == "0.0%"


@pytest.mark.parametrize(("user", "path", "code"), [
    ("duty-south", "/sites/north/answer-times/report", 403),
    ("duty-south", "/sites/north/answer-times/shift", 403),
    ("duty-south", "/sites/north/answer-times/report.csv", 403),
    ("care-north", "/sites/north/answer-times/report", 403),
    ("care-north", "/sites/north/answer-times/report.xlsx", 403),
    ("care-north", "/sites/south/answer-times/shift", 403),
    ("family-alice", "/sites/north/answer-times/shift", 403),
    ("family-alice", "/sites/north/answer-times/report.csv", 403),
    ("admin", "/sites/nowhere/answer-times/report", 404),
    ("duty-south", "/sites/south/answer-times/report", 200),
    ("care-north", "/sites/north/answer-times/shift", 200),
])
async def test_roles_and_scopes(after: httpx.AsyncClient, world: World, user: str, path: str,
                                code: int) -> None:
    assert (await _get(after, user, path)).status_code == code


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "2026-02-30", "yesterday"])
async def test_a_date_out_of_range_is_a_field_error(after: httpx.AsyncClient, world: World,
                                                    day: str) -> None:
    resp = await _get(after, "admin", f"/sites/north/answer-times/report?period=week&date={day}")
    assert resp.status_code == 422
    assert "date" in resp.text


async def test_a_refused_export_is_recorded_as_denied(after: httpx.AsyncClient, world: World,
                                                      clean_db: str) -> None:
    assert (await _get(after, "care-north",
                       "/sites/north/answer-times/report.csv")).status_code == 403
    with db.connect(clean_db) as conn:
        row = conn.execute("SELECT outcome, actor FROM audit_log WHERE action = 'export' "
                           "ORDER BY id DESC LIMIT 1").fetchone()
    assert row == ("denied", "care-north")


def test_local_days_follow_dst() -> None:
    from alerts.answer_query import day_period

    day = day_period(datetime(2026, 3, 8).date(), "America/New_York").period
    assert day.end - day.start == timedelta(hours=23)
    assert day.start == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)


async def test_the_exports_speak_the_language_of_the_request(after: httpx.AsyncClient,
                                                             stored: Stored) -> None:
    """A Chinese browser gets Chinese headers and labels (the UTF-8 mark lets Excel read
    the CSV); the numbers and the data (site id, worker names) are the same."""
    from openpyxl import load_workbook

    zh = {**await login(after, "duty-north"), "Accept-Language": "zh-CN,zh;q=0.9"}
    resp = await after.get(f"{API}/sites/north/answer-times/report.csv?date={DAY}", headers=zh)
    assert resp.status_code == 200
    assert resp.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["接警及时率", "north"]
    header = rows[1]
    assert header[:4] == ["分组", "姓名", "新增告警", "已确认"]
    by_name = {(r[0], r[1]): dict(zip(header, r, strict=True)) for r in rows[2:]}
    every = by_name[("全部告警", "")]
    assert every["60 秒内确认"] == "0.6" and every["60 秒标准"] == "未达标"
    assert by_name[("紧急呼叫（SOS 与跌倒）", "")]["180 秒标准"] == "达标"
    assert by_name[("严重程度", "紧急")]["尚未确认"] == "1"
    assert by_name[("人员", "Carl Care")]["已确认"] == "3"
    xlsx = await after.get(f"{API}/sites/north/answer-times/report.xlsx?date={DAY}",
                           headers=zh)
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.active.title == "应答时效"
    rows = [list(r) for r in book.active.iter_rows(values_only=True)]
    assert rows[0][:2] == ["接警及时率", "north"]
    assert rows[2][:3] == ["分组", "姓名", "新增告警"]
    explicit = await after.get(f"{API}/sites/north/answer-times/report.csv?date={DAY}"
                               "&lang=en", headers=zh)  # an explicit lang wins
    assert explicit.text.startswith("Answer-time compliance,north,")

"""Read API for a resident's vital signs: heart rate, respiration, movement and occupancy in
buckets, read from the raw readings, the 1-minute rollup or the daily rollup, whichever serves
the range and bucket width (`choose_source`)."""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from dashboard.audit import AuditNote, audited
from dashboard.deps import AsyncConn, ConnDep
from dashboard.models import BoundedTime, VitalsOut, VitalsSource
from dashboard.params import IdPath
from dashboard.scope import ScopeDep
from ingest.rollups import ROLLUP_JOB
from kernel.audit import Action
from kernel.i18n import N_, Said

logger = logging.getLogger(__name__)

router = APIRouter()

MAX_POINTS = 20_000  # 7 days at 1 minute is 10,080
MAX_BUCKET_S = 366 * 86400
RAW_MAX_RANGE = timedelta(hours=6)
DEFAULT_RANGE = timedelta(hours=24)
_BUCKET_RE = re.compile(r"^(\d{1,9})([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

_VITALS_RAW = """
SELECT time_bucket(%(bucket)s, time) AS t, avg(heart_rate), avg(respiration_rate),
       avg(movement), avg(occupied::int), count(*)
FROM bed_telemetry
WHERE resident_id = %(rid)s AND time >= %(from)s AND time < %(to)s
GROUP BY t ORDER BY t
"""

# Rolled-up minutes before the rollup's watermark (`split`), raw readings after it.
_VITALS_1M = """
WITH m AS (
    SELECT bucket, hr_avg, hr_samples, rr_avg, rr_samples, movement_avg, occupied_fraction,
           samples
    FROM vitals_1m
    WHERE resident_id = %(rid)s AND bucket >= %(from)s AND bucket < %(split)s
    UNION ALL
    SELECT time_bucket('1 minute', time), avg(heart_rate), count(heart_rate),
           avg(respiration_rate), count(respiration_rate), avg(movement), avg(occupied::int),
           count(*)
    FROM bed_telemetry
    WHERE resident_id = %(rid)s AND time >= %(split)s AND time < %(to)s
    GROUP BY 1
)
SELECT time_bucket(%(bucket)s, bucket) AS t,
       sum(hr_avg * hr_samples) / NULLIF(sum(hr_samples), 0),
       sum(rr_avg * rr_samples) / NULLIF(sum(rr_samples), 0),
       sum(movement_avg * samples) / NULLIF(sum(samples), 0),
       sum(occupied_fraction * samples) / NULLIF(sum(samples), 0),
       sum(samples)
FROM m GROUP BY t ORDER BY t
"""

# Local days of the resident (buckets start at local midnight).
_VITALS_1D = """
SELECT time_bucket(%(bucket)s, day_start, %(tz)s) AS t,
       sum(hr_avg * hr_samples) / NULLIF(sum(hr_samples), 0),
       sum(rr_avg * rr_samples) / NULLIF(sum(rr_samples), 0),
       sum(movement_avg * samples) / NULLIF(sum(samples), 0),
       sum(occupied_fraction * samples) / NULLIF(sum(samples), 0),
       sum(samples)
FROM resident_daily
WHERE resident_id = %(rid)s AND day_start >= %(from)s AND day_start < %(to)s
GROUP BY t ORDER BY t
"""

# Points as JSON, shaped like VitalsPoint: times in UTC with "Z" (as pydantic writes them),
# values rounded. Built as text (all values are numbers), ~2x faster than json_build_object.
_POINTS_JSON = """
SELECT '[' || COALESCE(string_agg(format(
           '{{"t":"%%sZ","heart_rate":%%s,"respiration_rate":%%s,"movement":%%s,'
           '"occupied_fraction":%%s,"samples":%%s}}',
           to_char(p.t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'),
           COALESCE((round(p.hr::float8 * 100) / 100)::text, 'null'),
           COALESCE((round(p.rr::float8 * 100) / 100)::text, 'null'),
           COALESCE((round(p.mov::float8 * 100) / 100)::text, 'null'),
           COALESCE((round(p.occ::float8 * 1000) / 1000)::text, 'null'),
           p.n), ',' ORDER BY p.t), '') || ']'
FROM ({query}) AS p (t, hr, rr, mov, occ, n)
"""

_RESIDENT_TZ = """
SELECT COALESCE(r.timezone, s.timezone) FROM residents r JOIN sites s ON s.id = r.site_id
WHERE r.id = %s
"""


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def parse_bucket(text: str) -> int:
    """Bucket width in seconds from `90`, `30s`, `5m`, `1h` or `1d`; 422 when unusable."""
    match = _BUCKET_RE.match(text.strip().lower())
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)] if match else 0
    if not 1 <= seconds <= MAX_BUCKET_S:
        raise _unprocessable(Said(
            N_("query parameter 'bucket': {text!r} is not a bucket width; use seconds or a "
               "number with s, m, h or d, e.g. 30s, 5m, 1h or 1d (at most 366d)"), text=text))
    return seconds


def vitals_range(start: datetime | None, end: datetime | None, now: datetime
                 ) -> tuple[datetime, datetime]:
    """[from, to) in UTC: defaults to the last 24 hours; naive times are taken as UTC."""
    def utc(t: datetime) -> datetime:
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    end = utc(end) if end is not None else now
    start = utc(start) if start is not None else end - DEFAULT_RANGE
    if start >= end:
        raise _unprocessable(N_("query parameter 'from' must be earlier than 'to'"))
    return start, end


def check_points(start: datetime, end: datetime, bucket_s: int) -> None:
    """422 when the range holds more than MAX_POINTS buckets."""
    points = math.ceil((end - start).total_seconds() / bucket_s)
    if points > MAX_POINTS:
        need = math.ceil((end - start).total_seconds() / MAX_POINTS)
        raise _unprocessable(Said(
            N_("{points} buckets requested; at most {most} are returned. Use a wider "
               "'bucket' (at least {need} seconds for this range) or a shorter range"),
            points=points, most=MAX_POINTS, need=need))


def choose_source(start: datetime, end: datetime, bucket_s: int) -> VitalsSource:
    """raw for short ranges or sub-minute buckets, 1d for whole days, else the 1m rollup."""
    if bucket_s % 60 or end - start <= RAW_MAX_RANGE:
        return "raw"
    if bucket_s % 86400 == 0:
        return "1d"
    return "1m"


async def _rollup_done_until(conn: AsyncConn) -> datetime | None:
    cur = await conn.execute("SELECT done_until FROM job_watermarks WHERE job = %s",
                             (ROLLUP_JOB,))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def _vitals_json(conn: AsyncConn, resident_id: int, start: datetime, end: datetime,
                       bucket_s: int, source: VitalsSource) -> str:
    """The points as a JSON array, built by the database (fast for 10,000+ points)."""
    params: dict[str, object] = {"rid": resident_id, "from": start, "to": end,
                                 "bucket": timedelta(seconds=bucket_s)}
    if source == "raw":
        query = _VITALS_RAW
    elif source == "1m":
        done = await _rollup_done_until(conn)
        params["split"] = start if done is None else min(max(done, start), end)
        query = _VITALS_1M
    else:
        cur = await conn.execute(_RESIDENT_TZ, (resident_id,))
        row = await cur.fetchone()
        params["tz"] = row[0] if row else "UTC"
        query = _VITALS_1D
    cur = await conn.execute(_POINTS_JSON.format(query=query), params)
    row = await cur.fetchone()
    return str(row[0]) if row else "[]"


def _vitals_body(out: VitalsOut, points_json: str) -> bytes:
    """`out` (with no points) serialized as usual, with the database's points spliced in."""
    head = out.model_dump_json(by_alias=True)
    empty = '"points":[]}'
    if not head.endswith(empty):
        raise RuntimeError("VitalsOut must serialize 'points' last")
    return f"{head[:-len(empty)]}\"points\":{points_json}}}".encode()


@router.get("/residents/{resident_id}/vitals", response_model=VitalsOut, tags=["residents"])
async def get_vitals(
    resident_id: IdPath,
    scope: ScopeDep,
    conn: ConnDep,
    note: Annotated[AuditNote, audited(Action.VITALS_READ, "resident", resident="resident_id")],
    start: Annotated[BoundedTime | None, Query(
        alias="from", description="ISO-8601 start (inclusive); default: 24 h before 'to'. "
                                  "Without an offset, UTC is assumed.")] = None,
    end: Annotated[BoundedTime | None, Query(
        alias="to", description="ISO-8601 end (exclusive); default: now. Times must lie "
                                "between 1970 and 2200.")] = None,
    bucket: Annotated[str, Query(max_length=16, description="Bucket width: seconds, or e.g. "
                                 "30s, 5m, 1h, 1d.")] = "5m",
) -> Response:
    """Bucketed heart rate, respiration, movement and occupancy of one resident in scope."""
    bucket_s = parse_bucket(bucket)
    start, end = vitals_range(start, end, datetime.now(UTC))
    check_points(start, end, bucket_s)
    note.detail.update({"from": start, "to": end, "bucket_s": bucket_s})
    await scope.require_resident(conn, resident_id)
    source = choose_source(start, end, bucket_s)
    points = await _vitals_json(conn, resident_id, start, end, bucket_s, source)
    out = VitalsOut.model_validate({"resident_id": resident_id, "from": start, "to": end,
                                    "bucket_seconds": bucket_s, "source": source, "points": []})
    return Response(_vitals_body(out, points), media_type="application/json")

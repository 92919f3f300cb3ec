"""Reading residents' daily features and writing baselines and routine-change state
(tables resident_daily, resident_baselines, routine_state; migration 0020_learning).

The features are turned into DayFeatures here, in SQL, with the resident's own time zone:
bedtime as minutes after local noon of the evening before, rise time as minutes after local
midnight, device coverage as a share of the local day (23 or 25 hours on a DST change) - of
the part its data reaches, for today's partial row (`day_of_row`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from alerts.learning.baselines import Baseline
from alerts.learning.features import FEATURES, DayFeatures
from alerts.learning.routine import FeatureState
from alerts.model import AlertType
from kernel.db import AsyncConn, Conn

# Alerts about the devices or the routine itself do not make a day unusual for the person.
NOT_ABOUT_THE_PERSON = (AlertType.DEVICE_OFFLINE.value, AlertType.LOW_BATTERY.value,
                        AlertType.TEST_OVERDUE.value, AlertType.ROUTINE_CHANGE.value)

# An alert counts for the day whose night it fell in: from 22:00 the evening before (the
# night of a day starts then, ingest/rollups.py) to the local midnight that ends the day.
_DAYS = """
SELECT d.resident_id, d.day,
       extract(epoch FROM (d.bedtime AT TIME ZONE d.timezone) - ((d.day - 1) + time '12:00'))
           / 60 AS bedtime,
       extract(epoch FROM (d.rise_time AT TIME ZONE d.timezone) - d.day::timestamp) / 60
           AS rise_time,
       d.time_in_bed_s, d.night_exits, d.night_out_s, d.away_s, d.resting_hr, d.median_rr,
       d.pauses_per_hour, d.restlessness, d.min_battery, d.data_minutes,
       extract(epoch FROM LEAST((d.day + 1)::timestamp AT TIME ZONE d.timezone,
                                COALESCE(d.data_until, 'infinity')) - d.day_start) / 60
           AS day_minutes,
       EXISTS (SELECT 1 FROM alerts a
                WHERE a.resident_id = d.resident_id
                  AND a.opened_at >= (((d.day - 1) + time '22:00') AT TIME ZONE d.timezone)
                  AND a.opened_at < ((d.day + 1)::timestamp AT TIME ZONE d.timezone)
                  AND a.type <> ALL(%(ignored)s)) AS alerted,
       d.data_until IS NULL OR d.data_until >= d.night_final_at AS night_final,
       d.data_until IS NULL OR d.data_until >= (d.day + 1)::timestamp AT TIME ZONE d.timezone
           AS day_final,
       CASE WHEN d.data_until >= d.night_final_at THEN d.night_final_at END AS night_final_at
  FROM resident_daily d
 WHERE d.resident_id = ANY(%(ids)s) AND d.day >= %(since)s AND d.day <= %(until)s
 ORDER BY d.resident_id, d.day
"""

_PERSON_COLUMNS = ("bedtime", "rise_time", "time_in_bed_s", "night_exits", "night_out_s",
                   "away_s", "resting_hr", "median_rr", "pauses_per_hour", "restlessness")


def _num(v: object) -> float | None:
    return None if v is None else float(v)  # type: ignore[arg-type]


def day_of_row(row: Sequence[Any]) -> DayFeatures:
    """One row of `_DAYS` as DayFeatures (shared by the job's and the web app's readers).

    A partial row (today's, upserted every 15 minutes) counts what its data says so far:
    its coverage is over the minutes its data reaches (`data_until`), so a well-covered
    morning has its night judged at once; but a feature is None until it is final (Feature.
    settles): a night feature until the data reaches the row's `night_final_at`, a feature
    of the whole day until the day's end - half a day's time in bed is no day's time in bed,
    and no chart or baseline must take it for one. Rows without `data_until` (written before
    it was kept) count as complete."""
    rid, day = int(row[0]), row[1]
    person = dict(zip(_PERSON_COLUMNS, (_num(v) for v in row[2:12]), strict=True))
    (min_battery, data_minutes, day_minutes, alerted, night_final, day_final,
     night_final_at) = row[12:19]
    total = 1440.0 if day_minutes is None else float(day_minutes)
    coverage = min(1.0, float(data_minutes) / total) if total > 0 else 0.0
    values: dict[str, float | None] = {
        **person, "coverage": 100.0 * coverage,
        "offline_min": max(0.0, total - float(data_minutes)),
        "min_battery": _num(min_battery)}
    final = {"morning": bool(night_final), "day": bool(day_final)}
    for f in FEATURES:
        if not final[f.settles]:
            values[f.name] = None
    return DayFeatures(rid, day, values, coverage, bool(alerted), night_final_at)


def _params(resident_ids: Iterable[int], since: date, until: date) -> dict[str, Any]:
    return {"ids": list(resident_ids), "since": since, "until": until,
            "ignored": list(NOT_ABOUT_THE_PERSON)}


def load_days(conn: Conn, resident_ids: Iterable[int], since: date,
              until: date) -> dict[int, list[DayFeatures]]:
    """Each resident's DayFeatures of the local days since..until (inclusive), in order."""
    out: dict[int, list[DayFeatures]] = {}
    for row in conn.execute(_DAYS, _params(resident_ids, since, until)):
        d = day_of_row(row)
        out.setdefault(d.resident_id, []).append(d)
    return out


async def load_days_async(conn: AsyncConn, resident_id: int, since: date,
                          until: date) -> list[DayFeatures]:
    """One resident's DayFeatures of since..until, in order: the same query and rows as
    `load_days`, for the web app (the daily routine chart)."""
    cur = await conn.execute(_DAYS, _params([resident_id], since, until))
    return [day_of_row(row) for row in await cur.fetchall()]


def load_states(conn: Conn, resident_ids: Iterable[int]) -> dict[int, dict[str, FeatureState]]:
    """Routine-change states per resident and feature."""
    out: dict[int, dict[str, FeatureState]] = {}
    for (rid, feat, up, down, run_up, run_down, last_day, last_alert, alarmed_up,
         alarmed_down) in conn.execute(
            "SELECT resident_id, feature, ewma_up, ewma_down, run_up, run_down, last_day, "
            "last_alert_day, alarmed_up, alarmed_down FROM routine_state "
            "WHERE resident_id = ANY(%s)", (list(resident_ids),)):
        out.setdefault(int(rid), {})[feat] = FeatureState(
            feat, up, down, run_up, run_down, last_day, last_alert, bool(alarmed_up),
            bool(alarmed_down))
    return out


def save_states(conn: Conn, resident_id: int, states: Mapping[str, FeatureState],
                now: datetime) -> None:
    """Upsert one resident's routine-change states (states never judged are skipped)."""
    rows = [(resident_id, s.feature, s.ewma_up, s.ewma_down, s.run_up, s.run_down,
             s.last_day, s.last_alert_day, s.alarmed_up, s.alarmed_down, now)
            for s in states.values() if s.last_day is not None]
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO routine_state (resident_id, feature, ewma_up, ewma_down, run_up, "
            "run_down, last_day, last_alert_day, alarmed_up, alarmed_down, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (resident_id, feature) DO UPDATE SET ewma_up = EXCLUDED.ewma_up, "
            "ewma_down = EXCLUDED.ewma_down, run_up = EXCLUDED.run_up, "
            "run_down = EXCLUDED.run_down, last_day = EXCLUDED.last_day, "
            "last_alert_day = EXCLUDED.last_alert_day, alarmed_up = EXCLUDED.alarmed_up, "
            "alarmed_down = EXCLUDED.alarmed_down, updated_at = EXCLUDED.updated_at", rows)


def save_baselines(conn: Conn, resident_id: int, baselines: Iterable[Baseline],
                   now: datetime) -> None:
    """Upsert one resident's latest baselines."""
    rows = [(resident_id, b.feature, b.median, b.mad, b.n_days, b.personal, b.window_start,
             b.window_end, b.computed_for, now) for b in baselines]
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO resident_baselines (resident_id, feature, median, mad, n_days, "
            "personal, window_start, window_end, computed_for, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (resident_id, feature) DO UPDATE SET median = EXCLUDED.median, "
            "mad = EXCLUDED.mad, n_days = EXCLUDED.n_days, personal = EXCLUDED.personal, "
            "window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end, "
            "computed_for = EXCLUDED.computed_for, updated_at = EXCLUDED.updated_at", rows)


def load_baselines(conn: Conn, resident_ids: Sequence[int]) -> dict[int, dict[str, Baseline]]:
    """The stored (latest) baselines per resident and feature."""
    out: dict[int, dict[str, Baseline]] = {}
    for row in conn.execute(
            "SELECT resident_id, feature, median, mad, n_days, personal, window_start, "
            "window_end, computed_for FROM resident_baselines WHERE resident_id = ANY(%s)",
            (list(resident_ids),)):
        out.setdefault(int(row[0]), {})[row[1]] = Baseline(*row[1:])
    return out

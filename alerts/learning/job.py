"""The scheduled learning job (issue 15): after the daily rollup, judge each resident's newly
completed local days - baselines, routine-change state, `routine_change` alerts - and keep
what it learned in the database, so it survives restarts.

A local day is complete once the daily summaries job (ingest/jobs.py, watermark
`resident_daily`) has summarised data up to the local midnight that ends it. Each resident's
days are judged in order, once: `routine_state.last_day` records the last one, so a re-run
changes nothing. Alerts go through the normal store path (alerts.store.store_trigger:
deduplication, assignment, escalation), in the same transaction as the state that decided
them. Late data that reaches a day after it was judged is not judged again.

On a first run (or after a long stop) the job catches up at most `catchup_days`; changes
found on days older than `alert_max_age_days` only update the state (an alert about last
month's routine would be noise).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.config import AlertSettings, effective_settings
from alerts.learning import store
from alerts.learning.baselines import window_of
from alerts.learning.features import PERSON_FEATURES
from alerts.learning.routine import (
    DayResult,
    FeatureState,
    RoutineChange,
    RoutineSettings,
    judge_days,
)
from alerts.model import AlertTrigger, AlertType
from alerts.store import store_trigger
from kernel.db import Conn

logger = logging.getLogger(__name__)

JOB = "learning"


@dataclass(frozen=True)
class LearningSettings:
    """Tunables of the learning job."""

    alerts: AlertSettings = field(default_factory=AlertSettings)
    daily_job: str = "resident_daily"  # the watermark of the daily summaries (ingest.jobs)
    catchup_days: int = 60
    alert_max_age_days: int = 7


@dataclass(frozen=True)
class LearningRun:
    """What one run did."""

    residents: int
    days: int
    alerts: int


def routine_settings(s: AlertSettings) -> RoutineSettings:
    """A resident's routine-change tunables from their effective alert settings."""
    r = s.routine_change
    return RoutineSettings(enabled=r.enabled, sensitivity=r.sensitivity,
                           ewma_lambda=r.ewma_lambda, threshold=r.threshold,
                           cooldown_days=r.cooldown_days, rearm=r.rearm,
                           z_clip=r.z_clip)


_RESIDENTS = """
SELECT r.id, r.site_id, COALESCE(r.timezone, s.timezone, 'UTC') AS tz, so.settings, ro.settings,
       ((%(done)s::timestamptz AT TIME ZONE COALESCE(r.timezone, s.timezone, 'UTC'))::date - 1)
           AS last_complete,
       (SELECT min(st.last_day) FROM routine_state st WHERE st.resident_id = r.id) AS judged,
       (SELECT min(d.day) FROM resident_daily d WHERE d.resident_id = r.id) AS first_day
  FROM residents r
  JOIN sites s ON s.id = r.site_id
  LEFT JOIN alert_overrides so ON so.site_id = r.site_id
  LEFT JOIN alert_overrides ro ON ro.resident_id = r.id
 WHERE r.active
 ORDER BY r.id
"""


def _settings(base: AlertSettings, site_ov: Any, res_ov: Any, rid: int) -> AlertSettings:
    """Effective settings; an invalid override is logged and ignored."""
    try:
        return effective_settings(base, site_ov, res_ov)
    except ValueError as exc:
        logger.error("resident %d: invalid alert override ignored: %s", rid, exc)
        return base


def run_learning(conn: Conn, now: datetime, cfg: LearningSettings = LearningSettings()
                 ) -> LearningRun:
    """Judge every active resident's newly completed local days (autocommit connection;
    `now`: the wall clock, for the alerts' bookkeeping only - days come from the data)."""
    row = conn.execute("SELECT done_until FROM job_watermarks WHERE job = %s",
                       (cfg.daily_job,)).fetchone()
    if row is None:
        return LearningRun(0, 0, 0)
    residents = days = alerts = 0
    for rid, site, tz, site_ov, res_ov, last_complete, judged, first_day in conn.execute(
            _RESIDENTS, {"done": row[0]}).fetchall():
        if first_day is None:
            continue
        start = max(first_day, last_complete - timedelta(days=cfg.catchup_days - 1))
        if judged is not None:
            start = max(start, judged + timedelta(days=1))
        if start > last_complete:
            continue
        settings = _settings(cfg.alerts, site_ov, res_ov, rid)
        n_days, n_alerts = _judge_resident(conn, rid, site, tz, start, last_complete,
                                           settings, now, cfg)
        residents += 1
        days += n_days
        alerts += n_alerts
    if days:
        logger.info("learning: %d days of %d residents judged, %d routine-change alerts",
                    days, residents, alerts)
    return LearningRun(residents, days, alerts)


def _judge_resident(conn: Conn, rid: int, site: str, tz: str, start: date, end: date,
                    settings: AlertSettings, now: datetime, cfg: LearningSettings
                    ) -> tuple[int, int]:
    """Judge one resident's days start..end and persist the outcome in one transaction."""
    rs = routine_settings(settings)
    # From the first day of `start`'s baseline window (which ends `gap_days` before it).
    since = window_of(start, rs.window_days, rs.gap_days)[0]
    history = store.load_days(conn, [rid], since, end)
    days = history.get(rid, [])
    states = store.load_states(conn, [rid]).get(rid, {})
    judge = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    results = judge_days(days, judge, states, rs, PERSON_FEATURES)
    alerts = 0
    with conn.transaction():
        for result in results:
            if result.changes and (end - result.day).days < cfg.alert_max_age_days:
                alerts += _open_alert(conn, rid, site, tz, result, settings, now)
        final: dict[str, FeatureState] = results[-1].states if results else dict(states)
        store.save_states(conn, rid, final, now)
        if results:
            store.save_baselines(conn, rid, results[-1].baselines.values(), now)
    return len(results), alerts


def day_end(day: date, tz: str) -> datetime:
    """The local midnight that ends `day`, in UTC: the event time of its alert."""
    return datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(tz)).astimezone(UTC)


def trigger_of(rid: int, site: str, tz: str, day: date, changes: list[RoutineChange],
               settings: AlertSettings) -> AlertTrigger:
    """The routine_change trigger of one day: the first change's details, and every change
    of the day under `changes` (one alert per resident and type may be open)."""
    details: dict[str, Any] = dict(changes[0].details())
    details["changes"] = [c.details() for c in changes]
    return AlertTrigger(resident_id=rid, site=site, device_id=None,
                        type=AlertType.ROUTINE_CHANGE,
                        severity=settings.severity_of(AlertType.ROUTINE_CHANGE),
                        at=day_end(day, tz), details=details)


def _open_alert(conn: Conn, rid: int, site: str, tz: str, result: DayResult,
                settings: AlertSettings, now: datetime) -> int:
    trig = trigger_of(rid, site, tz, result.day, result.changes, settings)
    stored = store_trigger(conn, trig, settings, now)
    for c in result.changes:
        logger.info("resident %d: routine change on %s: %s", rid, result.day.isoformat(),
                    c.explanation())
    return int(stored is not None and stored.created)

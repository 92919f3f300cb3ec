"""The scheduled learning job (issue 15): after the daily rollup, judge each resident's newly
final local days - baselines, routine-change state, `routine_change` alerts - and keep what it
learned in the database, so it survives restarts.

A day's features are judged once they are final (features.Feature.settles), not all at the
day's end: the night features (bedtime, rise time, night exits, the night's heart rate,
breathing and restlessness) once the daily summaries job (ingest/jobs.py, watermark
`resident_daily`) has summarised the data up to the row's `night_final_at` - the end of the
morning window plus the 30 minutes a rise needs, 12:30 local with the default rules - so a
worrying night reaches the duty officer the same morning; the features of the whole day
(time in bed, the longest time away from bed) once it has summarised up to the local
midnight that ends the day. A routine change's event time is that instant. Each feature's
days are judged in order, once: `routine_state.last_day` records its last one, so a re-run
changes nothing. Alerts go through the normal store path (alerts.store.store_trigger:
deduplication, assignment, escalation, and a change joining an open routine_change alert,
alerts/learning/merge.py), in event-time order, in the same transaction as the state that
decided them. Late data that reaches a day after it was judged is not judged again.

On a first run (or after a long stop) the job catches up at most `catchup_days`; changes
found on days older than `alert_max_age_days` only update the state (an alert about last
month's routine would be noise).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.config import AlertSettings, effective_settings
from alerts.learning import store
from alerts.learning.baselines import window_of
from alerts.learning.features import MORNING_FEATURES, WHOLE_DAY_FEATURES, Feature
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
SELECT r.id, r.site_id, z.tz, so.settings, ro.settings, lc.day AS last_complete,
       (SELECT min(st.last_day) FROM routine_state st WHERE st.resident_id = r.id) AS judged,
       (SELECT min(d.day) FROM resident_daily d WHERE d.resident_id = r.id) AS first_day,
       -- today, once the summaries' data has reached the end of its morning
       (SELECT max(d.day) FROM resident_daily d
         WHERE d.resident_id = r.id AND d.day > lc.day AND d.night_final_at <= %(done)s
           AND d.data_until >= d.night_final_at) AS last_night
  FROM residents r
  JOIN sites s ON s.id = r.site_id
  CROSS JOIN LATERAL (SELECT COALESCE(r.timezone, s.timezone, 'UTC') AS tz) z
  CROSS JOIN LATERAL (SELECT (%(done)s::timestamptz AT TIME ZONE z.tz)::date - 1 AS day) lc
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
    """Judge every active resident's newly final days (autocommit connection; `now`: the
    wall clock, for the alerts' bookkeeping only - days come from the data)."""
    row = conn.execute("SELECT done_until FROM job_watermarks WHERE job = %s",
                       (cfg.daily_job,)).fetchone()
    if row is None:
        return LearningRun(0, 0, 0)
    residents = days = alerts = 0
    for (rid, site, tz, site_ov, res_ov, last_complete, judged, first_day,
         last_night) in conn.execute(_RESIDENTS, {"done": row[0]}).fetchall():
        if first_day is None:
            continue
        ends = Ends(last_night or last_complete, last_complete)
        start = max(first_day, last_complete - timedelta(days=cfg.catchup_days - 1))
        if judged is not None and judged + timedelta(days=1) > ends.night:
            continue  # nothing new (the quick check; each group finds its own days)
        if start > ends.night:
            continue
        settings = _settings(cfg.alerts, site_ov, res_ov, rid)
        n_days, n_alerts = _judge_resident(conn, rid, site, tz, start, ends, settings, now,
                                           cfg)
        residents += int(n_days > 0)
        days += n_days
        alerts += n_alerts
    if days:
        logger.info("learning: %d days of %d residents judged, %d routine-change alerts",
                    days, residents, alerts)
    return LearningRun(residents, days, alerts)


@dataclass(frozen=True)
class Ends:
    """The last day whose features of each kind are final (features.Feature.settles): the
    night features' once the data has reached that day's `night_final_at` (today, from
    12:30 with the default rules), the whole day's once it has reached the day's end."""

    night: date
    day: date


@dataclass(frozen=True)
class _Found:
    """Changes of one day's features of one kind, and their event time."""

    at: datetime
    result: DayResult
    end: date


def _first_unjudged(states: dict[str, FeatureState], features: Sequence[Feature],
                    start: date) -> date:
    """The first day from `start` on that some of `features` have not judged yet."""
    done = [states[f.name].last_day for f in features if f.name in states]
    known = [d for d in done if d is not None]
    if len(known) < len(features):
        return start
    return max(start, min(known) + timedelta(days=1))


def _judge_resident(conn: Conn, rid: int, site: str, tz: str, start: date, ends: Ends,
                    settings: AlertSettings, now: datetime, cfg: LearningSettings
                    ) -> tuple[int, int]:
    """Judge one resident's days from `start` on - the night features up to `ends.night`,
    the whole day's up to `ends.day` - and persist the outcome in one transaction."""
    rs = routine_settings(settings)
    states = store.load_states(conn, [rid]).get(rid, {})
    kinds = [(feats, _first_unjudged(states, feats, start), end, night)
             for feats, end, night in ((MORNING_FEATURES, ends.night, True),
                                       (WHOLE_DAY_FEATURES, ends.day, False))]
    first_day = min(first for _, first, _, _ in kinds)
    # From the first day of the first judged day's baseline window (which ends `gap_days`
    # before it): a day judged on its own gets its whole window.
    since = window_of(first_day, rs.window_days, rs.gap_days)[0]
    days = store.load_days(conn, [rid], since, ends.night).get(rid, [])
    finals = {d.day: d.night_final_at for d in days if d.night_final_at is not None}
    found: list[_Found] = []
    final: dict[str, FeatureState] = dict(states)
    judged: set[date] = set()
    for feats, first, end, night in kinds:
        judge = [first + timedelta(days=i) for i in range((end - first).days + 1)]
        results = judge_days(days, judge, states, rs, feats)
        for result in results:
            at = day_end(result.day, tz)
            found.append(_Found(finals.get(result.day, at) if night else at, result, end))
        if results:
            final.update(results[-1].states)
        judged.update(r.day for r in results)
    if not found:
        return 0, 0
    alerts = 0
    with conn.transaction():
        for f in sorted(found, key=lambda f: f.at):  # in event time: merges see them in order
            if f.result.changes and (f.end - f.result.day).days < cfg.alert_max_age_days:
                alerts += _open_alert(conn, rid, site, tz, f.result, f.at, settings, now)
        store.save_states(conn, rid, final, now)
        for group_last in _last_results(found):
            store.save_baselines(conn, rid, group_last.baselines.values(), now)
    return len(judged), alerts


def _last_results(found: Sequence[_Found]) -> list[DayResult]:
    """The latest judged day's result of each kind of feature (their baselines are kept)."""
    last: dict[frozenset[str], DayResult] = {}
    for f in found:
        key = frozenset(f.result.baselines)
        if key not in last or f.result.day > last[key].day:
            last[key] = f.result
    return list(last.values())


def day_end(day: date, tz: str) -> datetime:
    """The local midnight that ends `day`, in UTC: the event time of its alert."""
    return datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(tz)).astimezone(UTC)


def trigger_of(rid: int, site: str, tz: str, day: date, changes: list[RoutineChange],
               settings: AlertSettings, at: datetime | None = None) -> AlertTrigger:
    """The routine_change trigger of one day: the first change's details, and every change
    of the day under `changes` (one alert per resident and type may be open). `at`: its
    event time, when the features that changed became final (default: the day's end)."""
    details: dict[str, Any] = dict(changes[0].details())
    details["changes"] = [c.details() for c in changes]
    return AlertTrigger(resident_id=rid, site=site, device_id=None,
                        type=AlertType.ROUTINE_CHANGE,
                        severity=settings.severity_of(AlertType.ROUTINE_CHANGE),
                        at=day_end(day, tz) if at is None else at, details=details)


def _open_alert(conn: Conn, rid: int, site: str, tz: str, result: DayResult, at: datetime,
                settings: AlertSettings, now: datetime) -> int:
    trig = trigger_of(rid, site, tz, result.day, result.changes, settings, at)
    stored = store_trigger(conn, trig, settings, now)
    for c in result.changes:
        logger.info("resident %d: routine change on %s: %s", rid, result.day.isoformat(),
                    c.explanation())
    return int(stored is not None and stored.created)

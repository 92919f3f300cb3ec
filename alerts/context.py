"""What the detector needs to know about each resident, loaded from the database in bulk:
timezone, effective thresholds (platform defaults + site + resident overrides), devices,
usual rise time, last call-button test; and the persisted detector state."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, time
from typing import Any

from alerts.config import AlertSettings, effective_settings
from alerts.detector import DeviceContext, ResidentContext
from alerts.learning.baselines import personal_times
from alerts.learning.store import load_baselines
from gateway.schema import DeviceType
from kernel.db import Conn

logger = logging.getLogger(__name__)


_RESIDENTS = """
SELECT r.id, r.site_id, COALESCE(r.timezone, s.timezone, 'UTC'),
       so.settings, ro.settings
  FROM residents r
  JOIN sites s ON s.id = r.site_id
  LEFT JOIN alert_overrides so ON so.site_id = r.site_id
  LEFT JOIN alert_overrides ro ON ro.resident_id = r.id
 WHERE r.active AND (%(sites)s::text[] IS NULL OR r.site_id = ANY(%(sites)s))
"""

# Slow-moving history (usual rise time, usual day, last call-button test): read at start and
# hourly. These are the fallbacks until the resident's personal baselines count 14 days
# (alerts/learning/baselines.py `personal_times`, which load_history prefers). The fallback
# usual day, the yardstick of long_absence, is a long ordinary day: the 90th percentile of
# the time out of bed per day over days the mat covered (>= 23 h of readings). Not the
# median: on a day with a nap the time out of bed is shorter than the span from rise to
# bedtime, and a resident who naps on most days must not be an alarm on a day without.
_HISTORY = """
SELECT r.id,
       (SELECT percentile_disc(0.5) WITHIN GROUP (
                   ORDER BY (d.rise_time AT TIME ZONE d.timezone)::time)
          FROM resident_daily d
         WHERE d.resident_id = r.id AND d.rise_time IS NOT NULL
           AND d.day >= current_date - 14),
       (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY 86400 - d.time_in_bed_s)
          FROM resident_daily d
         WHERE d.resident_id = r.id AND d.data_minutes >= 1380
           AND d.day >= current_date - 14),
       (SELECT max(e.time) FROM device_events e
         WHERE e.resident_id = r.id AND e.type = 'test'
           AND e.time > now() - interval '60 days')
  FROM residents r
 WHERE r.active AND (%(sites)s::text[] IS NULL OR r.site_id = ANY(%(sites)s))
"""

# usual rise, last button test, usual day (s), usual bedtime
History = dict[int, tuple[time | None, datetime | None, float | None, time | None]]

_DEVICES = """
SELECT d.resident_id, d.id, d.type, d.heartbeat_s, d.created_at, d.last_seen IS NULL
  FROM devices d
 WHERE d.active AND (%(sites)s::text[] IS NULL OR d.site_id = ANY(%(sites)s))
"""


def _valid(base: AlertSettings, site_override: Any, resident_override: Any,
           resident_id: int) -> AlertSettings:
    """Effective settings; an invalid override is logged and ignored (never silences SOS)."""
    try:
        return effective_settings(base, site_override, resident_override)
    except ValueError as exc:
        logger.error("resident %d: invalid alert override ignored: %s", resident_id, exc)
        try:
            return effective_settings(base, site_override)
        except ValueError:
            return base


def load_history(conn: Conn, sites: Iterable[str] | None = None) -> History:
    """Usual rise time, last call-button test, usual day (seconds away from bed) and usual
    bedtime of every active resident of `sites`.

    The rule engine's personal parameters come from the resident's personal baselines
    (alerts/learning, robust statistics over the trailing window, days that raised alerts
    left out) once the learning job has them (>= 14 counted days): the usual rise and
    bedtime are their medians, the usual day `personal_times.usual_day_s`. Until then the
    usual rise and usual day fall back to the last 14 days of summaries (above), which
    adapt from the first covered day, rather than to the population defaults, which are
    wrong in both directions for an early sleeper or a late riser; before any summary the
    rule engine's population defaults stand. The usual bedtime only ever comes from the
    baselines: an early night window from a handful of days would watch the evening."""
    params = {"sites": list(sites) if sites else None}
    history: History = {int(rid): (rise, test, None if day is None else float(day), None)
                        for rid, rise, day, test in conn.execute(_HISTORY, params)}
    learned = load_baselines(conn, list(history))
    for rid, by_feature in learned.items():
        if rid not in history:
            continue
        times = personal_times(by_feature)
        rise, test, day, _ = history[rid]
        history[rid] = (times.usual_rise or rise, test,
                        day if times.usual_day_s is None else times.usual_day_s,
                        times.usual_bedtime)
    return history


def load_contexts(conn: Conn, base: AlertSettings, sites: Iterable[str] | None = None,
                  history: History | None = None) -> dict[int, ResidentContext]:
    """Contexts of every active resident of `sites` (None or empty: all sites); `history`
    (from `load_history`) is read here when not given."""
    params = {"sites": list(sites) if sites else None}
    if history is None:
        history = load_history(conn, sites)
    devices: dict[int, list[DeviceContext]] = {}
    for rid, dev_id, dev_type, heartbeat_s, created_at, never_heard in conn.execute(
            _DEVICES, params):
        # registered_at only while the platform has never heard the device: a device that
        # spoke once is never "never heard", even if its detector state was lost.
        devices.setdefault(rid, []).append(
            DeviceContext(device_id=dev_id, type=DeviceType(dev_type), heartbeat_s=heartbeat_s,
                          registered_at=created_at if never_heard else None))
    out: dict[int, ResidentContext] = {}
    for rid, site, tz, site_ov, res_ov in conn.execute(_RESIDENTS, params):
        usual_rise, last_test, usual_day, usual_bed = history.get(rid, (None, None, None, None))
        # No registration time as a test anchor: that is wall clock, and a replay of older
        # data would never reach it. Without a recorded test, the detector anchors on the
        # first record it sees from the button (event time).
        out[rid] = ResidentContext(
            resident_id=rid, site=site, timezone=tz,
            settings=_valid(base, site_ov, res_ov, rid),
            devices=tuple(devices.get(rid, ())), usual_rise=usual_rise,
            last_test_at=last_test, usual_day_s=usual_day, usual_bedtime=usual_bed)
    return out


def load_states(conn: Conn, resident_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Persisted detector states of these residents."""
    rows = conn.execute("SELECT resident_id, state FROM detector_state "
                        "WHERE resident_id = ANY(%s)", (list(resident_ids),))
    return {int(rid): dict(state) for rid, state in rows}


def save_states(conn: Conn, states: Mapping[int, dict[str, Any]]) -> None:
    """Upsert detector states (one statement per resident, one transaction)."""
    if not states:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO detector_state (resident_id, state, updated_at) "
            "VALUES (%s, %s, now()) ON CONFLICT (resident_id) "
            "DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
            [(rid, json.dumps(state)) for rid, state in states.items()])

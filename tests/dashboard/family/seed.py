"""A week of nights and a handled SOS for Alice, timed relative to a fixed instant (`NOW`),
never the wall clock: the family view is computed with `create_app(..., clock=...)`.

Telemetry goes through the real rollups (ingest.rollups: vitals_1m, resident_daily); the
nights before the week only exist as summaries (as after raw-data retention), and the SOS
all-clear is queued by the real alerts.notify.outbox.enqueue_all_clears.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb

from alerts.notify.outbox import enqueue_all_clears
from ingest.rollups import floor_minute, rollup_minutes, summarize_days
from kernel import db
from tests.support.dashboard import World, insert_alert

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)  # Tue 10 Mar, 10:30 in Shanghai
LAST_NIGHT = date(2026, 3, 10)                   # 9 Mar 22:00 -> 10 Mar 07:00 local


def local(day: date, hh_mm: str) -> datetime:
    """A Shanghai wall-clock time as an aware instant."""
    return datetime.combine(day, time.fromisoformat(hh_mm), TZ)


@dataclass(frozen=True)
class FamilyWorld:
    """What `seed_family` added."""

    sos: int  # Alice's SOS this morning: acknowledged, then resolved (helped at home)


def _in_bed(night: date, at: datetime) -> bool:
    """Every night 22:14-06:48, up at 02:10-02:24 (and 04:40-04:49 on even days); on the
    last morning a nap 08:30-09:12."""
    prev = night - timedelta(days=1)
    exits = [(local(night, "02:10"), local(night, "02:24"))]
    if night.day % 2 == 0:
        exits.append((local(night, "04:40"), local(night, "04:49")))
    if local(prev, "22:14") <= at < local(night, "06:48"):
        return not any(a <= at < b for a, b in exits)
    return night == LAST_NIGHT and local(night, "08:30") <= at < local(night, "09:12")


def _readings(resident: int) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    seq = 0
    for back in range(6, -1, -1):
        night = LAST_NIGHT - timedelta(days=back)
        start = local(night - timedelta(days=1), "21:30")
        end = NOW if night == LAST_NIGHT else local(night, "07:30")
        hr_base = 52 if night == LAST_NIGHT else 61
        at = start
        while at < end:
            occupied = _in_bed(night, at)
            seq += 1
            rows.append((at, "bed-alice", resident, seq, occupied,
                         hr_base + seq % 4 if occupied else None, 14.0 if occupied else None,
                         2 if occupied else 0, at))
            at += timedelta(seconds=60)
    return rows


def seed_family(database_url: str, world: World) -> FamilyWorld:
    """Alice's week of nights, 8 older night summaries, her sensor online and a handled SOS
    Anna (family-alice) was told about, with its all-clear."""
    with db.connect(database_url) as conn:
        conn.execute("UPDATE sites SET timezone = 'Asia/Shanghai' WHERE id = 'north'")
        conn.execute("DELETE FROM alerts WHERE resident_id = %s", (world.alice,))
        conn.execute("UPDATE devices SET online = true, last_seen = %s WHERE id = 'bed-alice'",
                     (NOW - timedelta(seconds=20),))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bed_telemetry (time, device_id, resident_id, seq, occupied, "
                "heart_rate, respiration_rate, movement, received_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", _readings(world.alice))
        first = local(LAST_NIGHT - timedelta(days=7), "21:00")
        rollup_minutes(conn, floor_minute(first), floor_minute(NOW))
        summarize_days(conn, local(LAST_NIGHT - timedelta(days=6), "00:00"), NOW, NOW, NOW)
        for back in range(7, 15):  # older nights: summaries only
            day = LAST_NIGHT - timedelta(days=back)
            conn.execute(
                "INSERT INTO resident_daily (resident_id, day, timezone, day_start, "
                "data_minutes, time_in_bed_s, night_exits, resting_hr, median_rr, samples, "
                "hr_samples, rr_samples, computed_at) VALUES (%s, %s, 'Asia/Shanghai', %s, "
                "1440, 30000, 1, 62, 14, 1440, 1440, 1440, %s)",
                (world.alice, day, local(day, "00:00"), NOW))
        sos = _handled_sos(conn, world)
        conn.commit()
        enqueue_all_clears(conn, NOW)
        conn.commit()
    return FamilyWorld(sos)


def _handled_sos(conn: db.Conn, world: World) -> int:
    opened = local(LAST_NIGHT, "08:05")
    sos = insert_alert(conn, world.alice, "north", "sos", "critical", status="resolved",
                       device_id="btn-alice", assigned_to=world.care_north,
                       acknowledged_by=world.care_north, acknowledged_at=opened + timedelta(
                           minutes=2), resolved_by=world.care_north,
                       resolved_at=local(LAST_NIGHT, "08:31"), outcome="assisted_at_home",
                       note="Key safe code 4711 used; staff-only remark")
    conn.execute("UPDATE alerts SET opened_at = %s, created_at = %s, last_seen = %s "
                 "WHERE id = %s", (opened, opened, opened, sos))
    for action, status, actor, minutes, note in (
            ("opened", "open", "system", 0, "sos from btn-alice"),
            ("assigned", "open", "system", 0,
             f"assigned to care-north (user {world.care_north}, 0 other active alert(s))"),
            ("acknowledged", "acknowledged", "care-north", 2, "on my way"),
            ("resolved", "resolved", "care-north", 26, "Key safe code 4711 used")):
        conn.execute("INSERT INTO alert_history (alert_id, at, action, actor, status, note) "
                     "VALUES (%s, %s, %s, %s, %s, %s)",
                     (sos, opened + timedelta(minutes=minutes), action, actor, status, note))
    channel = conn.execute(
        "INSERT INTO notification_channels (user_id, kind, target, min_severity, quiet_start, "
        "quiet_end, timezone) VALUES (%s, 'email', 'anna@example.org', 'high', '22:00', "
        "'07:00', 'Asia/Shanghai') RETURNING id", (world.family_alice,)).fetchone()
    assert channel is not None
    conn.execute(
        "INSERT INTO notification_outbox (alert_id, kind, channel, channel_id, user_id, target, "
        "payload, status, sent_at, dedup_key) VALUES (%s, 'alert', 'email', %s, %s, "
        "'anna@example.org', %s, 'sent', %s, %s)",
        (sos, channel[0], world.family_alice, Jsonb({"title": "SOS"}), opened,
         f"test:{sos}:family"))
    return sos

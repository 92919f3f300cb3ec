"""Homes in every state of the wall screen's district view (dashboard/homes.py), seeded
straight into the real database relative to its clock: bed readings, device rows, a rollup
minute, risk categories and an old visit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from kernel import db, sites
from tests.support.dashboard import World, add_device
from tests.support.visits import completed_visit

MIN = timedelta(minutes=1)


def _reading(conn: psycopg.Connection[Any], rid: int, device: str, ago: timedelta,
             occupied: bool, seq: int) -> None:
    at = datetime.now(UTC) - ago
    conn.execute("INSERT INTO bed_telemetry (time, device_id, resident_id, seq, occupied, "
                 "movement, received_at) VALUES (%s, %s, %s, %s, %s, 0, %s)",
                 (at, device, rid, seq, occupied, at))


def _home(conn: psycopg.Connection[Any], name: str, *, online: bool | None = True,
          readings: tuple[tuple[timedelta, bool], ...] = ()) -> int:
    rid = sites.add_resident(conn, "north", name)
    device = f"bed-{rid}"
    add_device(conn, device, "north", rid, "bed_sensor", online, 90)
    for seq, (ago, occupied) in enumerate(readings):
        _reading(conn, rid, device, ago, occupied, seq)
    return rid


def seed_states(url: str, world: World) -> dict[str, int]:
    """A north home in each state (Alice: an open alert AND an offline bed; Bob: no data)."""
    with db.connect(url) as conn:
        homes = {
            "alert": world.alice,
            "no_data": world.bob,
            "offline": _home(conn, "Olga Offline", online=False,
                             readings=((MIN, True),)),
            "silent": _home(conn, "Sam Silent", readings=((30 * MIN, True),)),
            "overdue": _home(conn, "Vera Visit", readings=((MIN, True),)),
            "in_bed": _home(conn, "Ingrid Inbed", readings=((MIN, True),)),
            "up": _home(conn, "Uma Up", readings=((10 * MIN, True), (MIN, False))),
            "up_rollup": _home(conn, "Ulf Up", readings=((MIN, False),)),
            "away": _home(conn, "Ada Away", readings=((5 * 60 * MIN, True),
                                                      (4 * 60 * MIN, False), (MIN, False))),
        }
        conn.execute("INSERT INTO vitals_1m (resident_id, bucket, movement_avg, "
                     "occupied_fraction, samples, hr_samples, rr_samples) "
                     "VALUES (%s, date_trunc('minute', now()) - interval '1 hour', 0, 0.9, "
                     "60, 0, 0)", (homes["up_rollup"],))
        conn.execute("UPDATE residents SET risks = '{dementia}' WHERE id = ANY(%s)",
                     ([homes["up"], homes["away"]],))
        conn.commit()
    completed_visit(url, homes["overdue"], "north", days_ago=40)  # due every 30 days
    return homes

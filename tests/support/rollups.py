"""Raw bed telemetry for the rollup tests (ingest jobs, the vitals API), written with COPY as
the pipeline does, and the tables the rollups fill."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

ROLLUP_TABLES = "vitals_1m, resident_daily, job_watermarks"

Reading = tuple[datetime, bool, float | None, float | None, int]


def insert_readings(conn: Any, readings: Iterable[Reading], resident_id: int = 1,
                    device: str = "bed-1", seq0: int = 0) -> int:
    """COPY readings (time, occupied, hr, rr, movement) into bed_telemetry."""
    n = 0
    with conn.cursor() as cur, cur.copy(
            "COPY bed_telemetry (time, device_id, resident_id, seq, occupied, heart_rate, "
            "respiration_rate, movement, received_at) FROM STDIN") as copy:
        for i, (t, occ, hr, rr, mov) in enumerate(readings):
            copy.write_row((t, device, resident_id, seq0 + i, occ, hr, rr, mov, t))
            n += 1
    return n

"""The workers' fold of bed readings gives the rows the real minute rollup SQL writes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from eldercare.evaluation.devices import DirectHome
from eldercare.evaluation.minutes import (
    VITALS_COLUMNS,
    RollupCollector,
    StatusKeep,
    with_resident,
)
from gateway.records import Record, StatusRecord, TelemetryRecord
from ingest import rollups
from kernel import db
from kernel.sites import add_resident, add_site
from simulators.cohort import CohortScript, CohortSpec, build_resident, home_actions
from tests.support.rollups import ROLLUP_TABLES

SPEC = CohortSpec(residents=1, days=1, seed=4)


@pytest.fixture
def conn(clean_db: str, owner_url: str) -> Iterator[Any]:
    with db.connect(owner_url, autocommit=True) as c:
        c.execute(f"TRUNCATE {ROLLUP_TABLES}")
    with db.connect(clean_db) as c:
        yield c


def cohort_day() -> list[Record]:
    """One resident's day of cohort records, as the runner feeds them."""
    resident = build_resident(SPEC, 1)
    home = DirectHome(resident, "eval", SPEC.seed, SPEC.start)
    out = home.connect_all(SPEC.start)
    for a in home_actions(resident, SPEC, CohortScript(resident)):
        out += home.apply(a)
    return out


def vitals(conn: Any, resident_id: int) -> list[tuple[Any, ...]]:
    cols = ", ".join(VITALS_COLUMNS[:-1])
    rows: list[tuple[Any, ...]] = conn.execute(
        f"SELECT {cols} FROM vitals_1m WHERE resident_id = %s ORDER BY bucket",
        (resident_id,)).fetchall()
    return rows


def test_the_fold_and_the_minute_rollup_sql_write_the_same_rows(conn: Any) -> None:
    records = cohort_day()
    readings = [r for r in records if isinstance(r, TelemetryRecord)]
    assert len(readings) > 8000
    add_site(conn, "eval", "Eval", SPEC.timezone)
    by_sql, by_fold = add_resident(conn, "eval", "A"), add_resident(conn, "eval", "B")
    with conn.cursor() as cur, cur.copy(
            "COPY bed_telemetry (time, device_id, resident_id, seq, occupied, heart_rate, "
            "respiration_rate, movement, device_time, received_at) FROM STDIN") as cp:
        for r in readings:
            cp.write_row((r.time, r.device_id, by_sql, r.seq, r.occupied, r.heart_rate,
                          r.respiration_rate, r.movement, r.device_time, r.received_at))
    start = rollups.floor_minute(SPEC.start)
    rollups.rollup_minutes(conn, start, rollups.floor_minute(SPEC.end) + timedelta(minutes=1))
    collector = RollupCollector(1)
    collector.records(records)
    rows = collector.rollups()
    with conn.cursor() as cur, cur.copy(
            f"COPY vitals_1m ({', '.join(VITALS_COLUMNS)}) FROM STDIN") as cp:
        cp.write(with_resident(rows.vitals, by_fold))
    conn.commit()
    want, got = vitals(conn, by_sql), vitals(conn, by_fold)
    assert rows.minutes == len(got) == len(want) > 1400
    for w, g in zip(want, got, strict=True):
        assert w[0] == g[0]
        assert w[9:] == g[9:]  # the counts
        # real (float4) columns: the same value, the average's last bit aside
        for a, b in zip(w[1:9], g[1:9], strict=True):
            assert (a is None) == (b is None)
            assert b is None or b == pytest.approx(a, rel=1e-6)


def test_thinned_status_reports_keep_every_days_lowest_battery() -> None:
    reports = [r for r in cohort_day() if isinstance(r, StatusRecord)]
    keep = StatusKeep()
    for r in reports:
        keep.add(r)
    assert len(keep.kept) < len(reports)

    def lowest(rs: list[StatusRecord]) -> dict[tuple[str, date], int]:
        out: dict[tuple[str, date], int] = {}
        for r in rs:
            key = (r.device_id, r.time.astimezone(ZoneInfo(SPEC.timezone)).date())
            if r.battery is not None:
                out[key] = min(out.get(key, 101), r.battery)
        return out

    assert lowest(keep.kept) == lowest(reports)

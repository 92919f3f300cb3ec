"""The bed mat's readings folded into the per-minute rows the ingest rollup writes, in the
eval's worker processes (issue 15's routine change, `eldercare.evaluation.routine_db`).

The services turn readings into features in SQL: bed_telemetry -> `vitals_1m` (the minute
rollup, ingest/rollups.py `_MINUTE_ROLLUP`) -> `resident_daily` (`_DAILY`). Storing the
cohort's ~69 million raw readings to run the minute rollup on them would take longer than
the whole detector pass, so the workers do that one step in Python - exactly the rollup's
aggregates, per resident and minute (`time_bucket('1 minute', time)`): average, minimum and
maximum of heart rate and respiration rate (over the readings that have them), average
movement, the occupied fraction, and the counts - and the parent COPYs the rows into a real
database, where everything after it (the daily summaries, baselines, routine change, the
store) is the services' own SQL and code. tests/eldercare/evaluation/test_minutes.py checks
that the fold and the real rollup give the same `vitals_1m` rows on cohort data.

Status reports (battery, for `resident_daily.min_battery`) are kept too, thinned: a report
is kept when its battery or online state differs from the device's previous one, or when it
is the device's first in a quarter of an hour (UTC). Every local day starts on a quarter
hour in every time zone, so each day's lowest battery is the same as over all reports.

Rows travel to the parent as COPY text (tab-separated, `\\N` for NULL) without the resident
column, which the parent appends once it knows the database's resident id
(`with_resident`): formatting is the costly part and runs in the workers, in parallel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from gateway.records import Record, StatusRecord, TelemetryRecord

VITALS_COLUMNS = ("bucket", "hr_avg", "hr_min", "hr_max", "rr_avg", "rr_min", "rr_max",
                  "movement_avg", "occupied_fraction", "samples", "hr_samples", "rr_samples",
                  "resident_id")
STATUS_COLUMNS = ("time", "device_id", "seq", "online", "battery", "rssi", "fw",
                  "heartbeat_s", "device_time", "received_at", "resident_id")
QUARTER_S = 900
_INF = float("inf")

# per-minute accumulator slots
_N, _HN, _HS, _HMIN, _HMAX, _RN, _RS, _RMIN, _RMAX, _MV, _OCC = range(11)


class MinuteRow(NamedTuple):
    """One `vitals_1m` row of one resident (without the resident)."""

    bucket: datetime
    hr_avg: float | None
    hr_min: float | None
    hr_max: float | None
    rr_avg: float | None
    rr_min: float | None
    rr_max: float | None
    movement_avg: float
    occupied_fraction: float
    samples: int
    hr_samples: int
    rr_samples: int


@dataclass(frozen=True, slots=True)
class RollupRows:
    """One resident's per-minute rows and thinned status reports, as COPY text without the
    resident column (see the module docstring); what the daily detector hands the parent."""

    resident_id: int  # the cohort's id
    vitals: bytes
    status: bytes
    minutes: int
    reports: int


class MinuteFold:
    """Folds bed readings into per-minute aggregates as `_MINUTE_ROLLUP` computes them."""

    def __init__(self) -> None:
        self._minutes: dict[int, list[float]] = {}
        self._m = -1
        self._acc: list[float] = []

    def add(self, rec: TelemetryRecord) -> None:
        """One reading (any order; readings flushed after an outage arrive late)."""
        m = int(rec.time.timestamp()) // 60
        if m != self._m:
            acc = self._minutes.get(m)
            if acc is None:
                acc = self._minutes[m] = [0, 0, 0.0, _INF, -_INF, 0, 0.0, _INF, -_INF, 0, 0]
            self._m, self._acc = m, acc
        a = self._acc
        a[_N] += 1
        a[_MV] += rec.movement
        if rec.occupied:
            a[_OCC] += 1
        hr = rec.heart_rate
        if hr is not None:
            a[_HN] += 1
            a[_HS] += hr
            if hr < a[_HMIN]:
                a[_HMIN] = hr
            if hr > a[_HMAX]:
                a[_HMAX] = hr
        rr = rec.respiration_rate
        if rr is not None:
            a[_RN] += 1
            a[_RS] += rr
            if rr < a[_RMIN]:
                a[_RMIN] = rr
            if rr > a[_RMAX]:
                a[_RMAX] = rr

    def __len__(self) -> int:
        return len(self._minutes)

    def rows(self) -> list[MinuteRow]:
        """The minute rows, in time order."""
        out = []
        for m in sorted(self._minutes):
            a = self._minutes[m]
            n, hn, rn = int(a[_N]), int(a[_HN]), int(a[_RN])
            out.append(MinuteRow(
                datetime.fromtimestamp(m * 60, UTC),
                a[_HS] / hn if hn else None, a[_HMIN] if hn else None,
                a[_HMAX] if hn else None, a[_RS] / rn if rn else None,
                a[_RMIN] if rn else None, a[_RMAX] if rn else None,
                a[_MV] / n, a[_OCC] / n, n, hn, rn))
        return out


def _f(x: float | None) -> str:
    return "\\N" if x is None else repr(float(x))


def vitals_copy(rows: Iterable[MinuteRow]) -> bytes:
    """COPY text of minute rows, columns VITALS_COLUMNS but the last (the resident)."""
    lines = [f"{r.bucket.isoformat()}\t{_f(r.hr_avg)}\t{_f(r.hr_min)}\t{_f(r.hr_max)}\t"
             f"{_f(r.rr_avg)}\t{_f(r.rr_min)}\t{_f(r.rr_max)}\t{r.movement_avg!r}\t"
             f"{r.occupied_fraction!r}\t{r.samples}\t{r.hr_samples}\t{r.rr_samples}\n"
             for r in rows]
    return "".join(lines).encode()


def _o(x: object) -> str:
    if x is None:
        return "\\N"
    if isinstance(x, bool):
        return "t" if x else "f"
    if isinstance(x, datetime):
        return x.isoformat()
    return str(x)


class StatusKeep:
    """Keeps the status reports the daily summary's battery needs (module docstring)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[bool, int | None, int]] = {}
        self.kept: list[StatusRecord] = []

    def add(self, rec: StatusRecord) -> None:
        """One status report (arrival order)."""
        quarter = int(rec.time.timestamp()) // QUARTER_S
        prev = self._last.get(rec.device_id)
        self._last[rec.device_id] = (rec.online, rec.battery, quarter)
        if prev is None or prev != (rec.online, rec.battery, quarter):
            self.kept.append(rec)

    def copy_text(self) -> bytes:
        """COPY text of the kept reports, columns STATUS_COLUMNS but the last."""
        for r in self.kept:
            if "\t" in (r.fw or "") or "\n" in (r.fw or ""):
                raise ValueError(f"firmware text of {r.device_id} does not fit COPY text")
        return "".join(
            "\t".join(_o(x) for x in (r.time, r.device_id, r.seq, r.online, r.battery, r.rssi,
                                      r.fw, r.heartbeat_s, r.device_time, r.received_at))
            + "\n" for r in self.kept).encode()


class RollupCollector:
    """The daily detector registered for `routine_change`: it judges nothing itself; it
    gathers the resident's per-minute rows and status reports for the database phase
    (`eldercare.evaluation.routine_db`), which runs the services' daily summaries and
    learning job on them."""

    def __init__(self, resident_id: int) -> None:
        self.resident_id = resident_id
        self.fold = MinuteFold()
        self.status = StatusKeep()

    def records(self, records: Iterable[Record]) -> None:
        """Bed readings (bed_telemetry, rolled up per resident) and status reports."""
        fold, status = self.fold, self.status
        for rec in records:
            if isinstance(rec, TelemetryRecord):
                fold.add(rec)
            elif isinstance(rec, StatusRecord):
                status.add(rec)

    def rollups(self) -> RollupRows:
        """Everything gathered, as COPY text."""
        return RollupRows(self.resident_id, vitals_copy(self.fold.rows()),
                          self.status.copy_text(), len(self.fold), len(self.status.kept))


def with_resident(text: bytes, resident_id: int) -> bytes:
    """COPY text with the resident's database id appended to every line."""
    return text.replace(b"\n", b"\t%d\n" % resident_id)

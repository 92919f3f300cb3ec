"""Builders for the ingest tests: readings for the writer, batches for the spool, a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.records import TelemetryRecord
from ingest.batch import Batch

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


def readings(n: int, device: str = "bed-1") -> list[TelemetryRecord]:
    return [TelemetryRecord(T0 + timedelta(seconds=i), device, 1, i, True, 60.0 + i % 5,
                            14.0, i % 100, None, T0) for i in range(n)]


SPOOL_T0 = datetime(2026, 3, 1, 22, 0, 0, 123_456, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def spool_batch(first: int, n: int = 3) -> Batch:
    return Batch(telemetry=[TelemetryRecord(SPOOL_T0 + timedelta(seconds=i), "bed-1", 1, i,
                                            True, 60.5, None, i % 100, None, SPOOL_T0)
                            for i in range(first, first + n)], tokens=[first])

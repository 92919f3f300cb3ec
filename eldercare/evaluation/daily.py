"""The seam for detectors over daily features (issue 15's `routine_change`).

The rule detector is scored on the alerts its decisions open; a daily detector is scored on
what it hands back at the end. For each resident the runner builds one daily detector per
registered alert type, feeds it every record the rule detector receives (in arrival order,
with the cohort spec and the resident's ground-truth-free facts: zone, devices) and asks it
for its output at the end (`DailyOutput`): alerts it judged itself (`AlertRow`s, scored
like any detector's), and/or per-minute rollup rows (`RollupRows`) for a phase in the
parent process that judges them with the services' own SQL and code.

`routine_change` is registered here, at import, so the worker processes (spawned) see it
too: `eldercare.evaluation.minutes.RollupCollector` folds the bed readings into the rows of
`vitals_1m` exactly as the ingest rollup does, and `eldercare.evaluation.routine_db` (in the
parent) COPYs them into a real PostgreSQL+TimescaleDB, runs the daily summaries and the
learning job day by day, and reads back the routine-change decisions it made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from eldercare.evaluation.labels import ROUTINE_CHANGE
from eldercare.evaluation.minutes import RollupCollector, RollupRows
from eldercare.evaluation.rows import AlertRow
from gateway.records import Record
from simulators.cohort import CohortSpec, Resident


@dataclass(frozen=True, slots=True)
class DailyOutput:
    """What a daily detector hands back for one resident."""

    alerts: list[AlertRow] = field(default_factory=list)
    rollups: RollupRows | None = None  # rows for the database phase in the parent


class DailyDetector(Protocol):
    """A detector over a resident's whole stream: fed every record, asked at the end."""

    def records(self, records: Sequence[Record]) -> None:
        """Records as the rule detector receives them (arrival order)."""
        ...

    def finish(self) -> DailyOutput:
        """Its output over the whole period."""
        ...


DailyFactory = Callable[[Resident, CohortSpec], DailyDetector]


class RoutineRollups:
    """`routine_change` in the workers: gathers the rows the database phase judges."""

    def __init__(self, resident: Resident, spec: CohortSpec) -> None:
        self.collector = RollupCollector(resident.resident_id)

    def records(self, records: Sequence[Record]) -> None:
        """Bed readings and status reports (see minutes.RollupCollector)."""
        self.collector.records(records)

    def finish(self) -> DailyOutput:
        """No alerts of its own: the rows, for routine_db."""
        return DailyOutput(rollups=self.collector.rollups())


DAILY_DETECTORS: dict[str, DailyFactory] = {ROUTINE_CHANGE: RoutineRollups}
"""Daily detectors by the alert type they raise."""

"""The seam for detectors over daily features (issue 15's `routine_change`).

The rule detector is scored on the alerts its decisions open; a daily detector is scored on
the alerts it yields, in the same shape (`AlertRow`: resident, alert type, event time). For
each resident the runner builds one daily detector per registered alert type, feeds it every
record the rule detector receives (in arrival order, with the cohort spec and the resident's
ground-truth-free facts: zone, devices) and asks it for its alerts at the end. It would turn
the records into daily feature rows (alerts/learning/) and run the routine-change logic over
them.

Registration happens here, at import, so the worker processes (spawned) see it too. Until a
detector is registered for "routine_change", the report marks its rows "not wired". To wire
the learning package in:

    from alerts.learning import ...            # the pure daily-feature and baseline code
    DAILY_DETECTORS["routine_change"] = RoutineChangeOverRecords   # a DailyFactory
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from eldercare.evaluation.rows import AlertRow
from gateway.records import Record
from simulators.cohort import CohortSpec, Resident


class DailyDetector(Protocol):
    """A detector over a resident's whole stream: fed every record, asked at the end."""

    def records(self, records: Sequence[Record]) -> None:
        """Records as the rule detector receives them (arrival order)."""
        ...

    def finish(self) -> list[AlertRow]:
        """Its alerts over the whole period."""
        ...


DailyFactory = Callable[[Resident, CohortSpec], DailyDetector]

DAILY_DETECTORS: dict[str, DailyFactory] = {}
"""Daily detectors by the alert type they raise; empty until the learning package is wired."""

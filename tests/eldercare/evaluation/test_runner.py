"""The direct run: the services' detector over the cohort's records, every variant at once."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from alerts.config import AlertSettings
from eldercare.evaluation.rows import AlertRow
from eldercare.evaluation.runner import run_resident
from eldercare.evaluation.variants import variants
from simulators.cohort import CohortSpec, build_resident
from simulators.incidents import IncidentType

SPEC = CohortSpec(residents=1, days=9, seed=3)


def test_every_press_is_an_alert_and_habits_are_learned() -> None:
    resident = build_resident(SPEC, 1)
    run = run_resident(resident, SPEC, variants(AlertSettings()), keep_decisions=True)
    presses = sorted((i.type.value, i.start) for i in resident.incidents
                     if i.type in (IncidentType.SOS, IncidentType.FALL))
    alerts = sorted((a.type, a.at) for a in run.alerts["default"] if a.type in ("sos", "fall"))
    assert presses and alerts == presses
    # every variant saw the same records; dedup off never has fewer alerts than dedup on
    assert set(run.alerts) == {"default", "no_persistence", "no_hysteresis", "no_dedup",
                               "no_habits"}
    assert len(run.alerts["no_dedup"]) >= len(run.alerts["default"])
    # one refresh a day from the second day; the rise is learned after the first morning
    assert len(run.habits) == SPEC.days - 1
    rise = run.habits[-1][1]
    assert rise is not None and time(4) <= rise <= time(12)
    assert run.decisions and run.decisions[0][0] in ("trigger", "clear", "cancel")


def test_persistence_off_alerts_on_spikes() -> None:
    resident = build_resident(SPEC, 1)
    vs = variants(AlertSettings())
    run = run_resident(resident, SPEC, [vs[0], vs[1]])
    spikes = [i for i in resident.incidents if i.type is IncidentType.HR_SPIKE]
    assert spikes

    def near(rows: list[AlertRow], start: datetime) -> bool:
        return any(a.type == "heart_rate_high" and start <= a.at <= start + timedelta(minutes=5)
                   for a in rows)

    assert not any(near(run.alerts["default"], s.start) for s in spikes)
    assert all(near(run.alerts["no_persistence"], s.start) for s in spikes)

"""Labels: sustained events are owed, sub-persistence spikes are negative controls, events near
a threshold are excused, all judged with the rules' own thresholds."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from alerts.config import AlertSettings
from eldercare.evaluation.labels import ROUTINE_CHANGE, Truth, cohort_truth
from simulators.cohort import Archetype, CohortSpec, Episode, EpisodeKind, Resident
from simulators.incidents import HomeSpec, Incident, IncidentType
from simulators.resident import ResidentModel

T = IncidentType
SPEC = CohortSpec(residents=1, days=10, seed=1)
T0 = SPEC.start + timedelta(days=2, hours=4)  # 00:00 local, the resident asleep


def resident(*incidents: Incident, episodes: tuple[Episode, ...] = ()) -> Resident:
    home = HomeSpec(1, ResidentModel.random(1, ZoneInfo(SPEC.timezone)), ("bed",), ("btn",))
    return Resident(home, Archetype.REGULAR, incidents, episodes)


def vital(typ: IncidentType, level: float, seconds: float) -> Incident:
    return Incident(1, typ, T0, T0 + timedelta(seconds=seconds), None,
                    {"level": level, "seconds": seconds})


def truth(*incidents: Incident, episodes: tuple[Episode, ...] = (),
          spec: CohortSpec = SPEC) -> Truth:
    return cohort_truth([resident(*incidents, episodes=episodes)], spec, AlertSettings(),
                        lambda rid, day: (None, None))


def test_sustained_vitals_are_owed_and_spikes_are_controls() -> None:
    t = truth(vital(T.HEART_RATE_HIGH, 140, 300),  # urgent band, 2 min needed
              vital(T.HR_SPIKE, 140, 60),  # a spike: must not alert
              vital(T.HEART_RATE_HIGH, 120, 300),  # warning band needs 10 min: must not alert
              vital(T.HEART_RATE_HIGH, 120, 595),  # warning band, near 10 min: excused
              vital(T.APNEA, 0, 40))
    got = sorted((lab.source, lab.alert_type, lab.expected, lab.spike) for lab in t.labels)
    assert got == [("apnea", "apnea", True, False),
                   ("heart_rate_high", "heart_rate_high", False, False),
                   ("heart_rate_high", "heart_rate_high", True, False),
                   ("hr_spike", "heart_rate_high", False, True)]
    assert [e.reason for e in t.excusals] == ["near the persistence threshold"]


def test_low_levels_that_wobble_above_the_urgent_threshold_are_not_owed() -> None:
    t = truth(vital(T.HEART_RATE_LOW, 36, 600), vital(T.HEART_RATE_LOW, 40, 600))
    assert [(lab.expected, lab.alert_type) for lab in t.labels] == [(True, "heart_rate_low")]
    assert len(t.excusals) == 1


def test_gradual_changes_owe_a_routine_change_and_outings_are_controls() -> None:
    drift = Incident(1, T.DRIFT_RISE_TIME, T0, T0 + timedelta(days=5), None,
                     {"delta_min": 80.0})
    outing = Episode(1, EpisodeKind.OUTING, T0 + timedelta(hours=10), T0 + timedelta(hours=20))
    t = truth(drift, episodes=(outing,), spec=CohortSpec(residents=1, days=20, seed=1))
    routine = [lab for lab in t.labels if lab.alert_type == ROUTINE_CHANGE]
    assert len(routine) == 1 and routine[0].window_end == drift.end + timedelta(days=14)
    assert routine[0].detail == "rise_time"  # its own feature must be judged changed
    # a later rise means more time in bed: a judgement of that is excused, not false
    assert sorted((e.alert_types, e.details) for e in t.excusals) == [
        (("not_up",), ()), ((ROUTINE_CHANGE,), ("time_in_bed_s",))]
    control = [lab for lab in t.labels if lab.source == "outing"]
    assert [(lab.alert_type, lab.expected) for lab in control] == [("long_absence", False)]


def test_a_gradual_change_the_run_cuts_short_is_not_owed() -> None:
    """A change still ramping up (or just done) when the run ends could not be judged in
    time: it owes nothing, and a judgement of it is not false either."""
    drift = Incident(1, T.DRIFT_NIGHT_EXITS, T0, T0 + timedelta(days=5), None,
                     {"extra_exits": 2.0})
    t = truth(drift)  # 10 days: the ramp ends on day 7, the run 3 days later
    assert [lab for lab in t.labels if lab.alert_type == ROUTINE_CHANGE] == []
    [cut] = [e for e in t.excusals if ROUTINE_CHANGE in e.alert_types]
    assert cut.details == ("night_exits", "night_out_s", "time_in_bed_s")
    assert cut.covers(1, ROUTINE_CHANGE, drift.end, "night_exits")
    t = truth(drift, spec=CohortSpec(residents=1, days=15, seed=1))  # a week after: owed
    assert [lab.detail for lab in t.labels if lab.alert_type == ROUTINE_CHANGE] == [
        "night_exits"]

"""The evaluation cohort: deterministic by seed, varied, labelled, and its overlays."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

from gateway.schema import EventType
from simulators.cohort import (
    DRIFT_TYPES,
    Archetype,
    CohortScript,
    CohortSpec,
    EpisodeKind,
    Resident,
    build_cohort,
    build_resident,
    home_actions,
)
from simulators.incidents import IncidentType, Spans
from simulators.timeline import ActionKind

SPEC = CohortSpec(residents=12, days=40, seed=5)


def test_the_same_seed_gives_the_same_cohort_and_another_seed_another() -> None:
    a, b = build_cohort(SPEC), build_cohort(SPEC)
    assert list(a.truth_lines()) == list(b.truth_lines())
    assert [r.archetype for r in a.residents] == [r.archetype for r in b.residents]
    other = build_cohort(CohortSpec(residents=12, days=40, seed=6))
    assert list(other.truth_lines()) != list(a.truth_lines())
    # a resident depends only on the seed and its id (workers build just their own)
    assert build_resident(SPEC, 7).incidents == a.resident(7).incidents


def test_the_cohort_has_the_variety_the_evaluation_needs() -> None:
    cohort = build_cohort(CohortSpec(residents=30, days=40, seed=1))
    kinds = Counter(r.archetype for r in cohort.residents)
    assert set(kinds) == set(Archetype)
    incidents = Counter(i.type for r in cohort.residents for i in r.incidents)
    for t in (IncidentType.SOS, IncidentType.FALL, IncidentType.HR_SPIKE,
              IncidentType.NOT_UP, IncidentType.LONG_ABSENCE, IncidentType.DEVICE_OFFLINE):
        assert incidents[t] >= 30
    assert sum(incidents[t] for t in DRIFT_TYPES) >= 10
    episodes = Counter(e.kind for r in cohort.residents for e in r.episodes)
    assert set(episodes) == set(EpisodeKind)
    lines = list(cohort.truth_lines())
    assert len(lines) == sum(incidents.values()) + sum(episodes.values())


def test_drifts_start_after_the_habits_are_learned_and_episodes_avoid_incidents() -> None:
    cohort = build_cohort(SPEC)
    for r in cohort.residents:
        for inc in r.incidents:
            if inc.type in DRIFT_TYPES:
                assert inc.start >= SPEC.start + timedelta(days=30)
        acute = [i for i in r.incidents if i.type not in DRIFT_TYPES]
        for ep in r.episodes:
            assert all(ep.end <= i.start or ep.start >= i.end for i in acute)


def test_episodes_shape_what_the_devices_send() -> None:
    cohort = build_cohort(SPEC)
    eps = [(r, e) for r in cohort.residents for e in r.episodes]
    resident, gap = next((r, e) for r, e in eps if e.kind is EpisodeKind.MAT_GAP)
    script = CohortScript(resident)
    assert script.dead_at(resident.bed, gap.start)
    assert not script.dead_at(resident.bed, gap.end)
    resident, outing = next((r, e) for r, e in eps if e.kind is EpisodeKind.OUTING)
    script = CohortScript(resident)
    mid = outing.start + (outing.end - outing.start) / 2
    assert script.away(mid) and not script.reading_at(mid).occupied
    resident, loss = next((r, e) for r, e in eps if e.kind is EpisodeKind.CONTACT_LOSS)
    r = CohortScript(resident).reading_at(loss.start)
    assert r.occupied and r.heart_rate is None and r.respiration is None and r.movement > 0


def test_home_actions_are_ordered_with_weekly_tests() -> None:
    spec = CohortSpec(residents=1, days=14, seed=2)
    resident = build_resident(spec, 1)
    actions = list(home_actions(resident, spec))
    assert all(a.t <= b.t for a, b in itertools.pairwise(actions))
    tests = [a for a in actions if a.kind is ActionKind.EVENT and a.event is EventType.TEST]
    assert len(tests) == 3  # the first morning, then every 6 days
    readings = [a for a in actions if a.kind is ActionKind.READING]
    assert len(readings) <= 14 * 86_400 / spec.telemetry_period_s



def _windows(resident: Resident) -> Spans:
    """Half an hour either side of each episode and incident (a drift: its first day)."""
    margin = timedelta(minutes=30)
    out = [(e.start - margin, e.end + margin) for e in resident.episodes]
    for inc in resident.incidents:
        end = (inc.start + timedelta(days=1) if inc.type in DRIFT_TYPES
               else inc.time_param("replaced_at") if inc.type is IncidentType.BATTERY_DRAIN
               else inc.end)
        out.append((inc.start - margin, end + margin))
    return Spans(out)


def test_the_stream_skips_reading_at_only_where_the_mat_reads_empty() -> None:
    """The readings of `home_actions` (which skip `reading_at` while nobody is in bed, see
    `CohortScript.empty_until`) are those of asking the script at every instant, around
    every episode and incident of residents with a hospital stay, outings, mat gaps, a
    drained bed sensor and a later rise."""
    spec = CohortSpec(residents=30, days=40, seed=1)
    period = timedelta(seconds=spec.telemetry_period_s)
    seen: set[object] = set()
    for rid in (16, 17):
        resident = build_resident(spec, rid)
        seen |= {e.kind for e in resident.episodes} | {i.type for i in resident.incidents}
        inside = _windows(resident).any_at
        got = [(a.t, a.reading) for a in home_actions(resident, spec)
               if a.kind is ActionKind.READING and inside(a.t)]
        reference = CohortScript(resident)
        t = spec.start + (got[0][0] - spec.start) % period
        want = []
        while t < spec.end:
            if inside(t) and not reference.dead_at(resident.bed, t):
                want.append((t, reference.reading_at(t)))
            t += period
        assert got == want
    assert {EpisodeKind.HOSPITAL, EpisodeKind.OUTING, EpisodeKind.MAT_GAP,
            IncidentType.BATTERY_DRAIN, IncidentType.DRIFT_RISE_TIME} <= seen

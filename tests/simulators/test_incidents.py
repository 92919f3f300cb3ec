"""Incidents, ground truth and the pure device timeline: no broker, no database."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise

import pytest

from gateway.schema import EventType
from simulators.incidents import (
    ALL_TYPES,
    DRIFT_TYPES,
    HomeScript,
    HomeSpec,
    Incident,
    IncidentType,
    plan_incidents,
    read_ground_truth,
    write_ground_truth,
)
from simulators.resident import ResidentModel
from simulators.timeline import Action, ActionKind, fleet_timeline

T = IncidentType
START = datetime(2026, 3, 2, 12, tzinfo=UTC)
END = START + timedelta(days=3)
PERIOD = 10.0  # every apnea (>= 10 s) holds at least one reading


def make_homes(n: int = 2) -> list[HomeSpec]:
    return [HomeSpec(r, ResidentModel.random(100 + r), (f"bed-{r}",), (f"btn-{r}",))
            for r in range(1, n + 1)]


def test_incident_plans_are_deterministic():
    homes = make_homes()
    a = plan_incidents(homes, START, END, seed=7)
    b = plan_incidents(make_homes(), START, END, seed=7)
    c = plan_incidents(homes, START, END, seed=8)
    assert a == b
    assert [i.params for i in a] == [i.params for i in b]
    assert a != c


def test_a_poisson_plan_draws_the_requested_rate_within_the_period():
    homes = [HomeSpec(r, ResidentModel.random(r), (f"bed-{r}",), (f"btn-{r}",))
             for r in range(40)]
    incs = plan_incidents(homes, START, START + timedelta(days=10), seed=1,
                          types=[T.SOS, T.FALL], per_home_per_day=0.5)
    assert 150 <= len(incs) <= 250  # 40 homes × 10 days × 0.5, Poisson
    assert all(START <= i.start <= START + timedelta(days=10) for i in incs)
    assert {i.type for i in incs} == {T.SOS, T.FALL}


def test_ground_truth_round_trips_and_is_sorted_jsonl(tmp_path):
    incs = plan_incidents(make_homes(), START, END, seed=3)
    path = write_ground_truth(reversed(incs), tmp_path / "out" / "truth.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == len(incs)
    assert lines[0].startswith("{") and '"type": ' in lines[0] and 'Z"' in lines[0]
    back = read_ground_truth(path)
    assert [(i.resident_id, i.device_id, i.type, i.start, i.end) for i in back] == [
        (i.resident_id, i.device_id, i.type, i.start, i.end) for i in incs]
    assert [dict(i.params) for i in back] == [dict(i.params) for i in incs]
    path.write_text('{"type": "nonsense"}\n')
    with pytest.raises(ValueError, match=r"truth\.jsonl:1"):
        read_ground_truth(path)


def timeline(seed: int, incidents: list[Incident], homes: list[HomeSpec],
             period: float = PERIOD) -> list[Action]:
    scripts = [HomeScript(h, incidents) for h in homes]
    return list(fleet_timeline(scripts, START, END, telemetry_period_s=period,
                               heartbeat_s=60, seed=seed))


def test_same_seed_same_stream():
    homes = make_homes()
    incs = plan_incidents(homes, START, END, seed=5)
    scripts = [HomeScript(h, incs) for h in homes]

    def head(seed: int) -> list[Action]:
        return list(islice(fleet_timeline(scripts, START, END, telemetry_period_s=5,
                                          heartbeat_s=60, seed=seed), 3000))

    assert head(5) == head(5)
    assert head(5) != head(6)
    times = [a.t for a in head(5)]
    assert times == sorted(times)


@pytest.fixture(scope="module")
def world():
    homes = make_homes()
    incs = plan_incidents(homes, START, END, seed=11)
    acts = timeline(11, incs, homes)
    by_dev: dict[tuple[str, ActionKind], list[Action]] = defaultdict(list)
    for a in acts:
        by_dev[a.device_id, a.kind].append(a)
    return homes, incs, by_dev


def readings(by_dev, bed: str, a: datetime, b: datetime) -> list[Action]:
    return [x for x in by_dev[bed, ActionKind.READING] if a <= x.t < b]


@pytest.mark.slow
def test_every_incident_type_is_in_the_ground_truth_for_every_home(world):
    homes, incs, _ = world
    for h in homes:
        assert {i.type for i in incs if i.resident_id == h.resident_id} == set(ALL_TYPES)
    for h in homes:  # acute incidents of a home never overlap
        acute = sorted((i for i in incs if i.resident_id == h.resident_id
                        and i.type not in DRIFT_TYPES and i.device_id is None),
                       key=lambda i: i.start)
        assert all(x.end <= y.start for x, y in pairwise(acute))


def check(inc: Incident, home: HomeSpec, by_dev, others: list[Incident]) -> None:
    bed = home.beds[0]
    during = readings(by_dev, bed, inc.start, inc.end)
    model = home.model
    t = inc.type
    if t in (T.SOS, T.FALL):
        ev = [a for a in by_dev[inc.device_id, ActionKind.EVENT] if a.t == inc.start]
        assert [a.event for a in ev] == [EventType(t.value)]
    elif t in (T.BED_EXIT_NO_RETURN, T.LONG_ABSENCE):
        assert during and all(not a.reading.occupied for a in during)
        assert any(model.reading_at(a.t).occupied for a in during)  # the routine had them in bed
        if t is T.BED_EXIT_NO_RETURN:
            assert 20 <= (inc.end - inc.start).total_seconds() / 60 <= 180
            before = readings(by_dev, bed, inc.start - timedelta(seconds=PERIOD), inc.start)
            assert before[-1].reading.occupied
    elif t in (T.HEART_RATE_HIGH, T.HR_SPIKE):
        assert during and all(a.reading.occupied and a.reading.heart_rate >= 115 for a in during)
    elif t is T.HEART_RATE_LOW:
        assert during and all(a.reading.heart_rate <= 42 for a in during)
    elif t in (T.RESPIRATION_HIGH, T.RR_SPIKE):
        assert during and all(a.reading.respiration >= 27 for a in during)
    elif t is T.RESPIRATION_LOW:
        assert during and all(a.reading.respiration <= 7.2 for a in during)
    elif t is T.APNEA:
        assert during and all(a.reading.respiration == 0 for a in during)
        assert 10 <= (inc.end - inc.start).total_seconds() <= 60
    elif t is T.NOT_UP:
        assert abs(inc.start - inc.time_param("usual_rise")) <= timedelta(seconds=1)
        assert during and all(a.reading.occupied for a in during)
        assert not any(model.reading_at(a.t).occupied for a in during)  # would have been up
    elif t is T.DEVICE_OFFLINE:
        kinds = [(a.t, a.kind) for k in (ActionKind.OFFLINE, ActionKind.ONLINE)
                 for a in by_dev[inc.device_id, k]]
        assert (inc.start, ActionKind.OFFLINE) in kinds and (inc.end, ActionKind.ONLINE) in kinds
        assert not [a for a in by_dev[inc.device_id, ActionKind.STATUS]
                    if inc.start <= a.t < inc.end]
    elif t is T.BATTERY_DRAIN:
        replaced = inc.time_param("replaced_at")
        statuses = [a for a in by_dev[inc.device_id, ActionKind.STATUS]
                    if inc.start <= a.t < inc.end]
        scales = [a.battery_scale for a in statuses]
        assert scales == sorted(scales, reverse=True) and scales[-1] < 0.05
        off = [a for a in by_dev[inc.device_id, ActionKind.OFFLINE] if a.t == inc.end]
        on = [a for a in by_dev[inc.device_id, ActionKind.ONLINE] if a.t == replaced]
        assert off and on
        dead = [a for k in (ActionKind.READING, ActionKind.STATUS)
                for a in by_dev[inc.device_id, k] if inc.end <= a.t < replaced]
        assert dead == []  # an empty battery measures nothing
    else:
        check_drift(inc, home, by_dev, others)


def check_drift(inc: Incident, home: HomeSpec, by_dev, others: list[Incident]) -> None:
    bed = home.beds[0]
    model = home.model
    after = readings(by_dev, bed, inc.end, END)
    before = readings(by_dev, bed, START, inc.start)
    if inc.type in (T.DRIFT_RESTING_HR, T.DRIFT_RESPIRATION):
        field, key = (("heart_rate", "delta_bpm") if inc.type is T.DRIFT_RESTING_HR
                      else ("respiration", "delta_per_min"))
        diffs = [getattr(a.reading, field) - getattr(model.reading_at(a.t), field)
                 for a in after if getattr(a.reading, field) is not None
                 and getattr(model.reading_at(a.t), field) is not None]
        assert statistics.median(diffs) == pytest.approx(inc.param(key), abs=0.15)
        assert all(getattr(a.reading, field) == getattr(model.reading_at(a.t), field)
                   for a in before)
    elif inc.type is T.DRIFT_RISE_TIME:
        plan = model.plan_for(after[-1].t)  # the last morning is fully drifted
        shift = timedelta(minutes=inc.param("delta_min"))
        morning = readings(by_dev, bed, plan.rise, plan.rise + shift)
        assert plan.rise >= inc.end and plan.rise + shift <= END
        assert morning and all(a.reading.occupied for a in morning)
        assert not any(model.reading_at(a.t).occupied for a in morning)
    else:
        script = HomeScript(home, [inc])
        day = model.plan_for(after[0].t + timedelta(hours=12)).day
        extra = script.extra_exits(day)
        plan = model.plan_day(day)
        assert plan.asleep_at >= inc.end and plan.awake_at <= END
        assert len(extra) == 2
        for iv in extra:
            inside = [a for a in readings(by_dev, bed, iv.start, iv.end)
                      if not any(o.covers(a.t) for o in others if o is not inc)]
            assert not any(a.reading.occupied for a in inside)


@pytest.mark.slow
def test_every_incident_shows_in_the_stream_at_its_ground_truth_times(world):
    homes, incs, by_dev = world
    for inc in incs:
        home = next(h for h in homes if h.resident_id == inc.resident_id)
        check(inc, home, by_dev, [i for i in incs if i.resident_id == inc.resident_id])


@pytest.mark.slow
def test_spikes_are_shorter_than_two_minutes_and_vitals_episodes_longer(world):
    _, incs, _ = world
    for inc in incs:
        minutes = (inc.end - inc.start).total_seconds() / 60
        if inc.type in (T.HR_SPIKE, T.RR_SPIKE):
            assert minutes < 2
        elif inc.type in (T.HEART_RATE_HIGH, T.HEART_RATE_LOW, T.RESPIRATION_HIGH,
                          T.RESPIRATION_LOW):
            assert 2 <= minutes <= 30


def test_without_incidents_the_stream_is_the_resident_model():
    homes = make_homes(1)
    acts = timeline(2, [], homes, period=60)
    reads = [a for a in acts if a.kind is ActionKind.READING]
    assert len(reads) == 3 * 24 * 60
    assert all(a.reading == homes[0].model.reading_at(a.t) for a in reads[::37])
    statuses = [a for a in acts if a.kind is ActionKind.STATUS]
    assert len(statuses) == 2 * 3 * 24 * 60  # both devices, first one within the first minute


def test_even_spread_gives_a_steady_rate():
    homes = [HomeSpec(r, ResidentModel.random(r), (f"bed-{r}",)) for r in range(50)]
    scripts = [HomeScript(h, []) for h in homes]
    acts = list(islice(fleet_timeline(scripts, START, None, telemetry_period_s=0.5,
                                      heartbeat_s=None, seed=1, spread="even"), 1000))
    gaps = {round((b.t - a.t).total_seconds(), 4) for a, b in pairwise(acts)}
    assert gaps == {0.01}  # 50 beds every 0.5 s = 100 msg/s, evenly spaced

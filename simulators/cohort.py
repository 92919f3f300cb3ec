"""A labelled evaluation cohort: many residents over many days, seeded and reproducible.

Built on the resident model and the incident overlays (simulators.resident,
simulators.incidents), with the variety a real care district has: early and late risers,
nappers, people who go out for the day, nights in hospital, sensor faults (mat gaps, loss
of contact, a frozen heart-rate channel, single-reading artefacts), gradual changes with a
known onset (the DRIFT_* incidents) and acute incidents, including the sub-persistence
spikes that must not alert. `build_cohort` is pure (a function of the spec); the ground
truth (`Cohort.truth_lines`) lists every incident and every episode, one JSON object a line.

An *episode* is something that happens that is not an incident of the platform's alert
vocabulary (a hospital stay, an outing, a sensor fault): the evaluation knows about it so
that it can tell an alert it causes from a false one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from gateway.schema import EventType
from simulators.incidents import (
    DRIFT_TYPES,
    HomeScript,
    HomeSpec,
    Incident,
    IncidentType,
    Spans,
    plan_incidents,
)
from simulators.resident import DayPlan, MatReading, ResidentModel, ResidentProfile, derive_seed
from simulators.timeline import Action, ActionKind, fleet_streams, merge_actions

T = IncidentType
DEFAULT_RESIDENTS = 50
DEFAULT_DAYS = 120
DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_TELEMETRY_PERIOD_S = 10.0
HEARTBEAT_S = 60
TEST_EVERY = timedelta(days=6)
FIRST_DAY = date(2026, 1, 5)
_DAY = timedelta(days=1)
_MARGIN = timedelta(hours=2)

# Acute incidents every resident gets once in the period (SOS and fall twice, and two of
# each sub-persistence spike, the negative controls).
ACUTE: tuple[IncidentType, ...] = (
    T.SOS, T.SOS, T.FALL, T.FALL, T.BED_EXIT_NO_RETURN, T.HEART_RATE_HIGH,
    T.HEART_RATE_LOW, T.RESPIRATION_HIGH, T.RESPIRATION_LOW, T.APNEA, T.NOT_UP,
    T.LONG_ABSENCE, T.DEVICE_OFFLINE, T.BATTERY_DRAIN, T.HR_SPIKE, T.HR_SPIKE, T.RR_SPIKE,
    T.RR_SPIKE)


class Archetype(StrEnum):
    """The kind of daily routine a resident keeps."""

    REGULAR = "regular"
    EARLY_RISER = "early_riser"
    LATE_RISER = "late_riser"
    NAPPER = "napper"
    OUTGOER = "outgoer"  # often out for the day


ARCHETYPE_WEIGHTS: dict[Archetype, float] = {
    Archetype.REGULAR: 0.4, Archetype.EARLY_RISER: 0.15, Archetype.LATE_RISER: 0.15,
    Archetype.NAPPER: 0.15, Archetype.OUTGOER: 0.15}


class EpisodeKind(StrEnum):
    """Things that happen that are not alert incidents."""

    HOSPITAL = "hospital"  # away for nights: the mat is empty, no alert is owed
    OUTING = "outing"  # out for the day, back in the evening
    MAT_GAP = "mat_gap"  # the mat sends nothing for a short while (under the offline limit)
    CONTACT_LOSS = "contact_loss"  # occupied, but no heart rate or respiration measured
    FLATLINE = "flatline"  # the heart-rate channel is stuck at one value
    ARTEFACT = "artefact"  # one implausible reading (heart rate and respiration spike)


@dataclass(frozen=True, slots=True)
class Episode:
    """One episode of a resident (and device, for sensor faults), [start, end)."""

    resident_id: int
    kind: EpisodeKind
    start: datetime
    end: datetime
    device_id: str | None = None
    params: Mapping[str, float] = field(default_factory=dict, hash=False)

    def covers(self, t: datetime) -> bool:
        """True when `t` is in [start, end)."""
        return self.start <= t < self.end

    def as_json(self) -> dict[str, Any]:
        """The ground-truth line of this episode."""
        return {"resident_id": self.resident_id, "episode": self.kind.value,
                "device_id": self.device_id, "start": _iso(self.start),
                "end": _iso(self.end), "params": dict(self.params)}


@dataclass(frozen=True, slots=True)
class CohortSpec:
    """What cohort to build: size, length, seed, zone and telemetry period."""

    residents: int = DEFAULT_RESIDENTS
    days: int = DEFAULT_DAYS
    seed: int = 1
    timezone: str = DEFAULT_TZ
    first_day: date = FIRST_DAY
    telemetry_period_s: float = DEFAULT_TELEMETRY_PERIOD_S

    @property
    def start(self) -> datetime:
        """Local noon of the first day, in UTC (a day plan runs noon to noon)."""
        return datetime.combine(self.first_day, time(12), ZoneInfo(self.timezone)
                                ).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """`days` after the start."""
        return self.start + self.days * _DAY

    @property
    def resident_days(self) -> int:
        """Residents x days."""
        return self.residents * self.days


@dataclass(frozen=True)
class Resident:
    """One resident of the cohort: home, routine and what happens to them."""

    home: HomeSpec
    archetype: Archetype
    incidents: tuple[Incident, ...]
    episodes: tuple[Episode, ...]

    @property
    def resident_id(self) -> int:
        """The resident's id."""
        return self.home.resident_id

    @property
    def bed(self) -> str:
        """The bed sensor's device id."""
        return self.home.beds[0]

    @property
    def button(self) -> str:
        """The call button's device id."""
        return self.home.buttons[0]


@dataclass(frozen=True)
class Cohort:
    """Every resident of a spec, with their incidents and episodes."""

    spec: CohortSpec
    residents: tuple[Resident, ...]

    def resident(self, resident_id: int) -> Resident:
        """One resident by id."""
        for r in self.residents:
            if r.resident_id == resident_id:
                return r
        raise KeyError(resident_id)

    def truth_lines(self) -> Iterator[str]:
        """The ground truth as JSON Lines: every incident, then every episode."""
        for r in self.residents:
            for inc in r.incidents:
                yield json.dumps(inc.as_json(), sort_keys=True)
        for r in self.residents:
            for ep in r.episodes:
                yield json.dumps(ep.as_json(), sort_keys=True)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- building ------------------------------------------------------------------------------


def build_cohort(spec: CohortSpec) -> Cohort:
    """The cohort of `spec` (same spec, same cohort)."""
    if spec.residents < 1 or spec.days < 1:
        raise ValueError("a cohort needs at least one resident and one day")
    return Cohort(spec, tuple(build_resident(spec, rid)
                              for rid in range(1, spec.residents + 1)))


def build_resident(spec: CohortSpec, rid: int) -> Resident:
    """Resident `rid` of the cohort of `spec` (each resident depends only on the seed and
    its id, so a worker process can build just the one it runs)."""
    rng = Random(derive_seed("cohort", spec.seed, rid))
    archetype = _archetype(rng)
    seed = derive_seed("cohort-resident", spec.seed, rid)
    profile = shape_profile(ResidentProfile.random(seed), archetype, rng)
    home = HomeSpec(rid, ResidentModel(profile, seed, ZoneInfo(spec.timezone)),
                    (f"bed-{rid:04d}",), (f"btn-{rid:04d}",))
    incidents = _incidents(home, spec, rng)
    episodes = _episodes(home, archetype, incidents, spec, rng)
    return Resident(home, archetype, tuple(incidents), tuple(episodes))


def _archetype(rng: Random) -> Archetype:
    kinds = list(ARCHETYPE_WEIGHTS)
    return rng.choices(kinds, weights=[ARCHETYPE_WEIGHTS[k] for k in kinds])[0]


def shape_profile(p: ResidentProfile, archetype: Archetype, rng: Random) -> ResidentProfile:
    """A random profile moved towards an archetype's routine."""
    if archetype is Archetype.EARLY_RISER:
        return replace(p, rise_min=5 * 60 + rng.uniform(-20, 30),
                       bedtime_min=21 * 60 + rng.uniform(-30, 20))
    if archetype is Archetype.LATE_RISER:
        return replace(p, rise_min=8 * 60 + 30 + rng.uniform(-20, 40),
                       bedtime_min=23 * 60 + 30 + rng.uniform(-30, 40))
    if archetype is Archetype.NAPPER:
        return replace(p, nap_probability=rng.uniform(0.8, 1.0))
    return p


def _incidents(home: HomeSpec, spec: CohortSpec, rng: Random) -> list[Incident]:
    """One of each acute incident in the period (after the first week, so habits are
    known), and for about half the residents one gradual change with a known onset."""
    settle = spec.start + min(7, spec.days // 4) * _DAY
    out = plan_incidents([home], settle, spec.end, derive_seed("acute", spec.seed,
                                                               home.resident_id),
                         types=ACUTE)
    if spec.days >= 30 and rng.random() < 0.5:
        out.append(_drift(home.resident_id, spec, rng))
    return sorted(out, key=lambda i: i.start)


def _drift(rid: int, spec: CohortSpec, rng: Random) -> Incident:
    """A gradual change: onset after the baselines can be learned (day 30 onwards), ramping
    up over 3 to 10 days, and staying."""
    typ = rng.choice(sorted(DRIFT_TYPES - {T.DRIFT_RESPIRATION}))
    last = max(31, spec.days - 20)
    onset = spec.start + timedelta(days=rng.uniform(30, last))
    onset = onset.replace(microsecond=0)
    ramp = timedelta(days=rng.uniform(3, 10))
    params: dict[str, float | str]
    if typ is T.DRIFT_RESTING_HR:
        params = {"delta_bpm": round(rng.uniform(6, 10), 1)}
    elif typ is T.DRIFT_NIGHT_EXITS:
        params = {"extra_exits": 2.0}
    else:
        params = {"delta_min": round(rng.uniform(60, 90), 1)}
    return Incident(rid, typ, onset, onset + ramp, None, params)


class _Busy:
    """Intervals a new episode must keep clear of."""

    def __init__(self, spans: Sequence[tuple[datetime, datetime]]) -> None:
        self.spans = list(spans)

    def free(self, a: datetime, b: datetime) -> bool:
        return all(b + _MARGIN <= s or a >= e + _MARGIN for s, e in self.spans)

    def add(self, a: datetime, b: datetime) -> None:
        self.spans.append((a, b))


def _episodes(home: HomeSpec, archetype: Archetype, incidents: Sequence[Incident],
              spec: CohortSpec, rng: Random) -> list[Episode]:
    rid = home.resident_id
    busy = _Busy([(i.start, _until(i)) for i in incidents if i.type not in DRIFT_TYPES])
    plans = list(home.model.plans(spec.first_day, spec.days))
    out: list[Episode] = []
    if rng.random() < 0.15 and spec.days >= 10:  # a hospital stay of 2 to 6 nights
        out += _place(rng, plans[2:-7], busy, lambda p: _hospital(rid, p, rng))
    outings = spec.days / (7 if archetype is Archetype.OUTGOER else 30)
    for _ in range(_count(rng, outings)):
        out += _place(rng, plans, busy, lambda p: _outing(rid, p, rng))
    faults: list[tuple[float, Any]] = [
        (spec.days / 8, lambda p: _mat_gap(rid, home.beds[0], p, rng)),
        (spec.days / 12, lambda p: _contact_loss(rid, home.beds[0], p, rng)),
        (spec.days / 5, lambda p: _artefact(rid, home.beds[0], p, rng)),
        (0.3 if spec.days >= 10 else 0.0, lambda p: _flatline(rid, home.beds[0], p, rng))]
    for mean, make in faults:
        for _ in range(_count(rng, mean)):
            out += _place(rng, plans, busy, make)
    return sorted(out, key=lambda e: e.start)


def _count(rng: Random, mean: float) -> int:
    """A Poisson count (Knuth)."""
    if mean <= 0:
        return 0
    limit, k, prod = math.exp(-mean), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def _place(rng: Random, plans: Sequence[DayPlan], busy: _Busy, make: Any) -> list[Episode]:
    """Draw an episode on a random day until one fits clear of the others (or give up)."""
    if not plans:
        return []
    for _attempt in range(30):
        ep: Episode | None = make(rng.choice(plans))
        if ep is not None and busy.free(ep.start, ep.end):
            busy.add(ep.start, ep.end)
            return [ep]
    return []


def _until(inc: Incident) -> datetime:
    if inc.type is T.BATTERY_DRAIN:
        return inc.time_param("replaced_at")
    return inc.end


def _hospital(rid: int, plan: DayPlan, rng: Random) -> Episode:
    """Taken to hospital in the afternoon, back home days later in the afternoon."""
    leave = plan.bedtime - timedelta(hours=rng.uniform(3, 6))
    back = leave + timedelta(days=rng.randint(2, 6), hours=rng.uniform(-2, 2))
    return Episode(rid, EpisodeKind.HOSPITAL, _whole(leave), _whole(back))


def _outing(rid: int, plan: DayPlan, rng: Random) -> Episode:
    """Out for the day (no nap at home), back in the evening, at most an hour past the usual
    bedtime."""
    leave = plan.bedtime - timedelta(hours=rng.uniform(9, 12))
    back = plan.bedtime + timedelta(minutes=rng.uniform(-120, 60))
    return Episode(rid, EpisodeKind.OUTING, _whole(leave), _whole(back))


def _night(plan: DayPlan, rng: Random, length: timedelta) -> datetime | None:
    lo = plan.asleep_at + timedelta(minutes=30)
    room = (plan.awake_at - lo - length).total_seconds()
    if room <= 0:
        return None
    return _whole(lo + timedelta(seconds=rng.uniform(0, room)))


def _mat_gap(rid: int, bed: str, plan: DayPlan, rng: Random) -> Episode | None:
    length = timedelta(seconds=rng.uniform(30, 150))
    at = _night(plan, rng, length)
    return None if at is None else Episode(rid, EpisodeKind.MAT_GAP, at, at + length, bed)


def _contact_loss(rid: int, bed: str, plan: DayPlan, rng: Random) -> Episode | None:
    length = timedelta(minutes=rng.uniform(5, 30))
    at = _night(plan, rng, length)
    return None if at is None else Episode(rid, EpisodeKind.CONTACT_LOSS, at, at + length, bed)


def _flatline(rid: int, bed: str, plan: DayPlan, rng: Random) -> Episode | None:
    length = timedelta(hours=rng.uniform(1, 4))
    at = _night(plan, rng, length)
    if at is None:
        return None
    return Episode(rid, EpisodeKind.FLATLINE, at, at + length, bed,
                   {"heart_rate": round(rng.uniform(58, 72), 1)})


def _artefact(rid: int, bed: str, plan: DayPlan, rng: Random) -> Episode | None:
    length = timedelta(seconds=rng.uniform(1, 12))
    at = _night(plan, rng, length)
    if at is None:
        return None
    return Episode(rid, EpisodeKind.ARTEFACT, at, at + length, bed,
                   {"heart_rate": round(rng.uniform(170, 220)),
                    "respiration": round(rng.uniform(38, 50))})


def _whole(t: datetime) -> datetime:
    return (t + timedelta(microseconds=500_000)).replace(microsecond=0)


# --- what the devices do ---------------------------------------------------------------------


class CohortScript(HomeScript):
    """A home's script with the cohort's episodes laid over its incidents."""

    def __init__(self, resident: Resident) -> None:
        super().__init__(resident.home, resident.incidents)
        self.episodes = resident.episodes
        self._away = [e for e in resident.episodes
                      if e.kind in (EpisodeKind.HOSPITAL, EpisodeKind.OUTING)]
        self._gaps = [e for e in resident.episodes if e.kind is EpisodeKind.MAT_GAP]
        self._faults = [e for e in resident.episodes
                        if e.kind in (EpisodeKind.CONTACT_LOSS, EpisodeKind.FLATLINE,
                                      EpisodeKind.ARTEFACT)]
        # every reading asks whether an episode covers it: bisect first, look closer if so
        self._away_spans = Spans((e.start, e.end) for e in self._away)
        self._gap_spans = Spans((e.start, e.end) for e in self._gaps)
        self._fault_spans = Spans((e.start, e.end) for e in self._faults)

    def reading_at(self, t: datetime) -> MatReading:
        """The incidents' reading, then the episodes: away (empty), sensor faults."""
        if self._away_spans.any_at(t):
            return MatReading(False, None, None, 0)
        r = super().reading_at(t)
        if r.occupied and self._fault_spans.any_at(t):
            for ep in self._faults:
                if ep.start <= t < ep.end:
                    r = _fault(ep, r)
        return r

    def dead_at(self, device_id: str, t: datetime) -> bool:
        """Dead (battery) or, for the bed, in a mat gap: no reading is sent."""
        if self._gap_spans.any_at(t) and any(ep.start <= t < ep.end and ep.device_id == device_id
                                             for ep in self._gaps):
            return True
        return super().dead_at(device_id, t)

    def empty_until(self, device_id: str, t: datetime) -> datetime:
        """As `HomeScript.empty_until`, with the episodes: away, the mat reads empty until
        the resident is back; a mat gap sends nothing (the sensor faults change only an
        occupied mat's readings)."""
        for ep in self._away:
            if ep.start <= t < ep.end:
                end = self.alive_until(device_id, t, ep.end)
                break
        else:
            end = super().empty_until(device_id, t)
        for ep in self._gaps:
            if ep.device_id == device_id and ep.start < end and t < ep.end:
                if ep.start <= t:
                    return t
                end = ep.start
        return end

    def away(self, t: datetime) -> bool:
        """True while the resident is out or in hospital."""
        return any(ep.start <= t < ep.end for ep in self._away)


def _fault(ep: Episode, r: MatReading) -> MatReading:
    if ep.kind is EpisodeKind.CONTACT_LOSS:
        return r._replace(heart_rate=None, respiration=None, movement=max(r.movement, 2))
    if ep.kind is EpisodeKind.FLATLINE:
        return r._replace(heart_rate=float(ep.params["heart_rate"]))
    return r._replace(heart_rate=float(ep.params["heart_rate"]),
                      respiration=float(ep.params["respiration"]))


def test_presses(resident: Resident, spec: CohortSpec) -> list[Action]:
    """The weekly button self-test the resident is asked to do (every 6 days, mid-morning),
    skipped while away in hospital."""
    rng = Random(derive_seed("tests", spec.seed, resident.resident_id))
    hospital = [e for e in resident.episodes if e.kind is EpisodeKind.HOSPITAL]
    out: list[Action] = []
    day = spec.start + timedelta(hours=rng.uniform(20, 24))  # the next morning
    while day < spec.end:
        if not any(e.covers(day) for e in hospital):
            out.append(Action(_whole(day), resident.button, ActionKind.EVENT,
                              event=EventType.TEST, detail="weekly test"))
        day += TEST_EVERY + timedelta(minutes=rng.uniform(-60, 60))
    return out


def home_actions(resident: Resident, spec: CohortSpec,
                 script: CohortScript | None = None) -> Iterator[Action]:
    """Everything the resident's devices do over the period, in time order: readings,
    heartbeats, incident events and connectivity (simulators.timeline), and test presses."""
    script = script or CohortScript(resident)
    base = fleet_streams([script], spec.start, spec.end,
                         telemetry_period_s=spec.telemetry_period_s,
                         heartbeat_s=HEARTBEAT_S,
                         seed=derive_seed("timeline", spec.seed, resident.resident_id))
    # one merge (as `fleet_timeline` merged with the presses: at equal times, those last)
    return merge_actions([*base, test_presses(resident, spec)])

"""Incidents: seeded, pure overlays on the resident model, and their ground truth.

An `Incident` says what happened to whom (or to which device) and when. `plan_incidents`
draws them for a period from a seed; `HomeScript` applies them to a home: the bed mat's
readings, the call button's events, the devices' connectivity and battery. The ground
truth is a JSON Lines file, one incident a line (`write_ground_truth` / `read_ground_truth`).
Nothing here does I/O except those two functions, and nothing reads the wall clock.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from random import Random
from typing import Any

from simulators.resident import DayPlan, Interval, MatReading, ResidentModel, derive_seed

Param = float | str


class IncidentType(StrEnum):
    """Kinds of incident; names match the platform's alert types where they correspond."""

    SOS = "sos"
    FALL = "fall"
    BED_EXIT_NO_RETURN = "bed_exit_no_return"
    HEART_RATE_HIGH = "heart_rate_high"
    HEART_RATE_LOW = "heart_rate_low"
    RESPIRATION_HIGH = "respiration_high"
    RESPIRATION_LOW = "respiration_low"
    HR_SPIKE = "hr_spike"
    RR_SPIKE = "rr_spike"
    APNEA = "apnea"
    NOT_UP = "not_up"
    LONG_ABSENCE = "long_absence"
    DEVICE_OFFLINE = "device_offline"
    BATTERY_DRAIN = "battery_drain"
    DRIFT_RESTING_HR = "drift_resting_hr"
    DRIFT_NIGHT_EXITS = "drift_night_exits"
    DRIFT_RISE_TIME = "drift_rise_time"
    DRIFT_RESPIRATION = "drift_respiration"


T = IncidentType
ALL_TYPES: tuple[IncidentType, ...] = tuple(IncidentType)
BUTTON_TYPES = frozenset({T.SOS, T.FALL})
DEVICE_TYPES = frozenset({T.DEVICE_OFFLINE, T.BATTERY_DRAIN})
DRIFT_TYPES = frozenset({T.DRIFT_RESTING_HR, T.DRIFT_NIGHT_EXITS, T.DRIFT_RISE_TIME,
                         T.DRIFT_RESPIRATION})
# Abnormal vital signs held while asleep: (reading field, low, high of the level, min s, max s).
VITALS: dict[IncidentType, tuple[str, float, float, float, float]] = {
    T.HEART_RATE_HIGH: ("heart_rate", 120.0, 140.0, 120.0, 1800.0),
    T.HEART_RATE_LOW: ("heart_rate", 34.0, 40.0, 120.0, 1800.0),
    T.RESPIRATION_HIGH: ("respiration", 28.0, 35.0, 120.0, 1800.0),
    T.RESPIRATION_LOW: ("respiration", 5.0, 7.0, 120.0, 1800.0),
    T.HR_SPIKE: ("heart_rate", 125.0, 145.0, 20.0, 90.0),  # negative controls: < 2 min
    T.RR_SPIKE: ("respiration", 30.0, 36.0, 20.0, 90.0),
    T.APNEA: ("respiration", 0.0, 0.0, 10.0, 60.0),
}
NIGHT_TYPES = frozenset({*VITALS, T.BED_EXIT_NO_RETURN})
MARGIN = timedelta(minutes=30)
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident: who, which device (if any), what, when (UTC, [start, end]) and details."""

    resident_id: int
    type: IncidentType
    start: datetime
    end: datetime
    device_id: str | None = None
    params: Mapping[str, Param] = field(default_factory=dict, hash=False)

    def covers(self, t: datetime) -> bool:
        """True when `t` is in [start, end)."""
        return self.start <= t < self.end

    def param(self, name: str) -> float:
        """A numeric parameter."""
        return float(self.params[name])

    def time_param(self, name: str) -> datetime:
        """A time parameter (stored as ISO-8601 UTC)."""
        return datetime.fromisoformat(str(self.params[name]))

    def as_json(self) -> dict[str, Any]:
        """The ground-truth line for this incident."""
        return {"resident_id": self.resident_id, "device_id": self.device_id,
                "type": self.type.value, "start": _iso(self.start), "end": _iso(self.end),
                "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Incident:
        """Read one ground-truth line."""
        return cls(int(data["resident_id"]), IncidentType(data["type"]),
                   _parse(data["start"]), _parse(data["end"]), data.get("device_id"),
                   dict(data.get("params") or {}))


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"ground-truth time {text!r} has no UTC offset")
    return t.astimezone(UTC)


def write_ground_truth(incidents: Iterable[Incident], path: Path) -> Path:
    """Write incidents as JSON Lines (sorted by start), creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(incidents, key=lambda i: (i.start, i.resident_id, i.type.value))
    with path.open("w") as f:
        for inc in ordered:
            f.write(json.dumps(inc.as_json(), sort_keys=True) + "\n")
    return path


def read_ground_truth(path: Path) -> list[Incident]:
    """Read a ground-truth JSON Lines file written by `write_ground_truth`."""
    out: list[Incident] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Incident.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a ground-truth incident: {exc}") from None
    return out


# --- the homes incidents happen in ----------------------------------------------------------


@dataclass(frozen=True)
class HomeSpec:
    """A resident's model and device ids, as the planner and the script need them."""

    resident_id: int
    model: ResidentModel
    beds: tuple[str, ...] = ()
    buttons: tuple[str, ...] = ()

    @property
    def devices(self) -> tuple[str, ...]:
        """Every device id in the home."""
        return (*self.beds, *self.buttons)


# --- planning --------------------------------------------------------------------------------


class _Busy:
    """Reserved intervals that new incidents must not overlap."""

    def __init__(self) -> None:
        self.spans: list[tuple[datetime, datetime]] = []

    def free(self, a: datetime, b: datetime) -> bool:
        return all(b + MARGIN <= s or a >= e + MARGIN for s, e in self.spans)

    def add(self, a: datetime, b: datetime) -> None:
        self.spans.append((a, b))


def plan_incidents(homes: Sequence[HomeSpec], start: datetime, end: datetime, seed: int, *,
                   types: Iterable[IncidentType] = ALL_TYPES,
                   per_home_per_day: float | None = None) -> list[Incident]:
    """Draw incidents for [start, end): one of each type per home, or a Poisson number a day.

    Incidents of a home never overlap (drifts excepted), bed incidents fall while the resident
    sleeps away from night exits, and none hides another (no SOS from a dead button).
    An incident that cannot be placed in the period is left out.
    """
    if end <= start:
        raise ValueError("the incident period is empty")
    wanted = list(types)
    out: list[Incident] = []
    for home in homes:
        rng = Random(derive_seed("incidents", seed, home.resident_id))
        if per_home_per_day is None:
            chosen = list(wanted)
        else:
            days = (end - start).total_seconds() / 86_400
            n = _poisson(rng, per_home_per_day * days)
            chosen = [rng.choice(wanted) for _ in range(n)] if wanted else []
        out += _plan_home(home, start, end, rng, chosen)
    return sorted(out, key=lambda i: (i.start, i.resident_id, i.type.value))


def _plan_home(home: HomeSpec, start: datetime, end: datetime, rng: Random,
               chosen: list[IncidentType]) -> list[Incident]:
    # Device incidents first (they constrain the others), then the long ones, drifts last.
    order = sorted(chosen, key=_placement_rank)
    resident_busy = _Busy()
    device_busy = {d: _Busy() for d in home.devices}
    dead: list[tuple[datetime, datetime]] = []
    out: list[Incident] = []
    for typ in order:
        for _attempt in range(200):
            inc = _draw(typ, home, start, end, rng)
            if inc is None:
                continue
            inc = _whole_seconds(inc)
            if _fits(inc, resident_busy, device_busy, dead, start, end):
                _reserve(inc, resident_busy, device_busy, dead)
                out.append(inc)
                break
    return out


def _placement_rank(t: IncidentType) -> int:
    if t in DEVICE_TYPES:
        return 0
    if t in (T.LONG_ABSENCE, T.BED_EXIT_NO_RETURN, T.NOT_UP):
        return 1
    return 3 if t in DRIFT_TYPES else 2


def _fits(inc: Incident, resident_busy: _Busy, device_busy: dict[str, _Busy],
          dead: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    if inc.start < start or _until(inc) > end:
        return False
    if inc.type in DRIFT_TYPES:
        return True
    a, b = inc.start, _until(inc)
    if inc.type in DEVICE_TYPES:
        assert inc.device_id is not None
        # A dead device must not hide a resident incident placed before it: none are yet.
        return device_busy[inc.device_id].free(a, b)
    if any(not (b + MARGIN <= s or a >= e + MARGIN) for s, e in dead):
        return False
    return resident_busy.free(a, b)


def _reserve(inc: Incident, resident_busy: _Busy, device_busy: dict[str, _Busy],
             dead: list[tuple[datetime, datetime]]) -> None:
    if inc.type in DRIFT_TYPES:
        return
    if inc.type in DEVICE_TYPES:
        assert inc.device_id is not None
        device_busy[inc.device_id].add(inc.start, _until(inc))
        if inc.type is T.BATTERY_DRAIN:
            dead.append((inc.end, _until(inc)))
        return
    resident_busy.add(inc.start, _until(inc))


def _whole_seconds(inc: Incident) -> Incident:
    """Round start and end to whole seconds (device time on the wire is milliseconds)."""
    def r(t: datetime) -> datetime:
        return (t + timedelta(microseconds=500_000)).replace(microsecond=0)
    return replace(inc, start=r(inc.start), end=r(inc.end))


def _until(inc: Incident) -> datetime:
    """When the incident stops affecting the stream (a drained device is dead until then)."""
    if inc.type is T.BATTERY_DRAIN:
        return inc.time_param("replaced_at")
    return inc.end


def _day_plans(model: ResidentModel, start: datetime, end: datetime) -> list[DayPlan]:
    first = (start.astimezone(model.tz) - _DAY).date()
    n = (end - start).days + 3
    return [p for p in model.plans(first, n) if p.bedtime < end and p.rise > start]


def _draw(typ: IncidentType, home: HomeSpec, start: datetime, end: datetime, rng: Random
          ) -> Incident | None:
    rid = home.resident_id
    span = (end - start).total_seconds()
    if typ in BUTTON_TYPES:
        if not home.buttons:
            return None
        t = start + timedelta(seconds=rng.uniform(0, span))
        return Incident(rid, typ, t, t, rng.choice(home.buttons))
    if typ in DEVICE_TYPES:
        return _draw_device(typ, home, start, span, rng)
    if typ in DRIFT_TYPES:
        return _draw_drift(typ, rid, start, span, rng)
    if not home.beds:
        return None
    plans = _day_plans(home.model, start, end)
    if not plans:
        return None
    plan = rng.choice(plans)
    if typ in NIGHT_TYPES:
        return _draw_night(typ, rid, plan, rng)
    if typ is T.NOT_UP:
        late = timedelta(minutes=rng.uniform(90, 240))
        return Incident(rid, typ, plan.rise, plan.rise + late, None,
                        {"usual_rise": _iso(plan.rise)})
    # Long absence: out from the evening, not in bed at bedtime, back in the night or later.
    out_at = plan.bedtime - timedelta(hours=rng.uniform(1, 3))
    back = plan.bedtime + timedelta(hours=rng.uniform(3, 10))
    return Incident(rid, typ, out_at, back, None, {"usual_bedtime": _iso(plan.bedtime)})


def _draw_night(typ: IncidentType, rid: int, plan: DayPlan, rng: Random) -> Incident | None:
    if typ is T.BED_EXIT_NO_RETURN:
        dur = rng.uniform(20 * 60, 180 * 60)
        params: dict[str, Param] = {"minutes_away": round(dur / 60, 1)}
    else:
        _, lo, hi, min_s, max_s = VITALS[typ]
        dur = rng.uniform(min_s, max_s)
        params = {"level": round(rng.uniform(lo, hi), 1), "seconds": round(dur, 1)}
    lo_t = plan.asleep_at + timedelta(minutes=30)
    room = (plan.awake_at - timedelta(minutes=15) - lo_t).total_seconds() - dur
    if room <= 0:
        return None
    a = lo_t + timedelta(seconds=rng.uniform(0, room))
    b = a + timedelta(seconds=dur)
    iv = Interval(a - timedelta(minutes=10), b + timedelta(minutes=10))
    if any(not (iv.end <= ex.restless_from or iv.start >= ex.settled_at) for ex in plan.exits):
        return None
    return Incident(rid, typ, a, b, None, params)


def _draw_device(typ: IncidentType, home: HomeSpec, start: datetime, span: float,
                 rng: Random) -> Incident | None:
    if not home.devices:
        return None
    dev = rng.choice(home.devices)
    if typ is T.DEVICE_OFFLINE:
        dur = rng.uniform(30 * 60, 6 * 3600)
        a = start + timedelta(seconds=rng.uniform(0, max(span - dur, 0)))
        return Incident(home.resident_id, typ, a, a + timedelta(seconds=dur), dev,
                        {"minutes": round(dur / 60, 1)})
    drain = rng.uniform(6 * 3600, 24 * 3600)
    dead = rng.uniform(3600, 6 * 3600)
    a = start + timedelta(seconds=rng.uniform(0, max(span - drain - dead, 0)))
    empty = a + timedelta(seconds=drain)
    return Incident(home.resident_id, typ, a, empty, dev,
                    {"hours_to_empty": round(drain / 3600, 2),
                     "replaced_at": _iso(empty + timedelta(seconds=dead))})


def _draw_drift(typ: IncidentType, rid: int, start: datetime, span: float, rng: Random
                ) -> Incident:
    dur = min(rng.uniform(3, 10) * 86_400, 0.6 * span)
    a = start + timedelta(seconds=rng.uniform(0, 0.2 * span))
    params: dict[str, Param]
    if typ is T.DRIFT_RESTING_HR:
        params = {"delta_bpm": round(rng.uniform(4, 8), 1)}
    elif typ is T.DRIFT_NIGHT_EXITS:
        params = {"extra_exits": 2.0}
    elif typ is T.DRIFT_RISE_TIME:
        params = {"delta_min": round(rng.uniform(60, 90), 1)}
    else:
        params = {"delta_per_min": round(rng.uniform(2, 3), 2)}
    return Incident(rid, typ, a, a + timedelta(seconds=dur), None, params)


def _poisson(rng: Random, mean: float) -> int:
    """A Poisson draw (Knuth; fine for the small means used here)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    k, prod = 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


# --- applying incidents to a home --------------------------------------------------------------


class Spans:
    """Half-open [start, end) spans, asked whether any covers an instant: a stream of
    readings asks at every reading, mostly when none does, so the answer is a bisection
    rather than a pass over every incident or episode of the period."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, spans: Iterable[tuple[datetime, datetime]]) -> None:
        ordered = sorted(spans)
        self._starts = [a for a, _ in ordered]
        self._ends: list[datetime] = []  # the latest end among the spans started so far
        for _, b in ordered:
            self._ends.append(b if not self._ends or b > self._ends[-1] else self._ends[-1])

    def any_at(self, t: datetime) -> bool:
        """True when some span covers `t`."""
        i = bisect.bisect_right(self._starts, t)
        return i > 0 and t < self._ends[i - 1]



class HomeScript:
    """A home with its incidents: what its devices measure, send and suffer at any instant."""

    def __init__(self, home: HomeSpec, incidents: Iterable[Incident]) -> None:
        self.home = home
        self.model = home.model
        mine = [i for i in incidents if i.resident_id == home.resident_id]
        self.incidents = sorted(mine, key=lambda i: i.start)
        self.drifts = [i for i in self.incidents if i.type in DRIFT_TYPES]
        self.acute = [i for i in self.incidents
                      if i.type not in DRIFT_TYPES and i.type not in DEVICE_TYPES
                      and i.type not in BUTTON_TYPES]
        self.device = [i for i in self.incidents if i.type in DEVICE_TYPES]
        self._acute_spans = Spans((i.start, i.end) for i in self.acute)
        self._extra_exits: dict[date, tuple[Interval, ...]] = {}

    # --- the bed mat ---

    def reading_at(self, t: datetime) -> MatReading:
        """What the mat reports at `t`, incidents applied (acute ones over drifts)."""
        r = self.model.reading_at(t)
        for inc in self.drifts:
            if t >= inc.start:
                r = self._drift(inc, t, r)
        if self._acute_spans.any_at(t):
            for inc in self.acute:
                if inc.start <= t < inc.end:  # inc.covers(t), inlined: every reading asks
                    r = self._acute(inc, t, r)
        return r

    def empty_until(self, device_id: str, t: datetime) -> datetime:
        """The end of the span from `t` in which the bed `device_id` sends a reading at every
        instant and each reads empty (`reading_at` gives an empty mat): the resident is up
        (`ResidentModel.empty_until`), no acute incident and no late rise changes that, and
        the device is not dead. `t` itself when there is no such span. A stream of readings
        uses it to skip `reading_at` (the costly part) while nobody is in bed."""
        end = self.model.empty_until(t)
        for inc in self.acute:
            if inc.start < end and t < inc.end:
                if inc.start <= t:
                    return t
                end = inc.start
        for inc in self.drifts:
            # A later rise keeps the resident lying awake for up to `delta_min` after the
            # plan's rise (the other drifts change only an occupied mat's readings).
            if inc.type is T.DRIFT_RISE_TIME and inc.start < end:
                plan = self.model.plan_for(t)
                if plan.rise <= t < plan.rise + timedelta(minutes=inc.param("delta_min")):
                    return t
        return self.alive_until(device_id, t, end)

    def alive_until(self, device_id: str, t: datetime, end: datetime) -> datetime:
        """`end`, or earlier the time the device's battery is empty (`t`: dead now)."""
        for inc in self.device:
            if (inc.type is T.BATTERY_DRAIN and inc.device_id == device_id
                    and inc.end < end and t < _until(inc)):
                if inc.end <= t:
                    return t
                end = inc.end
        return end

    def _drift(self, inc: Incident, t: datetime, r: MatReading) -> MatReading:
        frac = _fraction(inc, t)
        if inc.type is T.DRIFT_RESTING_HR and r.heart_rate is not None:
            return r._replace(heart_rate=_clip(r.heart_rate + frac * inc.param("delta_bpm"),
                                               35.0, 180.0))
        if inc.type is T.DRIFT_RESPIRATION and r.respiration is not None:
            return r._replace(respiration=_clip(
                r.respiration + frac * inc.param("delta_per_min"), 6.0, 40.0))
        if inc.type is T.DRIFT_RISE_TIME:
            plan = self.model.plan_for(t)
            late = timedelta(minutes=frac * inc.param("delta_min"))
            if plan.rise <= t < plan.rise + late:
                return self._lying_awake(t)
        if inc.type is T.DRIFT_NIGHT_EXITS and r.occupied:
            plan = self.model.plan_for(t)
            if any(t in iv for iv in self._night_extra_exits(inc, plan)):
                return MatReading(False, None, None, 0)
        return r

    def _night_extra_exits(self, inc: Incident, plan: DayPlan) -> tuple[Interval, ...]:
        """Extra toilet trips of a night: round(extra × progress), away from the usual ones."""
        cached = self._extra_exits.get(plan.day)
        if cached is not None:
            return cached
        frac = _fraction(inc, plan.asleep_at)
        rng = Random(derive_seed("extra-exits", self.model.seed, plan.day.toordinal()))
        n = math.floor(inc.param("extra_exits") * frac + rng.random())
        lo, hi = plan.asleep_at + timedelta(minutes=20), plan.awake_at - timedelta(minutes=20)
        taken = [Interval(e.restless_from - timedelta(minutes=10),
                          e.settled_at + timedelta(minutes=10)) for e in plan.exits]
        placed: list[Interval] = []
        for _ in range(n if plan.asleep_at >= inc.start else 0):
            for _attempt in range(30):
                dur = timedelta(minutes=rng.uniform(3, 15))
                room = (hi - lo - dur).total_seconds()
                if room <= 0:
                    break
                a = lo + timedelta(seconds=rng.uniform(0, room))
                iv = Interval(a, a + dur)
                if all(iv.end + timedelta(minutes=10) <= o.start
                       or iv.start >= o.end + timedelta(minutes=10) for o in [*taken, *placed]):
                    placed.append(iv)
                    break
        out = tuple(sorted(placed, key=lambda i: i.start))
        self._extra_exits[plan.day] = out
        return out

    def extra_exits(self, day: date) -> tuple[Interval, ...]:
        """Extra night exits a `drift_night_exits` adds on the night starting `day`."""
        plan = self.model.plan_day(day)
        out: tuple[Interval, ...] = ()
        for inc in self.drifts:
            if inc.type is T.DRIFT_NIGHT_EXITS:
                out += self._night_extra_exits(inc, plan)
        return out

    def _acute(self, inc: Incident, t: datetime, r: MatReading) -> MatReading:
        if inc.type in (T.BED_EXIT_NO_RETURN, T.LONG_ABSENCE):
            return MatReading(False, None, None, 0)
        if inc.type is T.NOT_UP:
            return self._lying_awake(t)
        name = VITALS[inc.type][0]
        base = self.model.state_at(t)
        hr, rr = base.heart_rate, base.respiration
        level = inc.param("level")
        wobble = 0.02 * level * math.sin(t.timestamp() / 7.0)
        if name == "heart_rate":
            hr = round(level + wobble, 1)
        else:
            rr = round(level + wobble, 1)
        move = 0 if inc.type is T.APNEA else max(r.movement, 3)
        return MatReading(True, hr, rr, move)

    def _lying_awake(self, t: datetime) -> MatReading:
        """Still in bed, awake, when the routine says up (late rise, not up)."""
        s = self.model.state_at(t)
        p = self.model.profile
        hr = round(s.heart_rate - 0.5 * p.hr_day_offset, 1)
        rr = round(s.respiration - 2.0, 1)
        move = 5 + int(10 * abs(math.sin(t.timestamp() / 60.0)))
        return MatReading(True, hr, rr, move)

    # --- the devices ---

    def offline_at(self, device_id: str, t: datetime) -> bool:
        """True when the device has no network or is dead at `t`."""
        for inc in self.device:
            if (inc.device_id == device_id and inc.start <= t < _until(inc)
                    and (inc.type is T.DEVICE_OFFLINE or t >= inc.end)):
                return True
        return False

    def dead_at(self, device_id: str, t: datetime) -> bool:
        """True when the device's battery is empty (it measures and sends nothing)."""
        return any(inc.type is T.BATTERY_DRAIN and inc.device_id == device_id
                   and inc.end <= t < _until(inc) for inc in self.device)

    def battery_scale(self, device_id: str, t: datetime) -> float:
        """Factor on the device's normal battery level: falls to 0 during a drain incident."""
        for inc in self.device:
            if inc.type is T.BATTERY_DRAIN and inc.device_id == device_id:
                if inc.start <= t < inc.end:
                    return 1.0 - _fraction(inc, t)
                if inc.end <= t < _until(inc):
                    return 0.0
        return 1.0


def _fraction(inc: Incident, t: datetime) -> float:
    total = (inc.end - inc.start).total_seconds()
    if total <= 0:
        return 1.0
    return min(max((t - inc.start).total_seconds() / total, 0.0), 1.0)


def _clip(x: float, lo: float, hi: float) -> float:
    return round(min(max(x, lo), hi), 1)


def by_resident(incidents: Iterable[Incident]) -> dict[int, list[Incident]]:
    """Incidents grouped per resident."""
    out: dict[int, list[Incident]] = {}
    for inc in incidents:
        out.setdefault(inc.resident_id, []).append(inc)
    return out


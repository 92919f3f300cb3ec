"""Ground truth as the scoring needs it: what each alert type owes, within which window.

A `Label` is one thing that happened to a resident, for one alert type:

* `expected`: the condition lasted beyond what the rule needs (a *sustained* event), so an
  alert is owed between `window_start` and `window_end`; recall counts these;
* a negative control (`expected=False`): a spike, an artefact or a fault that must NOT raise
  this alert type inside the window (an alert there is a false alert, counted apart too);
* an excusal (`Excusal`): an alert of these types in the window is neither owed nor false
  (the event was too close to the rule's threshold to say, a hospital stay the platform was
  not told about, a dead sensor that delays the bed rules).

"Sustained" is judged with the rules' own thresholds (alerts.config defaults, the resident's
learned habits at that time, `alerts.rules.params.Params` for the deadlines), with margins
for the telemetry period and `HOLD_S`, so a label never depends on what the detector did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.config import AlertSettings
from alerts.model import AlertType
from alerts.rules.params import Params
from alerts.rules.vitals import HOLD_S
from eldercare.evaluation.devices import DirectHome
from simulators.cohort import CohortScript, CohortSpec, Episode, EpisodeKind, Resident
from simulators.devices import LOW_BATTERY_PCT
from simulators.incidents import VITALS, Incident, IncidentType

T = IncidentType
A = AlertType
ROUTINE_CHANGE = "routine_change"
BUTTON_WINDOW = timedelta(minutes=5)
ROUTINE_WINDOW = timedelta(days=14)
# A gradual change is owed only if the run goes on at least this long after its ramp ends.
DRIFT_SETTLE = timedelta(days=7)
# The feature a gradual change must be judged changed on, and the features it moves as a
# mere consequence (more night exits mean more time out of bed at night and a little less
# in bed; rising later means more time in bed): a judgement on those in the same window is
# excused, neither a detection nor a false alert.
DRIFT_FEATURES: dict[IncidentType, str] = {
    IncidentType.DRIFT_NIGHT_EXITS: "night_exits", IncidentType.DRIFT_RESTING_HR: "resting_hr",
    IncidentType.DRIFT_RISE_TIME: "rise_time", IncidentType.DRIFT_RESPIRATION: "median_rr"}
DRIFT_CONSEQUENCES: dict[IncidentType, tuple[str, ...]] = {
    IncidentType.DRIFT_NIGHT_EXITS: ("night_out_s", "time_in_bed_s"),
    IncidentType.DRIFT_RISE_TIME: ("time_in_bed_s",)}
AFTER = timedelta(minutes=5)
WOBBLE = 0.02  # incidents.HomeScript._acute: level x (1 +/- 2 %)
BED_RULES = (A.NOT_UP.value, A.LONG_ABSENCE.value, A.BED_EXIT_NO_RETURN.value)
VITAL_ALERTS = (A.HEART_RATE_HIGH.value, A.HEART_RATE_LOW.value, A.RESPIRATION_HIGH.value,
                A.RESPIRATION_LOW.value, A.APNEA.value)

Habits = Callable[[int, date], tuple[time | None, float | None]]


@dataclass(frozen=True, slots=True)
class Label:
    """One owed alert (or one negative control) of a resident."""

    resident_id: int
    alert_type: str
    source: str  # the incident type or episode kind it comes from
    onset: datetime  # delays are measured from here
    window_start: datetime
    window_end: datetime
    expected: bool = True
    spike: bool = False  # a negative control of the sub-persistence kind
    detail: str = ""  # routine_change: the feature that must be judged changed

    def matches(self, resident_id: int, alert_type: str, at: datetime,
                detail: str = "") -> bool:
        """True if an alert of this resident and type (and feature, for a label that names
        one) at `at` falls in the window."""
        return (resident_id == self.resident_id and alert_type == self.alert_type
                and self.window_start <= at <= self.window_end
                and (not self.detail or detail == self.detail))


@dataclass(frozen=True, slots=True)
class Excusal:
    """Alerts of these types in [start, end] are neither owed nor false."""

    resident_id: int
    alert_types: tuple[str, ...]
    start: datetime
    end: datetime
    reason: str
    details: tuple[str, ...] = ()  # routine_change: only these features (empty: any)

    def covers(self, resident_id: int, alert_type: str, at: datetime,
               detail: str = "") -> bool:
        """True if this excuses the alert."""
        return (resident_id == self.resident_id and alert_type in self.alert_types
                and self.start <= at <= self.end
                and (not self.details or detail in self.details))


@dataclass
class Truth:
    """Every label and excusal of a cohort."""

    labels: list[Label]
    excusals: list[Excusal]


def cohort_truth(residents: Iterable[Resident], spec: CohortSpec, settings: AlertSettings,
                 habits: Habits) -> Truth:
    """Labels and excusals of every resident; `habits(resident, local day)` gives the usual
    rise time and day length the platform had learned by then."""
    labels: list[Label] = []
    excusals: list[Excusal] = []
    for r in residents:
        judge = _Judge(r, spec, settings, habits)
        for inc in r.incidents:
            lab, exc = judge.incident(inc)
            labels += lab
            excusals += exc
        for ep in r.episodes:
            lab, exc = judge.episode(ep)
            labels += lab
            excusals += exc
    return Truth(labels, excusals)


class _Judge:
    """Turns one resident's incidents and episodes into labels."""

    def __init__(self, r: Resident, spec: CohortSpec, settings: AlertSettings,
                 habits: Habits) -> None:
        self.r = r
        self.rid = r.resident_id
        self.spec = spec
        self.s = settings
        self.tz = ZoneInfo(spec.timezone)
        self.habits = habits
        self.period = spec.telemetry_period_s
        self.slack = timedelta(seconds=2 * self.period + HOLD_S)
        self._script: CohortScript | None = None

    def params(self, t: datetime) -> Params:
        rise, day_s = self.habits(self.rid, t.astimezone(self.tz).date())
        return Params(self.s, self.tz, rise, day_s)

    def incident(self, inc: Incident) -> tuple[list[Label], list[Excusal]]:
        typ = inc.type
        if typ in (T.SOS, T.FALL):
            return [self.owed(typ.value, inc, inc.start, inc.start + BUTTON_WINDOW)], []
        if typ in VITALS:
            return self.vital(inc)
        if typ is T.BED_EXIT_NO_RETURN:
            return self.bed_exit(inc)
        if typ is T.NOT_UP:
            return self.not_up(inc)
        if typ is T.LONG_ABSENCE:
            return self.long_absence(inc)
        if typ is T.DEVICE_OFFLINE:
            return self.offline(inc)
        if typ is T.BATTERY_DRAIN:
            return self.battery(inc)
        return self.drift(inc)

    def owed(self, alert: str, inc: Incident, start: datetime, end: datetime) -> Label:
        return Label(self.rid, alert, inc.type.value, inc.start, start, end)

    def excuse(self, alerts: Iterable[str], start: datetime, end: datetime, reason: str
               ) -> Excusal:
        return Excusal(self.rid, tuple(alerts), start, end, reason)

    # --- vital signs -------------------------------------------------------------------

    def vital(self, inc: Incident) -> tuple[list[Label], list[Excusal]]:
        field_name, *_ = VITALS[inc.type]
        d = (inc.end - inc.start).total_seconds()
        level = inc.param("level")
        end = inc.end + AFTER
        alert: str | None
        if inc.type is T.APNEA:
            alert, sure, possible = A.APNEA.value, float(self.s.apnea_s), float(self.s.apnea_s)
        else:
            alert, sure, possible = self._band(field_name, level)
        if alert is None:
            return [], []
        # A run lasts from its first to its last reading in the band, held HOLD_S more.
        if d >= sure - HOLD_S + 2 * self.period:
            return [Label(self.rid, alert, inc.type.value, inc.start, inc.start, end)], []
        if d < possible - HOLD_S:
            spike = inc.type in (T.HR_SPIKE, T.RR_SPIKE)
            return [Label(self.rid, alert, inc.type.value, inc.start, inc.start, end,
                          expected=False, spike=spike)], []
        return [], [self.excuse([alert], inc.start, end, "near the persistence threshold")]

    def _band(self, field_name: str, level: float) -> tuple[str | None, float, float]:
        """The alert a held level raises, the sustain it surely needs (inf: it may never
        alert) and the shortest sustain it might get by with (the wobble crossing bands)."""
        lo, hi = level * (1 - WOBBLE), level * (1 + WOBBLE)
        b = self.s.heart_rate if field_name == "heart_rate" else self.s.respiration
        inf = float("inf")
        if hi <= b.normal_high and lo >= b.normal_low:
            return None, inf, inf
        if lo > b.normal_high:  # the high side
            alert = A.HEART_RATE_HIGH if field_name == "heart_rate" else A.RESPIRATION_HIGH
            sure = (float(b.urgent_sustain_s) if lo >= b.urgent_at_or_above
                    else float(b.warning_sustain_s) if lo >= b.warning_at_or_above else inf)
            possible = (float(b.urgent_sustain_s) if hi >= b.urgent_at_or_above
                        else float(b.warning_sustain_s) if hi >= b.warning_at_or_above
                        else inf)
            return alert.value, sure, min(sure, possible)
        alert = A.HEART_RATE_LOW if field_name == "heart_rate" else A.RESPIRATION_LOW
        sure = float(b.urgent_sustain_s) if hi <= b.urgent_at_or_below else inf
        possible = float(b.urgent_sustain_s) if lo <= b.urgent_at_or_below else inf
        return alert.value, sure, possible

    # --- bed rules ---------------------------------------------------------------------

    def bed_exit(self, inc: Incident) -> tuple[list[Label], list[Excusal]]:
        p = self.params(inc.start)
        alert = A.BED_EXIT_NO_RETURN.value
        away = (inc.end - inc.start).total_seconds()
        need = float(self.s.bed_exit_return_s)
        end = inc.end + AFTER
        if p.is_night_exit(inc.start.timestamp()) and away >= need + 2 * self.period:
            return [self.owed(alert, inc, inc.start, end)], []
        return [], [self.excuse([alert], inc.start, end,
                                "not a night exit by the rule's window, or near its limit")]

    def not_up(self, inc: Incident) -> tuple[list[Label], list[Excusal]]:
        alert = A.NOT_UP.value
        p = self.params(inc.start)
        due = datetime.fromtimestamp(p.first_not_up_after(inc.start.timestamp() - 1), self.tz)
        end = inc.end + AFTER
        if inc.end >= due + self.slack:
            return [Label(self.rid, alert, inc.type.value, due, due - self.slack, end)], []
        if inc.end + self.slack <= due:
            return [Label(self.rid, alert, inc.type.value, inc.start, inc.start, end,
                          expected=False)], []
        return [], [self.excuse([alert], inc.start, end, "up close to the not-up deadline")]

    def long_absence(self, inc: Incident) -> tuple[list[Label], list[Excusal]]:
        """The bed is empty from the last time the mat saw the resident get up before the
        incident (a rise, a late rise, the end of a nap) until the return; the deadline is
        the rule's own."""
        alert = A.LONG_ABSENCE.value
        out = self._emptied_before(inc.start)
        p = self.params(out)
        due = datetime.fromtimestamp(p.absence_deadline(out.timestamp()), self.tz)
        margin = timedelta(hours=1)  # false mat absences and drifts move the exit a little
        end = inc.end + AFTER
        if inc.end >= due + margin:
            return [Label(self.rid, alert, inc.type.value, due, due - margin, end)], []
        return [], [self.excuse([alert], out, end, "back close to the long-absence deadline")]

    def _emptied_before(self, t: datetime) -> datetime:
        """The first empty reading of the mat's last empty spell before `t` (at most a day
        back), from the readings the devices send."""
        script = self._script = self._script or CohortScript(self.r)
        step = timedelta(seconds=self.period)
        back = t - timedelta(days=1)
        while t > back and not script.reading_at(t - step).occupied:
            t -= step
        return t

    # --- devices -----------------------------------------------------------------------

    def offline(self, inc: Incident) -> tuple[list[Label], list[Excusal]]:
        out = [self.owed(A.DEVICE_OFFLINE.value, inc, inc.start, inc.end + AFTER)]
        exc = [self.excuse(BED_RULES, inc.start, inc.end + timedelta(hours=1),
                           "the bed was offline")] if inc.device_id == self.r.bed else []
        return out, exc

    def battery(self, inc: Incident) -> tuple[list[Label], list[Excusal]]:
        replaced = inc.time_param("replaced_at")
        low = Label(self.rid, A.LOW_BATTERY.value, inc.type.value, self._low_from(inc),
                    inc.start, inc.end + AFTER)
        labels = [low,
                  Label(self.rid, A.DEVICE_OFFLINE.value, inc.type.value, inc.end, inc.end,
                        replaced + AFTER)]
        exc = [self.excuse(BED_RULES + VITAL_ALERTS, inc.end, replaced + timedelta(hours=1),
                           "the bed's battery was empty")] if inc.device_id == self.r.bed else []
        exc.append(self.excuse([A.TEST_OVERDUE.value], inc.end, replaced + timedelta(days=8),
                               "the button's battery was empty"))
        return labels, exc

    def _low_from(self, inc: Incident) -> datetime:
        """When the draining battery is first low: the device warns (a `low_battery` event)
        below LOW_BATTERY_PCT + 10 %, the platform alerts on a status at or below its
        threshold; the earlier is the onset the delay is measured from (levels as
        `DirectHome` reports them)."""
        assert inc.device_id is not None
        dev = DirectHome(self.r, "", self.spec.seed, self.spec.start).devices[inc.device_id]
        total = (inc.end - inc.start).total_seconds()
        t = inc.start
        while t < inc.end:
            level = dev.battery(t, 1.0 - (t - inc.start).total_seconds() / total)
            if level < LOW_BATTERY_PCT + 10 or level <= self.s.low_battery_percent:
                return t
            t += timedelta(minutes=1)
        return inc.end

    # --- gradual changes -----------------------------------------------------------------

    def drift(self, inc: Incident) -> tuple[list[Label], list[Excusal]]:
        exc: list[Excusal] = []
        if inc.type is T.DRIFT_RISE_TIME:  # rising later may pass the not-up deadline
            exc.append(self.excuse([A.NOT_UP.value], inc.start, inc.end + ROUTINE_WINDOW,
                                   "a later rise (gradual change) passes the deadline"))
        if inc.end + DRIFT_SETTLE > self.spec.end:
            # Cut short by the end of the run (a short cohort): not owed, and a judgement of
            # it is not false either.
            exc.append(Excusal(self.rid, (ROUTINE_CHANGE,), inc.start,
                               inc.end + ROUTINE_WINDOW,
                               "a gradual change the run ended before it was complete",
                               (DRIFT_FEATURES[inc.type],
                                *DRIFT_CONSEQUENCES.get(inc.type, ()))))
            return [], exc
        label = Label(self.rid, ROUTINE_CHANGE, inc.type.value, inc.start, inc.start,
                      inc.end + ROUTINE_WINDOW, detail=DRIFT_FEATURES[inc.type])
        if inc.type in DRIFT_CONSEQUENCES:
            exc.append(Excusal(self.rid, (ROUTINE_CHANGE,), inc.start,
                               inc.end + ROUTINE_WINDOW,
                               "a consequence of the gradual change's own feature",
                               DRIFT_CONSEQUENCES[inc.type]))
        return [label], exc

    # --- episodes ------------------------------------------------------------------------

    def episode(self, ep: Episode) -> tuple[list[Label], list[Excusal]]:
        k = ep.kind
        end = ep.end + AFTER
        if k is EpisodeKind.HOSPITAL:
            return [], [self.excuse((*BED_RULES, A.TEST_OVERDUE.value, ROUTINE_CHANGE), ep.start,
                                    ep.end + timedelta(days=7),
                                    "in hospital: the platform was not told")]
        if k is EpisodeKind.OUTING:
            return [self._control(A.LONG_ABSENCE.value, ep, end)], []
        if k is EpisodeKind.MAT_GAP:
            return [self._control(A.DEVICE_OFFLINE.value, ep, end)], []
        if k is EpisodeKind.ARTEFACT:
            return [self._control(a, ep, end, spike=True)
                    for a in (A.HEART_RATE_HIGH.value, A.RESPIRATION_HIGH.value)], []
        return [self._control(a, ep, end) for a in VITAL_ALERTS], []

    def _control(self, alert: str, ep: Episode, end: datetime, spike: bool = False) -> Label:
        return Label(self.rid, alert, ep.kind.value, ep.start, ep.start, end, expected=False,
                     spike=spike)


def habits_from(runs: Iterable[tuple[int, list[tuple[date, time | None, float | None]]]]
                ) -> Habits:
    """A `Habits` lookup from the runs' learned habits (the latest learned on or before the
    day; none before the first refresh)."""
    table: dict[int, list[tuple[date, time | None, float | None]]] = {}
    for rid, rows in runs:
        table[rid] = sorted(rows)

    def lookup(rid: int, day: date) -> tuple[time | None, float | None]:
        best: tuple[time | None, float | None] = (None, None)
        for d, rise, day_s in table.get(rid, []):
            if d > day:
                break
            best = (rise, day_s)
        return best

    return lookup


def iter_windows(labels: Iterable[Label], alert_type: str) -> Iterator[Label]:
    """Labels of one alert type."""
    return (lab for lab in labels if lab.alert_type == alert_type)

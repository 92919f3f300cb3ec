"""Routine change: a slow drift of a resident's daily feature in its worrying direction
(issue 15) - more night exits, a resting heart rate creeping up, later rises.

Statistic: a one-sided EWMA of the robust z-score with a reflecting barrier at zero
(Crowder & Hamilton 1992), one per watched direction:

    S_t = max(0, (1 - lambda) * S_{t-1} + lambda * clip(s * z_t, -z_clip, z_clip))

with z_t = (value - baseline median) / (1.4826 * max(MAD, floor)) and s = +1 upwards, -1
downwards. An alert when S_t reaches `threshold / sensitivity`. Why an EWMA and not CUSUM:
both are optimal-ish for small persistent shifts, but the EWMA's state reads directly as
"the recent z-score, weighted", has one tuning knob with an intuitive meaning (lambda: how
much today counts), and stays bounded on a gradual (ramp) change where CUSUM needs a
reference shift k chosen per feature. The clip keeps one extreme day from alerting on its
own (with the defaults it takes at least two days well out of the usual): a single bad night
is the fixed-threshold rules' business, a routine change is a trend.

Only the worrying direction is watched (features.Feature.direction; 'both' watches the two
sides separately), so sleeping better or fewer night exits never alert. Only personal
baselines (>= 14 counted days) are judged: against the population default, a late riser
would alarm for being a late riser.

Re-arming (hysteresis, as in alarm practice for CUSUM/EWMA charts used as monitors rather
than one-shot tests): after an alert the side stays *alarmed* - its statistic keeps running,
it is not reset to zero - and alerts again only after the statistic has come back down to
`rearm` (the recent days close to the usual again: the change resolved, or has become the
new usual in the baseline). A change that lasts is one change: the care worker was told, and
telling them again every week until the baseline absorbs it is noise that teaches them to
ignore the alert. Resetting to zero instead (the textbook restart after an out-of-control
signal, when the process is assumed to be fixed) would re-alert a week later on the same,
still unchanged, drift. A feature also does not alert again within `cooldown_days`.

Pure: days, baselines and states in, new states and changes out; no clock, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Literal

import numpy as np

from alerts.learning.baselines import (
    MIN_PERSONAL_DAYS,
    WINDOW_DAYS,
    Baseline,
    baselines,
)
from alerts.learning.features import (
    BY_NAME,
    PERSON_FEATURES,
    DayFeatures,
    Feature,
    format_value,
)
from kernel.i18n import N_

Side = Literal["up", "down"]

EXPLANATION = N_("{feature} {recent} vs usual {usual} over the last {days} days")
MAX_RECENT_DAYS = 7  # the explanation's mean covers at most the last week


@dataclass(frozen=True, slots=True)
class RoutineSettings:
    """Tunables of routine change (AlertSettings.routine_change gives them per resident)."""

    enabled: bool = True
    sensitivity: float = 1.0  # > 1 alerts sooner (lower threshold), < 1 later
    ewma_lambda: float = 0.5
    threshold: float = 2.0
    z_clip: float = 3.0
    cooldown_days: int = 7
    # Hysteresis: a side that alerted is re-armed only once its EWMA has come back down to
    # `rearm` (see judge_feature).
    rearm: float = 0.5
    window_days: int = WINDOW_DAYS
    min_days: int = MIN_PERSONAL_DAYS
    # The last week before the judged day stays out of its baseline: a change that builds
    # up over days would otherwise be absorbed into the usual it is judged against.
    gap_days: int = 7

    @property
    def limit(self) -> float:
        """The EWMA level that alerts."""
        return self.threshold / self.sensitivity


@dataclass(frozen=True, slots=True)
class FeatureState:
    """The routine-change memory of one resident's feature (table routine_state)."""

    feature: str
    ewma_up: float = 0.0
    ewma_down: float = 0.0
    run_up: int = 0  # consecutive judged days above the usual (the explanation's days)
    run_down: int = 0
    last_day: date | None = None  # the last day judged (a day is judged once)
    last_alert_day: date | None = None
    alarmed_up: bool = False  # alerted upwards and not re-armed since
    alarmed_down: bool = False

    def ewma(self, side: Side) -> float:
        """The statistic of one side."""
        return self.ewma_up if side == "up" else self.ewma_down

    def alarmed(self, side: Side) -> bool:
        """True when `side` alerted and its statistic has not come back down since."""
        return self.alarmed_up if side == "up" else self.alarmed_down


@dataclass(frozen=True, slots=True)
class RoutineChange:
    """A feature drifted in its worrying direction: what to tell the care worker."""

    feature: str
    side: Side
    day: date  # the local day that completed the evidence
    recent: float  # the feature's mean over the last `days` counted days
    usual: float  # the baseline median
    days: int
    score: float  # the EWMA that crossed the limit
    z: float  # the day's robust z-score

    def explanation(self, translate: Callable[[str], str] = lambda s: s) -> str:
        """E.g. 'Night exits 4.2 vs usual 1.1 over the last 5 days'; every template is
        translated before it is filled."""
        f = BY_NAME[self.feature]
        return translate(EXPLANATION).format(
            feature=translate(f.label), recent=format_value(f, self.recent, translate),
            usual=format_value(f, self.usual, translate), days=self.days)

    def details(self) -> dict[str, object]:
        """The alert's details (JSON): the numbers, so any page can word them in its
        reader's language, and the English explanation."""
        return {"feature": self.feature, "direction": self.side, "day": self.day.isoformat(),
                "recent": round(self.recent, 3), "usual": round(self.usual, 3),
                "days": self.days, "score": round(self.score, 3), "z": round(self.z, 3),
                "explanation": self.explanation()}


def explain(change: Mapping[str, object], translate: Callable[[str], str] = lambda s: s
            ) -> str | None:
    """The explanation of a change as an alert's details keep it (RoutineChange.details), in
    the reader's language: the template is translated before it is filled, from the stored
    numbers (the stored English `explanation` is for the history and the logs). None when
    the details do not describe a known feature."""
    f = BY_NAME.get(str(change.get("feature")))
    try:
        recent, usual = float(change["recent"]), float(change["usual"])  # type: ignore[arg-type]
        days = int(change["days"])  # type: ignore[call-overload]
    except (KeyError, TypeError, ValueError):
        return None
    if f is None:
        return None
    return translate(EXPLANATION).format(
        feature=translate(f.label), recent=format_value(f, recent, translate),
        usual=format_value(f, usual, translate), days=days)


@dataclass(frozen=True, slots=True)
class DayResult:
    """What judging one day gave: the baselines used, the new states, the changes found."""

    day: date
    baselines: dict[str, Baseline]
    states: dict[str, FeatureState]
    changes: list[RoutineChange]


def ewma_step(previous: float, z: float, side: Side, s: RoutineSettings) -> float:
    """One step of the one-sided EWMA of `side`."""
    signed = z if side == "up" else -z
    signed = min(max(signed, -s.z_clip), s.z_clip)
    return max(0.0, (1.0 - s.ewma_lambda) * previous + s.ewma_lambda * signed)


def in_cooldown(state: FeatureState, day: date, s: RoutineSettings) -> bool:
    """True within `cooldown_days` of the feature's last alert."""
    return (state.last_alert_day is not None
            and day - state.last_alert_day < timedelta(days=s.cooldown_days))


def recent_mean(days: Iterable[DayFeatures], feature: Feature, day: date,
                n: int) -> tuple[float, int]:
    """Mean of the feature's counted values over the `n` days ending with `day`, and how
    many counted."""
    start = day - timedelta(days=n - 1)
    vals = [v for d in days if start <= d.day <= day and (v := d.value(feature.name)) is not None]
    return (float(np.mean(vals)) if vals else float("nan")), len(vals)


def judge_feature(state: FeatureState, feature: Feature, day: DayFeatures,
                  base: Baseline, s: RoutineSettings
                  ) -> tuple[FeatureState, Side | None, float]:
    """Update one feature's state with `day`; the side that crossed the limit (None: none,
    or alarmed and not re-armed, or in cooldown, or switched off) and the day's z-score."""
    value = day.value(feature.name)
    if not base.personal or value is None:
        return replace(state, last_day=day.day), None, float("nan")
    z = base.z(value)
    new = replace(state, last_day=day.day)
    fired: Side | None = None
    for side in feature.directions:
        level = ewma_step(state.ewma(side), z, side, s)
        worse = (z if side == "up" else -z) > 0
        run = (state.run_up if side == "up" else state.run_down) + 1 if worse else 0
        alarmed = state.alarmed(side) and level > s.rearm
        if (fired is None and not alarmed and s.enabled and level >= s.limit
                and not in_cooldown(state, day.day, s)):
            fired, alarmed = side, True
        new = (replace(new, ewma_up=level, run_up=run, alarmed_up=alarmed) if side == "up"
               else replace(new, ewma_down=level, run_down=run, alarmed_down=alarmed))
    if fired is not None:
        new = replace(new, last_alert_day=day.day)
    return new, fired, z


def judge_day(days: Sequence[DayFeatures], day: date, states: Mapping[str, FeatureState],
              s: RoutineSettings = RoutineSettings(),
              features: Iterable[Feature] = PERSON_FEATURES) -> DayResult:
    """Judge one resident's local `day` (in `days`, the resident's days; those before it
    make the baselines). A day already judged (state.last_day >= day) changes nothing, so
    re-running a day is harmless."""
    feats = list(features)
    bases = baselines(days, day, feats, s.window_days, s.min_days, s.gap_days)
    today = next((d for d in days if d.day == day), None)
    out: dict[str, FeatureState] = {}
    changes: list[RoutineChange] = []
    for f in feats:
        state = states.get(f.name) or FeatureState(f.name)
        if state.last_day is not None and state.last_day >= day:
            out[f.name] = state
            continue
        if today is None:  # no summary of that day: nothing to judge, but it is done
            out[f.name] = replace(state, last_day=day)
            continue
        before = state
        new, side, z = judge_feature(state, f, today, bases[f.name], s)
        out[f.name] = new
        if side is not None:
            run = before.run_up if side == "up" else before.run_down
            n = min(run + 1, MAX_RECENT_DAYS)
            recent, _ = recent_mean(days, f, day, n)
            changes.append(RoutineChange(f.name, side, day, recent, bases[f.name].median, n,
                                         ewma_step(before.ewma(side), z, side, s), z))
    return DayResult(day, bases, out, changes)


def judge_days(days: Sequence[DayFeatures], judge: Iterable[date],
               states: Mapping[str, FeatureState], s: RoutineSettings = RoutineSettings(),
               features: Iterable[Feature] = PERSON_FEATURES) -> list[DayResult]:
    """Judge several days in order, each with the states the previous one left."""
    feats = list(features)
    current = dict(states)
    results = []
    for day in sorted(judge):
        result = judge_day(days, day, current, s, feats)
        current = result.states
        results.append(result)
    return results

"""The one definition of a resident's daily features (issue 15), and the day records built
from `resident_daily` that baselines, routine change and the outlier digest all read.

A feature is one number per resident and local day, computed by the daily rollup
(ingest/rollups.py, `_DAILY`) in event time. Each has a *worrying direction*: the way it moves
when something may be wrong with the person. Routine change watches that direction only, so
a resident who sleeps better never raises an alert.

Person features describe the resident; device features describe the sensors. They are kept
apart so that a failing sensor is not mistaken for a sick person: a day whose mat covered
less than `MIN_COVERAGE` of the day gives no person features (they would measure the
sensor's gaps, not the person).

Each feature also says when a day's value is final (`settles`): the night features (from the
evening before up to the rise) on the morning of the day - routine change judges them then,
so a worrying night reaches the duty officer the same morning -, the features of the whole
day (time in bed, the longest time away, the device's) at the local midnight that ends it.
A partial row of today shows neither before it is final (alerts/learning/store.py).

Population defaults (`default_median`, `default_mad`) stand in for a resident's own baseline
until 14 days count (alerts/learning/baselines.py). They are deliberately broad, for people
over 75 in residential or home care, and documented in docs/alerts.md ("Routine change"):
- bedtime 22:30 and rise 06:00 (the rule engine's own `usual_rise_default`), ± 30 min;
- 8.5 h in bed (older adults spend 8-9 h in bed; Ohayon et al. 2004 meta-analysis), ± 1 h;
- 1 night exit (nocturia: one void a night is the median after 70; ICS definition), ± 1;
- 10 min out of bed at night, ± 5 min;
- a longest empty-bed stretch of 14 h (16 h up a day, the rule engine's
  `usual_day_default_s`, less a nap or an early night), ± 2 h;
- resting (sleeping) heart rate 62/min ± 5; respiration 15/min ± 1.5 (middle of the
  NEWS2 normal band 12-20, the rule engine's `respiration` bands);
- 0.5 minutes with a breathing pause per hour in bed (well under the AHI 5/h threshold of
  sleep apnoea), ± 0.5;
- restlessness: the mat's movement index (0-100) 5 ± 3 while in bed at night.
`mad_floor` is the smallest spread a baseline may have (a very regular person must not alarm
on noise): a quarter of an hour for clock times, half an exit, one toilet visit (5 min) of
time out of bed at night, 45 min of time in bed, 1 beat per minute, ... - the smallest
change that means something for the person, not the sensor's resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from kernel.i18n import N_

Direction = Literal["up", "down", "both"]
Kind = Literal["person", "device"]
# When a day's value is final, and so when routine change judges it (alerts/learning/job.py):
# "morning" - a night feature (the evening before up to the rise), final once the data reaches
# the end of the morning window plus the 30 minutes a rise needs (12:30 local with the default
# rules: ingest/rollups.py DayRules, the row's `night_final_at`); "day" - a feature of the
# whole local day, final at the local midnight that ends it.
Settles = Literal["morning", "day"]
# How a value reads: a clock time (minutes after local noon or midnight), a duration in
# seconds, or a plain number with its unit.
Unit = Literal["clock_noon", "clock_midnight", "seconds", "count", "per_min", "per_hour",
               "index", "minutes", "percent"]

MIN_COVERAGE = 0.9  # share of the day's minutes with readings for person features to count


@dataclass(frozen=True, slots=True)
class Feature:
    """One daily feature: its name (the key everywhere), label, unit and worrying direction."""

    name: str
    label: str  # N_() marked; translate before showing
    unit: Unit
    direction: Direction
    kind: Kind
    settles: Settles
    default_median: float
    default_mad: float
    mad_floor: float
    description: str = field(default="", compare=False)

    @property
    def directions(self) -> tuple[Literal["up", "down"], ...]:
        """The directions routine change watches for this feature."""
        if self.direction == "both":
            return ("up", "down")
        return (self.direction,)


FEATURES: tuple[Feature, ...] = (
    # Night features (settle "morning"): from the evening before up to the rise, final by
    # 12:30 and judged then, the same morning.
    # Later and earlier bedtimes both matter (sundowning, withdrawal vs. exhaustion), but
    # a night-owl drift on its own is rarely a sign of illness: 'down' (going to bed earlier
    # and earlier: fatigue, low mood, infection) is the one watched.
    Feature("bedtime", N_("Bedtime"), "clock_noon", "down", "person", "morning",
            630.0, 30.0, 15.0,
            "minutes after local noon the evening before at which the main sleep starts"),
    Feature("rise_time", N_("Rise time"), "clock_midnight", "up", "person", "morning",
            360.0, 30.0, 15.0,
            "minutes after local midnight of the last getting-up of the morning"),
    # Both: more time in bed (illness, low mood) and much less (agitation, pain) are signs.
    # Floor 45 min: a nap taken or skipped moves a day's time in bed by that much.
    # Settles "day": an afternoon nap or an early night still changes it.
    Feature("time_in_bed_s", N_("Time in bed"), "seconds", "both", "person", "day",
            30600.0, 3600.0, 2700.0, "seconds in bed over the local calendar day"),
    Feature("night_exits", N_("Night exits"), "count", "up", "person", "morning",
            1.0, 1.0, 0.5, "times out of bed between 22:00 and 07:00"),
    # Floor 5 min, one visit to the toilet: a night with one more or one fewer trip than
    # usual is an ordinary night, not a change (with a 2-minute floor, two nights with one
    # trip each in a person who usually sleeps through were two robust spreads out).
    Feature("night_out_s", N_("Time out of bed at night"), "seconds", "up", "person",
            "morning", 600.0, 300.0, 300.0,
            "seconds out of bed between bedtime and rise time"),
    # With only a bed mat, time out of the home cannot be told from time in another room:
    # the longest empty-bed stretch of the day bounds it. Longer is the worrying side
    # (wandering, staying away); shorter is more rest and is left to time_in_bed_s.
    # Settles "day": the stretch may run on to midnight.
    Feature("away_s", N_("Longest time away from bed"), "seconds", "up", "person", "day",
            50400.0, 7200.0, 1800.0,
            "longest continuous time the bed was empty during the local day"),
    # Floor 1/min: the sleeping heart rate's 10th percentile is one of the steadiest numbers
    # a person has (night-to-night spread of about 1-2/min); with a 2/min floor (3/min
    # robust spread) a rise of 6-10/min - an infection, heart failure - took most of its
    # ramp to reach two spreads.
    Feature("resting_hr", N_("Resting heart rate"), "per_min", "up", "person", "morning",
            62.0, 5.0, 1.0, "10th percentile of the per-minute heart rate in bed at night"),
    Feature("median_rr", N_("Breathing rate at night"), "per_min", "up", "person", "morning",
            15.0, 1.5, 0.75, "median per-minute respiration rate in bed at night"),
    Feature("pauses_per_hour", N_("Breathing pauses"), "per_hour", "up", "person", "morning",
            0.5, 0.5, 0.5,
            "minutes with a breathing pause (a reading in bed with no breathing) per "
            "hour in bed at night, as the apnea rule sees them"),
    Feature("restlessness", N_("Restlessness in bed"), "index", "up", "person", "morning",
            5.0, 3.0, 1.0, "mean movement index (0-100) of the minutes in bed at night"),
    # Device health: never a sign about the person; each is about the whole local day.
    Feature("coverage", N_("Sensor coverage"), "percent", "down", "device", "day",
            100.0, 1.0, 1.0, "percent of the local day's minutes with readings from the mat"),
    Feature("offline_min", N_("Sensor offline"), "minutes", "up", "device", "day",
            0.0, 5.0, 5.0, "minutes of the local day without any reading from the mat"),
    Feature("min_battery", N_("Lowest battery"), "percent", "down", "device", "day",
            80.0, 10.0, 5.0, "lowest battery level reported by the resident's devices that day"),
)

BY_NAME: Mapping[str, Feature] = {f.name: f for f in FEATURES}
PERSON_FEATURES: tuple[Feature, ...] = tuple(f for f in FEATURES if f.kind == "person")
DEVICE_FEATURES: tuple[Feature, ...] = tuple(f for f in FEATURES if f.kind == "device")
# The person features routine change judges the same morning, and those it judges after
# the day's end.
MORNING_FEATURES: tuple[Feature, ...] = tuple(f for f in PERSON_FEATURES
                                              if f.settles == "morning")
WHOLE_DAY_FEATURES: tuple[Feature, ...] = tuple(f for f in PERSON_FEATURES
                                                if f.settles == "day")


def feature(name: str) -> Feature:
    """The feature called `name` (KeyError if there is none)."""
    return BY_NAME[name]


@dataclass(frozen=True, slots=True)
class DayFeatures:
    """One resident's features of one local day.

    `values` holds every feature of FEATURES that could be measured (a missing one is absent
    or None). `alerted`: an alert about the person was opened that day (such days are left
    out of baselines: a night in hospital is not the person's usual). `night_final_at`: when
    the day's night features became final, if its data reached that instant (the event time
    of a routine change found in them; None for rows kept before it was recorded)."""

    resident_id: int
    day: date
    values: Mapping[str, float | None]
    coverage: float  # 0..1, share of the day's minutes with readings
    alerted: bool = False
    night_final_at: datetime | None = None

    @property
    def well_covered(self) -> bool:
        """True when the mat covered enough of the day for person features to count."""
        return self.coverage >= MIN_COVERAGE

    def value(self, name: str) -> float | None:
        """The day's value of a feature, or None when it does not count: unmeasured, or a
        person feature of a poorly covered day."""
        v = self.values.get(name)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if BY_NAME[name].kind == "person" and not self.well_covered:
            return None
        return float(v)


def feature_matrix(days: Sequence[DayFeatures],
                   features: Iterable[Feature] = PERSON_FEATURES) -> npt.NDArray[np.float64]:
    """Days × features as floats, NaN where a value does not count (see DayFeatures.value):
    the input of the outlier model and of the baselines."""
    names = [f.name for f in features]
    out = np.full((len(days), len(names)), np.nan)
    for i, d in enumerate(days):
        for j, name in enumerate(names):
            v = d.value(name)
            if v is not None:
                out[i, j] = v
    return out


# --- words ---------------------------------------------------------------------------------

_UNIT_TEMPLATES: Mapping[str, str] = {
    "per_min": N_("{value}/min"),
    "per_hour": N_("{value}/h"),
    "minutes": N_("{value} min"),
    "percent": N_("{value} %"),
}
_MINUTES = N_("{value} min")
_HOURS = N_("{value} h")

Translate = Callable[[str], str]


def _identity(text: str) -> str:
    return text


def format_value(f: Feature, value: float, translate: Translate = _identity) -> str:
    """A feature's value as a care worker reads it: clock times as 24-hour HH:MM, durations
    in minutes (under 2 h) or hours, numbers with one decimal and their unit. Templates are
    translated before they are filled."""
    if f.unit in ("clock_noon", "clock_midnight"):
        minutes = value + (12 * 60 if f.unit == "clock_noon" else 0)
        m = round(minutes) % (24 * 60)
        return f"{m // 60:02d}:{m % 60:02d}"
    if f.unit == "seconds":
        if abs(value) < 2 * 3600:
            return translate(_MINUTES).format(value=f"{value / 60:.0f}")
        return translate(_HOURS).format(value=f"{value / 3600:.1f}")
    template = _UNIT_TEMPLATES.get(f.unit)
    number = f"{value:.1f}"
    return number if template is None else translate(template).format(value=number)


def clock_minutes(f: Feature, minutes: float) -> float:
    """Minutes after local midnight of a clock feature's value (bedtime counts from noon)."""
    return (minutes + (12 * 60 if f.unit == "clock_noon" else 0)) % (24 * 60)


@dataclass(frozen=True, slots=True)
class Axis:
    """How a chart's axis reads a feature's raw values: a clock (HH:MM of `offset` + value
    minutes after midnight; `template` None), or value / `scale` in `template` (already
    translated) - the same words format_value uses, so a chart and a sentence agree."""

    scale: float
    offset: float
    template: str | None


def axis_of(f: Feature, translate: Translate = _identity) -> Axis:
    """The axis of a feature (hours for durations: a day's seconds read badly)."""
    if f.unit in ("clock_noon", "clock_midnight"):
        return Axis(1.0, 12 * 60 if f.unit == "clock_noon" else 0, None)
    if f.unit == "seconds":
        return Axis(3600.0, 0.0, translate(_HOURS))
    template = _UNIT_TEMPLATES.get(f.unit)
    return Axis(1.0, 0.0, "{value}" if template is None else translate(template))

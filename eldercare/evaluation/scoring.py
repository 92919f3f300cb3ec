"""Scores alerts against labels, per alert type: recall within the allowed window, delay,
precision, false alerts per resident-day, duplicates, and how concentrated alerts are.

Each alert is matched, in this order, to: an owed label of its resident and type whose
window holds it (the first such alert *detects* the label, later ones are duplicates), an
excusal (not counted either way), a negative control (a false alert that also fails the
control), or nothing (a false alert). An owed label no alert matched is still detected
by a repeat in its window (a trigger that joined the alert already open for the resident
and type: the store keeps one alert per resident and type). Precision is detecting or
duplicate alerts over all non-excused alerts. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from eldercare.evaluation.labels import Excusal, Label
from eldercare.evaluation.rows import AlertRow

NOISY_SHARE = 0.10


@dataclass
class TypeScore:
    """One alert type's numbers."""

    alert_type: str
    owed: int = 0
    detected: int = 0
    delays_s: list[float] = field(default_factory=list)
    alerts: int = 0
    true_alerts: int = 0
    duplicates: int = 0
    false_alerts: int = 0
    excused: int = 0
    controls: int = 0
    controls_failed: int = 0
    spikes: int = 0
    spikes_failed: int = 0
    by_repeat: int = 0  # owed events detected by a repeat of an alert already open
    missed: list[Label] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        """Detected / owed (None: nothing owed)."""
        return self.detected / self.owed if self.owed else None

    @property
    def precision(self) -> float | None:
        """True (detecting or duplicate) alerts / non-excused alerts (None: no alerts)."""
        scored = self.true_alerts + self.false_alerts
        return self.true_alerts / scored if scored else None

    @property
    def delay_median_s(self) -> float | None:
        """Median detection delay from onset, seconds."""
        return percentile(self.delays_s, 0.5)

    @property
    def delay_p95_s(self) -> float | None:
        """95th percentile of the detection delay, seconds."""
        return percentile(self.delays_s, 0.95)


@dataclass
class Scores:
    """Every type's scores and the cohort-wide figures."""

    by_type: dict[str, TypeScore]
    resident_days: int
    residents: int
    alerts_by_resident: Counter[int]
    false_by_resident: Counter[int]

    @property
    def total(self) -> TypeScore:
        """All types together."""
        return self.total_of(self.by_type)

    def total_of(self, types: Iterable[str]) -> TypeScore:
        """These types together."""
        out = TypeScore("all")
        for s in (self.by_type[t] for t in types if t in self.by_type):
            for name in ("owed", "detected", "alerts", "true_alerts", "duplicates",
                         "false_alerts", "excused", "controls", "controls_failed", "spikes",
                         "spikes_failed", "by_repeat"):
                setattr(out, name, getattr(out, name) + getattr(s, name))
            out.delays_s += s.delays_s
        return out

    def false_per_resident_day(self, alert_type: str | None = None) -> float:
        """False alerts per resident-day (of one type, or all)."""
        s = self.total if alert_type is None else self.by_type.get(alert_type)
        if s is None or not self.resident_days:
            return 0.0
        return s.false_alerts / self.resident_days

    def noisy_share(self, counts: Counter[int] | None = None) -> float | None:
        """Share of alerts coming from the noisiest 10 % of residents (at least one)."""
        counts = self.alerts_by_resident if counts is None else counts
        total = sum(counts.values())
        if not total:
            return None
        top = max(1, math.ceil(NOISY_SHARE * self.residents))
        return sum(sorted(counts.values(), reverse=True)[:top]) / total


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (None for no values)."""
    if not values:
        return None
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def score(alerts: Iterable[AlertRow], labels: Sequence[Label], excusals: Sequence[Excusal],
          resident_days: int, residents: int, types: Iterable[str] = (),
          repeats: Iterable[AlertRow] = ()) -> Scores:
    """Match alerts to labels (see the module docstring). `repeats`: triggers that joined an
    alert already open for the resident and type; an owed event no alert matched is still
    detected by a repeat in its window (people see it as that alert's repeat)."""
    by_type: dict[str, TypeScore] = {t: TypeScore(t) for t in types}

    def ts(t: str) -> TypeScore:
        return by_type.setdefault(t, TypeScore(t))

    owed: dict[tuple[int, str], list[Label]] = defaultdict(list)
    controls: dict[tuple[int, str], list[Label]] = defaultdict(list)
    for lab in labels:
        s = ts(lab.alert_type)
        if lab.expected:
            s.owed += 1
            owed[(lab.resident_id, lab.alert_type)].append(lab)
        else:
            s.controls += 1
            s.spikes += lab.spike
            controls[(lab.resident_id, lab.alert_type)].append(lab)
    excuses: dict[int, list[Excusal]] = defaultdict(list)
    for e in excusals:
        excuses[e.resident_id].append(e)
    detected: dict[Label, float] = {}
    failed: set[Label] = set()
    by_resident: Counter[int] = Counter()
    false_by_resident: Counter[int] = Counter()
    for a in sorted(alerts, key=lambda a: (a.at, a.resident_id, a.type)):
        s = ts(a.type)
        s.alerts += 1
        by_resident[a.resident_id] += 1
        key = (a.resident_id, a.type)
        hit = next((lab for lab in owed.get(key, ()) if lab.matches(*key, a.at, a.detail)),
                   None)
        if hit is not None:
            s.true_alerts += 1
            if hit in detected:
                s.duplicates += 1
            else:
                detected[hit] = (a.at - hit.onset).total_seconds()
            continue
        if any(e.covers(*key, a.at, a.detail) for e in excuses.get(a.resident_id, ())):
            s.excused += 1
            continue
        s.false_alerts += 1
        false_by_resident[a.resident_id] += 1
        for lab in controls.get(key, ()):
            if lab.matches(*key, a.at, a.detail):
                failed.add(lab)
    by_key: dict[tuple[int, str], list[AlertRow]] = defaultdict(list)
    for r in repeats:
        by_key[(r.resident_id, r.type)].append(r)
    for key, labs in owed.items():
        for lab in labs:
            if lab in detected:
                continue
            hits = [r.at for r in by_key.get(key, ()) if lab.matches(*key, r.at, r.detail)]
            if hits:
                detected[lab] = (min(hits) - lab.onset).total_seconds()
                ts(lab.alert_type).by_repeat += 1
    for lab, delay in detected.items():
        ts(lab.alert_type).delays_s.append(delay)
        ts(lab.alert_type).detected += 1
    for lab in labels:
        if lab.expected and lab not in detected:
            ts(lab.alert_type).missed.append(lab)
    for lab in failed:
        ts(lab.alert_type).controls_failed += 1
        ts(lab.alert_type).spikes_failed += lab.spike
    return Scores(by_type, resident_days, residents, by_resident, false_by_resident)

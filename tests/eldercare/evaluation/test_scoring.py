"""Scoring on a hand-made truth and alert set: exact recall, precision, delay, duplicates."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from eldercare.evaluation.labels import Excusal, Label
from eldercare.evaluation.rows import AlertRow
from eldercare.evaluation.scoring import percentile, score
from eldercare.evaluation.targets import judge

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def owed(rid: int, typ: str, start: float, end: float) -> Label:
    return Label(rid, typ, typ, at(start), at(start), at(end))


def control(rid: int, typ: str, start: float, end: float, spike: bool = True) -> Label:
    return Label(rid, typ, "hr_spike", at(start), at(start), at(end), expected=False,
                 spike=spike)


LABELS = [
    owed(1, "sos", 0, 5),
    owed(2, "sos", 100, 105),
    owed(1, "heart_rate_high", 200, 240),
    owed(2, "heart_rate_high", 300, 340),  # missed: the alert comes after the window
    control(1, "heart_rate_high", 400, 405),
    control(2, "respiration_high", 500, 505),
]
EXCUSALS = [Excusal(1, ("not_up",), at(600), at(700), "near the deadline")]
ALERTS = [
    AlertRow(1, "sos", at(0)),  # delay 0
    AlertRow(2, "sos", at(101)),  # delay 60 s
    AlertRow(1, "heart_rate_high", at(202)),  # delay 120 s
    AlertRow(1, "heart_rate_high", at(230)),  # duplicate of the same event
    AlertRow(2, "heart_rate_high", at(345)),  # outside the window: false, event missed
    AlertRow(1, "heart_rate_high", at(401)),  # on a negative control: false, control failed
    AlertRow(1, "not_up", at(650)),  # excused
    AlertRow(3, "long_absence", at(800)),  # false
]


def test_exact_numbers_per_type() -> None:
    s = score(ALERTS, LABELS, EXCUSALS, resident_days=20, residents=10)
    sos = s.by_type["sos"]
    assert (sos.owed, sos.detected, sos.recall, sos.precision) == (2, 2, 1.0, 1.0)
    assert sos.delays_s == [0.0, 60.0]
    assert sos.delay_median_s == 30.0
    assert sos.delay_p95_s == pytest.approx(57.0)
    hr = s.by_type["heart_rate_high"]
    assert (hr.owed, hr.detected, hr.recall) == (2, 1, 0.5)
    assert (hr.alerts, hr.true_alerts, hr.duplicates, hr.false_alerts) == (4, 2, 1, 2)
    assert hr.precision == 0.5
    assert hr.delays_s == [120.0]
    assert (hr.controls, hr.controls_failed, hr.spikes, hr.spikes_failed) == (1, 1, 1, 1)
    assert [lab.resident_id for lab in hr.missed] == [2]
    assert s.by_type["respiration_high"].controls_failed == 0
    assert s.by_type["not_up"].excused == 1
    assert s.by_type["not_up"].false_alerts == 0


def test_cohort_figures() -> None:
    s = score(ALERTS, LABELS, EXCUSALS, resident_days=20, residents=10)
    total = s.total
    assert (total.owed, total.detected, total.false_alerts, total.excused) == (4, 3, 3, 1)
    assert s.false_per_resident_day() == 3 / 20
    assert s.false_per_resident_day("long_absence") == 1 / 20
    assert s.alerts_by_resident == Counter({1: 5, 2: 2, 3: 1})
    # the noisiest 10 % of 10 residents is one resident: 5 of the 8 alerts
    assert s.noisy_share() == 5 / 8
    assert s.noisy_share(s.false_by_resident) == 1 / 3


def test_targets_say_pass_or_miss_and_by_how_much() -> None:
    s = score(ALERTS, LABELS, EXCUSALS, resident_days=20, residents=10)
    judged = {j.name: j for j in judge(s, routine_wired=False)}
    assert judged["sos recall"].passed
    rules = judged["rule alerts: recall of sustained events"]
    assert rules.value == 0.5 and not rules.passed and rules.by == pytest.approx(-0.49)
    spikes = judged["alerts on sub-persistence spikes"]
    assert spikes.value == 1 and spikes.status == "miss"
    rate = judged["all alerts: false alerts per resident-day"]
    assert rate.value == pytest.approx(0.15) and rate.passed and rate.by == pytest.approx(0.05)
    assert judged["routine change: recall"].status == "not wired"
    assert judged["fall recall"].status == "no events"


def test_percentile_interpolates() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_a_repeat_of_an_open_alert_detects_an_event_no_alert_matched() -> None:
    labels = [owed(1, "device_offline", 0, 60), owed(1, "device_offline", 30, 90)]
    alerts = [AlertRow(1, "device_offline", at(0))]  # the first event opens the alert
    repeats = [AlertRow(1, "device_offline", at(45))]  # the second joins it
    s = score(alerts, labels, [], resident_days=1, residents=1, repeats=repeats)
    off = s.by_type["device_offline"]
    assert (off.owed, off.detected, off.by_repeat, off.alerts) == (2, 2, 1, 1)
    assert sorted(off.delays_s) == [0.0, 900.0]


def test_a_routine_change_is_detected_by_a_judgement_of_its_own_feature_only() -> None:
    day = 24 * 60.0
    label = Label(1, "routine_change", "drift_night_exits", at(0), at(0), at(20 * day),
                  detail="night_exits")
    excused = Excusal(1, ("routine_change",), at(0), at(20 * day), "consequence",
                      ("night_out_s",))
    alerts = [AlertRow(1, "routine_change", at(1 * day), detail="night_out_s"),  # excused
              AlertRow(1, "routine_change", at(2 * day), detail="resting_hr"),  # false
              AlertRow(2, "routine_change", at(2 * day), detail="night_exits")]  # false
    repeats = [AlertRow(1, "routine_change", at(3 * day), detail="night_exits")]
    s = score(alerts, [label], [excused], resident_days=60, residents=2,
              repeats=repeats).by_type["routine_change"]
    assert (s.detected, s.by_repeat, s.excused, s.false_alerts) == (1, 1, 1, 2)
    assert s.delays_s == [3 * 86400.0]
    rows = {j.name: j for j in judge(score(alerts, [label], [excused], 60, 2,
                                           repeats=repeats), True)}
    assert rows["routine change: false alerts per 30 resident-days"].value == 1.0
    assert rows["routine change: median delay from onset"].value == 3.0

"""Answer-time statistics on hand-made alert sets: exact percentiles, the targets and the edge
cases (late unanswered alerts, resident cancels, platform-closed alerts, the period's edges)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.answer_times import (
    METRIC_LABELS,
    AlertTimes,
    Metric,
    Period,
    Verdict,
    answer_times,
    figures,
    percentile,
)

T0 = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
PERIOD = Period(T0, T0 + timedelta(hours=12))
NOW = T0 + timedelta(hours=12)


def acked(n: int, ack_s: float, *, type_: str = "sos", severity: str = "critical",
          by: int | None = 7, resolve_s: float | None = None, at: timedelta | None = None,
          escalated: bool = False) -> AlertTimes:
    raised = T0 + (at if at is not None else timedelta(minutes=n))
    return AlertTimes(
        alert_id=n, type=type_, severity=severity,
        status="resolved" if resolve_s is not None else "acknowledged", raised_at=raised,
        acknowledged_at=raised + timedelta(seconds=ack_s), acknowledged_by=by,
        resolved_at=raised + timedelta(seconds=resolve_s) if resolve_s is not None else None,
        resolved_by=by if resolve_s is not None else None, escalated=escalated)


def unanswered(n: int, raised: datetime, type_: str = "sos") -> AlertTimes:
    return AlertTimes(alert_id=n, type=type_, severity="critical", status="open",
                      raised_at=raised)


def test_nearest_rank_percentiles_are_measured_values() -> None:
    values = [30.0, 10.0, 20.0, 40.0]
    assert percentile(values, 50) == 20.0  # at least half within 20 s
    assert percentile(values, 90) == 40.0  # ceil(0.9 * 4) = 4th
    assert percentile(list(range(1, 11)), 90) == 9  # ceil(0.9 * 10) = 9th
    assert percentile(list(range(1, 12)), 90) == 10  # ceil(9.9) = 10th
    assert percentile([5.0], 50) == 5.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="p must be"):
        percentile(values, 0)


def test_forty_alarms_one_late_meets_60_s_and_not_180_s() -> None:
    # 39 answered within 60 s, one at 200 s: 39/40 = 97.5 % (met), 39/40 < 99 % (not met).
    alerts = [acked(n, 10 + n) for n in range(39)] + [acked(39, 200)]
    numbers = answer_times(alerts, PERIOD, NOW)
    f = numbers.alarm_calls
    assert (f.opened, f.acknowledged, f.unanswered) == (40, 40, 0)
    assert (f.within_60.within, f.within_60.decided) == (39, 40)
    assert f.within_60.share == 0.975 and f.within_60.verdict is Verdict.MET
    assert (f.within_180.within, f.within_180.decided) == (39, 40)
    assert f.within_180.verdict is Verdict.NOT_MET
    assert f.ack_median_s == 29.0  # 20th of 10..48 and 200
    assert f.ack_p90_s == 45.0  # 36th
    assert numbers.all == f


def test_the_limit_itself_is_within() -> None:
    f = figures([acked(1, 60), acked(2, 180), acked(3, 60.5)], NOW)
    assert (f.within_60.within, f.within_60.decided) == (1, 3)
    assert (f.within_180.within, f.within_180.decided) == (3, 3)


def test_unanswered_alerts_are_late_once_older_than_the_limit() -> None:
    alerts = [acked(1, 30),
              unanswered(2, NOW - timedelta(seconds=30)),   # undecided for both limits
              unanswered(3, NOW - timedelta(seconds=100)),  # late for 60 s only
              unanswered(4, NOW - timedelta(seconds=500))]  # late for both
    f = answer_times(alerts, PERIOD, NOW).all
    assert (f.opened, f.acknowledged, f.unanswered) == (4, 1, 3)
    assert (f.within_60.within, f.within_60.decided) == (1, 3)
    assert (f.within_180.within, f.within_180.decided) == (1, 2)
    assert f.ack_median_s == 30.0 and f.ack_p90_s == 30.0  # only measured times


def test_resident_cancels_and_platform_closed_alerts_are_counted_apart() -> None:
    cancelled = AlertTimes(alert_id=5, type="sos", severity="critical", status="cancelled",
                           raised_at=T0 + timedelta(minutes=5))
    auto = AlertTimes(alert_id=6, type="device_offline", severity="warning", status="resolved",
                      raised_at=T0 + timedelta(minutes=6),
                      resolved_at=T0 + timedelta(minutes=9))
    numbers = answer_times([acked(1, 20, resolve_s=600), cancelled, auto], PERIOD, NOW)
    f = numbers.all
    assert (f.opened, f.acknowledged, f.cancelled, f.auto_closed, f.unanswered) == (3, 1, 1, 1, 0)
    assert (f.within_60.within, f.within_60.decided) == (1, 1)
    assert f.resolve_median_s == 600.0
    assert numbers.alarm_calls.opened == 2 and numbers.alarm_calls.cancelled == 1


def test_no_alarm_calls_is_no_data_not_a_failure() -> None:
    numbers = answer_times([acked(1, 500, type_="low_battery", severity="warning")],
                           PERIOD, NOW)
    assert numbers.alarm_calls.opened == 0
    assert numbers.alarm_calls.within_60.share is None
    assert numbers.alarm_calls.within_60.verdict is Verdict.NO_DATA
    assert numbers.all.within_60.verdict is Verdict.NOT_MET


def test_only_alerts_raised_in_the_period_count() -> None:
    alerts = [acked(1, 10, at=timedelta(0)),                      # at start: in
              acked(2, 10, at=timedelta(hours=12)),               # at end: out
              acked(3, 10, at=timedelta(seconds=-1))]             # before: out
    assert answer_times(alerts, PERIOD, NOW).all.opened == 1


def test_per_severity_loudest_first_and_per_worker() -> None:
    alerts = [acked(1, 30, by=3, escalated=True),
              acked(2, 90, by=3, type_="heart_rate_high", severity="urgent"),
              acked(3, 40, by=9, type_="low_battery", severity="warning", resolve_s=100),
              unanswered(4, NOW - timedelta(minutes=10))]
    numbers = answer_times(alerts, PERIOD, NOW)
    assert list(numbers.by_severity) == ["critical", "urgent", "warning"]
    assert numbers.by_severity["critical"].opened == 2
    assert numbers.by_severity["critical"].escalated == 1
    assert list(numbers.by_worker) == [3, 9]
    w3 = numbers.by_worker[3]
    assert (w3.acknowledged, w3.within_60.within, w3.within_180.within) == (2, 1, 2)
    assert (w3.ack_median_s, w3.ack_p90_s) == (30.0, 90.0)
    assert numbers.by_worker[9].resolve_median_s == 100.0
    assert numbers.all.escalated == 1


def test_an_acknowledgement_stamped_before_the_raise_counts_as_zero() -> None:
    early = AlertTimes(alert_id=1, type="sos", severity="critical", status="acknowledged",
                       raised_at=T0 + timedelta(minutes=1), acknowledged_at=T0, acknowledged_by=1)
    assert figures([early], NOW).ack_median_s == 0.0


def test_every_metric_has_a_label_and_a_value() -> None:
    f = figures([acked(1, 10)], NOW)
    assert set(METRIC_LABELS) == {m.value for m in Metric}
    assert f.value(Metric.WITHIN_60) == 1.0 and f.value(Metric.OPENED) == 1


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Period(datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        answer_times([], PERIOD, datetime(2026, 1, 1))

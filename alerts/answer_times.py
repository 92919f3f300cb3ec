"""Answer-time statistics (pure): how fast alerts were acknowledged and resolved in a period,
measured against the telecare answering standard (97.5 % of alarm calls acknowledged within
60 s, 99 % within 180 s). No I/O: the caller passes the alerts, the period and `now`, so the
wall screen, the daily/weekly report and the tests compute the same numbers.

The definitions (docs/dashboard.md, "Answer times"):
- An alert belongs to the period in which the platform *raised* it (`raised_at`, the wall
  clock when it was stored, alerts.created_at): the answering clock starts when a person could
  first see it. Time to acknowledge = acknowledged_at - raised_at (a resolve of an open alert
  acknowledges it at the same instant, alerts/lifecycle.py); time to resolve = resolved_at -
  raised_at. Both are wall-clock differences, so a replay of old device data is measured by
  when staff saw it, not by the device's clock.
- Not answerable, so left out of the shares and times but counted on their own: alerts the
  resident cancelled (status cancelled) and alerts the platform closed itself (resolved by
  nobody, never acknowledged: a device_offline caused by the platform's own restart).
  A trigger suppressed in the refractory period is no alert at all (a history line on the
  finished one), so it is not counted anywhere.
- An alert still unacknowledged at `now` is *late*, not missing: once it is older than a
  target's limit it counts as not within that limit; younger, it is still undecided for that
  limit and left out of that share's denominator (so each share has its own denominator).
  Its acknowledgement time is unknown, so it is not in the median/p90; `unanswered` counts it.
- Percentiles are nearest-rank: the p-th percentile is the smallest time within which at
  least p % of the acknowledged alerts were acknowledged (median = p50), always one of the
  measured times.
- The standard is for alarm calls people raise: SOS and fall alerts (ALARM_CALL_TYPES). The
  report shows every group (all alerts, alarm calls, each severity, each worker) against the
  same targets; the compliance verdict of a period is the alarm calls' one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from alerts.model import AlertStatus, AlertType, Severity
from kernel.i18n import N_

K = TypeVar("K", str, int)

ALARM_CALL_TYPES = frozenset({AlertType.SOS.value, AlertType.FALL.value})


@dataclass(frozen=True, slots=True)
class Target:
    """A line of the answering standard: `share` of alarm calls acknowledged within
    `within_s` seconds."""

    within_s: int
    share: float


TARGET_60 = Target(60, 0.975)
TARGET_180 = Target(180, 0.99)
TARGETS = (TARGET_60, TARGET_180)


class Metric(StrEnum):
    """The figures of a group, in the order the pages, CSV and XLSX show them."""

    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    WITHIN_60 = "within_60"
    WITHIN_180 = "within_180"
    ACK_MEDIAN = "ack_median_s"
    ACK_P90 = "ack_p90_s"
    RESOLVE_MEDIAN = "resolve_median_s"
    RESOLVE_P90 = "resolve_p90_s"
    UNANSWERED = "unanswered"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"
    AUTO_CLOSED = "auto_closed"


METRIC_LABELS: dict[str, str] = {
    Metric.OPENED: N_("Alerts opened"),
    Metric.ACKNOWLEDGED: N_("Acknowledged"),
    Metric.WITHIN_60: N_("Acknowledged within 60 s"),
    Metric.WITHIN_180: N_("Acknowledged within 180 s"),
    Metric.ACK_MEDIAN: N_("Median time to acknowledge"),
    Metric.ACK_P90: N_("90th percentile time to acknowledge"),
    Metric.RESOLVE_MEDIAN: N_("Median time to resolve"),
    Metric.RESOLVE_P90: N_("90th percentile time to resolve"),
    Metric.UNANSWERED: N_("Not acknowledged yet"),
    Metric.ESCALATED: N_("Escalated"),
    Metric.CANCELLED: N_("Cancelled by the resident"),
    Metric.AUTO_CLOSED: N_("Closed by the platform"),
}


class Verdict(StrEnum):
    """A share against its target."""

    MET = "met"
    NOT_MET = "not_met"
    NO_DATA = "no_data"


VERDICT_LABELS: dict[str, str] = {
    Verdict.MET: N_("Target met"),
    Verdict.NOT_MET: N_("Target not met"),
    Verdict.NO_DATA: N_("No alarms to measure"),
}

# The other words of the report and the wall-screen panel.
GROUP_LABELS: dict[str, str] = {
    "all": N_("All alerts"),
    "alarm_calls": N_("Alarm calls (SOS and falls)"),
}
TEXT_LABELS: dict[str, str] = {
    "panel_title": N_("The shift in numbers"),
    "report_title": N_("Answer-time compliance"),
    "target": N_("target {share}"),
    "open_now": N_("Open now"),
    "period": N_("Period"),
    "worker": N_("Worker"),
    "severity": N_("Severity"),
    "group": N_("Group"),
    "name": N_("Name"),
    "verdict_60": N_("60 s target"),
    "verdict_180": N_("180 s target"),
    "alarm_calls_note": N_("The standard applies to alarm calls (SOS and falls)"),
    "export_csv": N_("Export CSV"),
    "export_xlsx": N_("Export XLSX"),
    "print": N_("Print"),
    "no_alerts": N_("No alerts in this period"),
    "shift": N_("Current shift"),
    "last_12h": N_("Last 12 hours"),
    "day": N_("Day"),
    "week": N_("Week"),
}


@dataclass(frozen=True, slots=True)
class Period:
    """Half-open [start, end) of aware instants."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("period bounds must be timezone-aware")
        if not self.start < self.end:
            raise ValueError("period must end after it starts")

    def holds(self, instant: datetime) -> bool:
        """Whether `instant` falls in the period (start included, end excluded)."""
        return self.start <= instant < self.end


@dataclass(frozen=True, slots=True)
class AlertTimes:
    """What the statistics need of one alert (alerts table; `escalated`: at least one
    escalation step past the first notification was carried out)."""

    alert_id: int
    type: str
    severity: str
    status: str
    raised_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: int | None = None
    resolved_at: datetime | None = None
    resolved_by: int | None = None
    escalated: bool = False

    @property
    def answerable(self) -> bool:
        """False for alerts nobody had to answer: cancelled by the resident, or closed by
        the platform itself (resolved by nobody and never acknowledged)."""
        if self.status == AlertStatus.CANCELLED:
            return False
        return not (self.status == AlertStatus.RESOLVED and self.resolved_by is None
                    and self.acknowledged_at is None)

    def ack_s(self) -> float | None:
        """Seconds from raised to acknowledged (never negative), None if not acknowledged."""
        return None if self.acknowledged_at is None else _seconds(self.acknowledged_at
                                                                   - self.raised_at)

    def resolve_s(self) -> float | None:
        """Seconds from raised to resolved by a person, None otherwise."""
        if self.resolved_at is None or self.resolved_by is None:
            return None
        return _seconds(self.resolved_at - self.raised_at)


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (0 < p <= 100): the smallest value with at least p % of the
    values at or below it; None for no values."""
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Share:
    """How many of the decided alerts were acknowledged within a target's limit."""

    within_s: int
    target: float
    within: int
    decided: int

    @property
    def share(self) -> float | None:
        """within / decided, None when nothing is decided yet."""
        return self.within / self.decided if self.decided else None

    @property
    def verdict(self) -> Verdict:
        """Met when the share reaches the target; no data without decided alerts."""
        share = self.share
        if share is None:
            return Verdict.NO_DATA
        return Verdict.MET if share >= self.target else Verdict.NOT_MET


@dataclass(frozen=True, slots=True)
class Figures:
    """The numbers of one group of alerts."""

    opened: int
    acknowledged: int
    unanswered: int
    cancelled: int
    auto_closed: int
    escalated: int
    within_60: Share
    within_180: Share
    ack_median_s: float | None
    ack_p90_s: float | None
    resolve_median_s: float | None
    resolve_p90_s: float | None

    def value(self, metric: Metric) -> int | float | None:
        """One metric's value (a share as a fraction)."""
        if metric is Metric.WITHIN_60:
            return self.within_60.share
        if metric is Metric.WITHIN_180:
            return self.within_180.share
        value: int | float | None = getattr(self, metric.value)
        return value


def _share(target: Target, alerts: Sequence[AlertTimes], now: datetime) -> Share:
    within = decided = 0
    for alert in alerts:
        ack = alert.ack_s()
        if ack is not None:
            decided += 1
            within += ack <= target.within_s
        elif _seconds(now - alert.raised_at) > target.within_s:
            decided += 1  # late: older than the limit and still not acknowledged
    return Share(target.within_s, target.share, within, decided)


def figures(alerts: Iterable[AlertTimes], now: datetime) -> Figures:
    """The numbers of a group of alerts as known at `now`."""
    every = list(alerts)
    answerable = [a for a in every if a.answerable]
    acks = [s for a in answerable if (s := a.ack_s()) is not None]
    resolves = [s for a in answerable if (s := a.resolve_s()) is not None]
    return Figures(
        opened=len(every),
        acknowledged=len(acks),
        unanswered=len(answerable) - len(acks),
        cancelled=sum(a.status == AlertStatus.CANCELLED for a in every),
        auto_closed=sum(not a.answerable and a.status != AlertStatus.CANCELLED for a in every),
        escalated=sum(a.escalated for a in every),
        within_60=_share(TARGET_60, answerable, now),
        within_180=_share(TARGET_180, answerable, now),
        ack_median_s=percentile(acks, 50), ack_p90_s=percentile(acks, 90),
        resolve_median_s=percentile(resolves, 50), resolve_p90_s=percentile(resolves, 90))


@dataclass(frozen=True, slots=True)
class AnswerTimes:
    """A period's numbers: every alert, the alarm calls (the standard's verdict), each
    severity (loudest first, only those present) and each worker who acknowledged alerts
    (by user id, ascending)."""

    period: Period
    now: datetime
    all: Figures
    alarm_calls: Figures
    by_severity: dict[str, Figures] = field(default_factory=dict)
    by_worker: dict[int, Figures] = field(default_factory=dict)


def _grouped(alerts: Sequence[AlertTimes], key: Callable[[AlertTimes], K | None],
             order: Iterable[K], now: datetime) -> dict[K, Figures]:
    """Figures per key value, in `order`, for the values present."""
    present = {key(a) for a in alerts}
    return {k: figures([a for a in alerts if key(a) == k], now) for k in order if k in present}


def answer_times(alerts: Iterable[AlertTimes], period: Period, now: datetime) -> AnswerTimes:
    """The numbers of the alerts raised in `period`, as known at `now` (others are ignored).
    A worker's figures are those of the alerts they acknowledged (acknowledging on resolve
    included); late unanswered alerts belong to no worker, only to the groups."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    raised = [a for a in alerts if period.holds(a.raised_at)]
    severities = [s.value for s in sorted(Severity, key=lambda s: -s.rank)]
    workers = sorted({a.acknowledged_by for a in raised if a.acknowledged_by is not None})
    return AnswerTimes(
        period=period, now=now, all=figures(raised, now),
        alarm_calls=figures([a for a in raised if a.type in ALARM_CALL_TYPES], now),
        by_severity=_grouped(raised, lambda a: a.severity, severities, now),
        by_worker=_grouped(raised, lambda a: a.acknowledged_by, workers, now))

"""The alert store's decisions in memory: open an alert, attach a repeat, or suppress it.

Mirrors `alerts.store.store_trigger`/`store_clear`/`store_cancel` for one resident without a
database: an active alert of the same type takes the trigger as a repeat (counted, newer or
louder only), a type finished within its refractory period (event time) suppresses it,
otherwise a new alert opens. Nobody acknowledges alerts in a simulation, so `resolve_after_s`
models the care worker: an alert is resolved that long after it opened, but never before its
condition cleared (an SOS or a fall, which never clears, once that time has passed).
`resolve_after_s=inf`: nobody resolves (as in the end-to-end sample's database).
`dedup=False` is the ablation: every trigger opens an alert of its own.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.config import AlertSettings
from alerts.model import AlertCancel, AlertClear, AlertTrigger, AlertType, Decision, Severity
from alerts.store import CANCELLABLE_TYPES

RESOLVE_AFTER_S = 1800.0
_NEVER_CLEARS = frozenset({AlertType.SOS.value, AlertType.FALL.value})


@dataclass
class BookedAlert:
    """One alert as people would see it."""

    resident_id: int
    type: str
    severity: str
    opened_at: datetime  # event time of the trigger that opened it
    device_id: str | None
    last_seen: datetime
    count: int = 1
    repeats: list[datetime] = field(default_factory=list)  # later triggers that joined it
    cleared_at: datetime | None = None
    finished_at: datetime | None = None  # event-time equivalent of its resolution

    def resolvable_by(self, t: datetime, after: timedelta) -> datetime | None:
        """When the modelled care worker resolves it, if that is by `t`."""
        due = self.opened_at + after
        if self.type not in _NEVER_CLEARS:
            if self.cleared_at is None:
                return None
            due = max(due, self.cleared_at)
        return due if due <= t else None


@dataclass
class AlertBook:
    """One resident's alerts, stored as the pipeline's worker stores decisions."""

    settings: AlertSettings
    dedup: bool = True
    resolve_after_s: float = RESOLVE_AFTER_S
    alerts: list[BookedAlert] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    _active: dict[str, BookedAlert] = field(default_factory=dict)
    _finished: dict[str, datetime] = field(default_factory=dict)

    def apply(self, decisions: list[Decision]) -> None:
        """Store decisions in order."""
        for d in decisions:
            if isinstance(d, AlertTrigger):
                self.trigger(d)
            elif isinstance(d, AlertClear):
                self.clear(d)
            elif isinstance(d, AlertCancel):
                self.cancel(d)

    def trigger(self, trig: AlertTrigger) -> None:
        """Open, repeat or suppress (`store_trigger`)."""
        typ = trig.type.value
        if not self.dedup:
            self._open(trig)
            return
        self._resolve_due(typ, trig.at)
        active = self._active.get(typ)
        if active is not None:
            upgraded = Severity(trig.severity).rank > Severity(active.severity).rank
            newer = trig.at > active.last_seen
            if not newer and not upgraded:
                self.outcomes["ignored"] += 1
                return
            if newer:
                active.count += 1
                active.last_seen = trig.at
                active.repeats.append(trig.at)
                if active.cleared_at is not None and trig.at > active.cleared_at:
                    active.cleared_at = None  # the condition is back
            if upgraded:
                active.severity = trig.severity.value
            self.outcomes["repeated"] += 1
            return
        finished = self._finished.get(typ)
        refractory = self.settings.refractory_of(typ)
        if (refractory > 0 and finished is not None
                and finished > trig.at - timedelta(seconds=refractory)):
            self.outcomes["suppressed"] += 1
            return
        self._open(trig)

    def _open(self, trig: AlertTrigger) -> None:
        alert = BookedAlert(trig.resident_id, trig.type.value, trig.severity.value, trig.at,
                            trig.device_id, trig.at)
        self.alerts.append(alert)
        if self.dedup:
            self._active[alert.type] = alert
        self.outcomes["opened"] += 1

    def _resolve_due(self, typ: str, t: datetime) -> None:
        active = self._active.get(typ)
        if active is None or math.isinf(self.resolve_after_s):  # nobody resolves
            return
        at = active.resolvable_by(t, timedelta(seconds=self.resolve_after_s))
        if at is not None:
            active.finished_at = at
            del self._active[typ]
            self._finished[typ] = at

    def clear(self, clear: AlertClear) -> None:
        """The condition cleared (`store_clear`): noted on the active alert."""
        active = self._active.get(clear.type.value)
        if active is not None and active.cleared_at is None:
            active.cleared_at = max(clear.at, active.opened_at)

    def cancel(self, cancel: AlertCancel) -> None:
        """The resident cancelled within the window (`store_cancel`): the alert finishes."""
        for typ in CANCELLABLE_TYPES:
            active = self._active.get(typ)
            if active is None or active.device_id != cancel.device_id:
                continue
            elapsed = (cancel.at - active.opened_at).total_seconds()
            if 0 <= elapsed <= self.settings.sos_cancel_window_s:
                active.finished_at = cancel.at
                del self._active[typ]
                self._finished[typ] = cancel.at
                self.outcomes["cancelled"] += 1
            return

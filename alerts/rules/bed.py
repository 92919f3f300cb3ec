"""Bed rules on a bed sensor's readings: night bed exit without return, not up in the
morning, long absence, and (through `alerts.rules.vitals`) heart rate, respiration and apnea.

Occupancy comes from the telemetry (`occupied`). The deadlines (bed exit, long absence, not
up) run on the bed's own event-time clock; not up and long absence use its *online* clock,
which stops while the bed is silent or offline (`cap_until`), so a deadline that fell into such
a gap is decided on the first reading after it. See docs/alerts.md, "Detection rules".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.model import AlertType
from alerts.rules.base import RuleBase
from alerts.rules.params import INF, Params, iso, num
from alerts.rules.state import DeviceState, Emitter, ResidentState
from alerts.rules.vitals import Run, Vital, apnea_check, apnea_reading
from gateway.records import Record, TelemetryRecord

_BED_EXIT = AlertType.BED_EXIT_NO_RETURN
_ABSENCE = AlertType.LONG_ABSENCE
_NOT_UP = AlertType.NOT_UP


class BedState:
    """A bed sensor's telemetry state: vitals, apnea, occupancy and the deadlines of bed exit,
    long absence and not up, on the bed's own event-time clock."""

    __slots__ = ("absence_due", "apnea", "cap_until", "exit_due", "hr", "next_due",
                 "not_up_due", "occ_since", "occupied", "out_since", "rr", "session_occ",
                 "tel_t")

    def __init__(self) -> None:
        self.tel_t: float | None = None  # telemetry watermark
        self.cap_until = INF  # the online clock stops here while the bed is silent or offline
        self.occupied: bool | None = None
        self.occ_since = 0.0  # first reading of the current time in bed
        self.out_since: float | None = None  # first reading of the current absence
        self.session_occ = 0.0  # time in bed this session (absences < bed_exit_return_s)
        self.exit_due: float | None = None
        self.absence_due: float | None = None
        self.not_up_due: float | None = None
        self.next_due = INF
        self.hr = Vital()
        self.rr = Vital()
        self.apnea = Run()

    def reading(self, t: float, rec: TelemetryRecord, p: Params, em: Emitter,
                dev: DeviceState) -> None:
        """Apply one in-order reading at event time `t`."""
        if t >= self.next_due:  # after a gap the online clock ran only until the bed went quiet
            self.advance(t, min(t, self.cap_until), -INF, p, em, dev)
        occupied = rec.occupied
        if occupied:
            rr = rec.respiration_rate
            self.hr.feed(t, rec.heart_rate, p.hr, em, dev)
            self.rr.feed(t, rr or None, p.rr, em, dev)  # 0 is "no breathing": apnea's
            apnea_reading(self.apnea, t, (not rr) and rec.movement == 0, p, em, dev)
        else:
            self.hr.feed(t, None, p.hr, em, dev)
            self.rr.feed(t, None, p.rr, em, dev)
            apnea_reading(self.apnea, t, False, p, em, dev)
        if occupied is not self.occupied:
            self._occupancy(t, occupied, p, em, dev)
        if t >= self.next_due:  # deadlines that fell into a gap: known only now
            self.advance(t, t, t, p, em, dev)
        self.tel_t = t
        self.cap_until = t + dev.limit

    def alive(self, t: float, p: Params, em: Emitter, dev: DeviceState) -> None:
        """The device spoke at `t` (status or event) without a reading: its clock moves on,
        and the online clock too unless it had gone quiet (offline) before."""
        if self.tel_t is None or t <= self.tel_t:
            return
        if t <= self.cap_until:
            self.cap_until = max(self.cap_until, t + dev.limit)
        if t >= self.next_due:
            self.advance(t, min(t, self.cap_until), -INF, p, em, dev)

    def tick(self, now: float, p: Params, em: Emitter, dev: DeviceState) -> bool:
        """Evaluate time-based rules at the bed's clock `now` (no reading); True if any was due."""
        self.hr.check(now, p.hr, em, dev)
        self.rr.check(now, p.rr, em, dev)
        apnea_check(self.apnea, now, p, em, dev)
        if now < self.next_due:
            return False
        self.advance(now, min(now, self.cap_until), -INF, p, em, dev)
        return True

    def _occupancy(self, t: float, occupied: bool, p: Params, em: Emitter,
                   dev: DeviceState) -> None:
        previous, self.occupied = self.occupied, occupied
        if occupied:
            if self.out_since is None or t - self.out_since >= p.exit_return:
                self.session_occ = 0.0  # a new night (or the first reading)
            self.occ_since = t
            self.exit_due = self.absence_due = None
            em.clear(dev, _BED_EXIT, t)
            em.clear(dev, _ABSENCE, t)
        else:
            if previous:
                self.session_occ += t - self.occ_since
                if self.session_occ >= p.exit_min and p.is_night_exit(t):
                    self.exit_due = t + p.exit_return
            self.out_since = t
            self.absence_due = p.absence_deadline(t)
            em.clear(dev, _NOT_UP, t)
        if self.not_up_due is None:
            self.not_up_due = p.first_not_up_after(t)
        self._plan()

    def retime(self, p: Params) -> None:
        """New settings or usual rise: move the pending not-up check (same local day)."""
        if self.not_up_due is not None:
            self.not_up_due = p.not_up_deadline(p.local(self.not_up_due).date())
            self._plan()

    def _plan(self) -> None:
        self.next_due = min(INF if self.exit_due is None else self.exit_due,
                            INF if self.absence_due is None else self.absence_due,
                            INF if self.not_up_due is None else self.not_up_due)

    def advance(self, now: float, online: float, floor: float, p: Params, em: Emitter,
                dev: DeviceState) -> None:
        """Fire, in time order, the bed exit due by `now` and the not-up and long-absence
        deadlines due by `online` (the clock while the bed is heard), at `floor` at the earliest.
        """
        while True:
            exit_due = self.exit_due if self.exit_due is not None else INF
            absence = self.absence_due if self.absence_due is not None else INF
            not_up = self.not_up_due if self.not_up_due is not None else INF
            if exit_due > now:
                exit_due = INF
            if absence > online:
                absence = INF
            if not_up > online:
                not_up = INF
            due = min(exit_due, absence, not_up)
            if due == INF:
                return
            if due == exit_due:
                self.exit_due = None
                self._bed_exit(max(due, floor), p, em, dev)
            elif due == absence:
                self.absence_due = None
                self._long_absence(max(due, floor), p, em, dev)
            else:
                self._not_up(online, floor, p, em, dev)
            self._plan()
            em.changed = True

    def _bed_exit(self, at: float, p: Params, em: Emitter, dev: DeviceState) -> None:
        if _BED_EXIT not in dev.open and self.out_since is not None:
            em.trigger(dev, _BED_EXIT, p.severity[_BED_EXIT], at,
                       {"exit_at": iso(self.out_since), "away_s": at - self.out_since,
                        "in_bed_s": self.session_occ})

    def _long_absence(self, at: float, p: Params, em: Emitter, dev: DeviceState) -> None:
        if _ABSENCE not in dev.open and self.out_since is not None:
            em.trigger(dev, _ABSENCE, p.severity[_ABSENCE], at,
                       {"out_since": iso(self.out_since), "absent_s": at - self.out_since})

    def _not_up(self, online: float, floor: float, p: Params, em: Emitter,
                dev: DeviceState) -> None:
        due = self.not_up_due
        assert due is not None
        following = p.next_not_up(due)
        while following <= online:  # days the bed was not heard at their deadline: skipped
            due, following = following, p.next_not_up(following)
        self.not_up_due = following
        if self.occupied and self.occ_since <= due and _NOT_UP not in dev.open:
            em.trigger(dev, _NOT_UP, p.severity[_NOT_UP], max(due, floor),
                       {"deadline": iso(due), "in_bed_since": iso(self.occ_since),
                        "local_day": p.local(due).date().isoformat()})

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {"tel_t": self.tel_t,
                "cap_until": num(self.cap_until), "occupied": self.occupied,
                "occ_since": self.occ_since, "out_since": self.out_since,
                "session_occ": self.session_occ, "exit_due": self.exit_due,
                "absence_due": self.absence_due, "not_up_due": self.not_up_due,
                "hr": self.hr.to_json(), "rr": self.rr.to_json(),
                "apnea": self.apnea.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BedState:
        """Restore from `to_json` output."""
        bed = cls()
        bed.tel_t = d["tel_t"]
        bed.cap_until = INF if d["cap_until"] is None else float(d["cap_until"])
        bed.occupied = d["occupied"]
        bed.occ_since = float(d["occ_since"])
        bed.out_since = d["out_since"]
        bed.session_occ = float(d["session_occ"])
        bed.exit_due = d["exit_due"]
        bed.absence_due = d["absence_due"]
        bed.not_up_due = d["not_up_due"]
        bed.hr = Vital.from_json(d["hr"])
        bed.rr = Vital.from_json(d["rr"])
        bed.apnea = Run.from_json(d["apnea"])
        bed._plan()
        return bed


class BedRule(RuleBase):
    """A bed sensor's readings: occupancy and its deadlines, vital signs and apnea.

    One rule, not one per alert type, because they share each reading and its order (the
    deadlines that fell into a gap before it, then the vitals, then the occupancy change) and
    one telemetry watermark: a reading at or before it (late, duplicate) is ignored by all of
    them and counted in `ResidentState.stale`.
    """

    name = "bed"
    consumes = frozenset({TelemetryRecord})

    def on_context(self, rs: ResidentState, dev: DeviceState) -> None:
        """New settings or usual rise: the pending not-up check moves (same local day)."""
        if dev.bed is not None:
            dev.bed.retime(rs.p)

    def on_alive(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """A status or event moves the bed's clock on (a reading does so itself)."""
        if dev.bed is not None and type(rec) is not TelemetryRecord:
            dev.bed.alive(t, rs.p, rs.em, dev)

    def on_record(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """One reading, unless it is not newer than the bed's telemetry watermark."""
        assert type(rec) is TelemetryRecord
        bed = dev.bed
        if bed is None:
            bed = dev.bed = BedState()
        tel = bed.tel_t
        if tel is not None and t <= tel:
            rs.stale += 1
            return
        bed.reading(t, rec, rs.p, rs.em, dev)

    def on_tick(self, rs: ResidentState, dev: DeviceState, now: float | None,
                wall_now: datetime) -> None:
        """Runs and deadlines at the bed's effective time (its last reading holds HOLD_S)."""
        bed = dev.bed
        if now is not None and bed is not None and bed.tel_t is not None and now > bed.tel_t:
            bed.tick(now, rs.p, rs.em, dev)

    def dump(self, dev: DeviceState) -> dict[str, Any]:
        """The bed's state, under `bed` (null for a device that never sent a reading)."""
        return {"bed": None if dev.bed is None else dev.bed.to_json()}

    def load(self, dev: DeviceState, d: dict[str, Any]) -> None:
        """Restore from `dump` output."""
        dev.bed = None if d["bed"] is None else BedState.from_json(d["bed"])

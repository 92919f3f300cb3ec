"""Device rules besides offline: alarms (sos, fall) and their cancel, the call button's weekly
test, and low battery. See docs/alerts.md, "Detection rules".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.model import AlertCancel, AlertType, Severity
from alerts.rules.base import RuleBase
from alerts.rules.params import iso
from alerts.rules.state import RECENT, DeviceState, ResidentState
from gateway.records import EventRecord, Record, StatusRecord, TelemetryRecord
from gateway.schema import DeviceType, EventType

BATTERY_REPEAT_S = 86_400.0  # at most one low_battery trigger per device per 24 h

_BUTTON = DeviceType.CALL_BUTTON.value
_TEST = AlertType.TEST_OVERDUE
_BATTERY = AlertType.LOW_BATTERY
_ALARMS = {EventType.SOS: AlertType.SOS, EventType.FALL: AlertType.FALL}


class AlarmRule(RuleBase):
    """`sos` and `fall` at once on the event (no episode: every new press counts), and the
    resident's `sos_cancel`, in or out of the cancel window. A copy of one already handled
    (QoS 1 redelivery, the device's repeat until its receipt) is ignored."""

    name = "alarm"
    consumes = frozenset({EventRecord})

    def on_record(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """An alarm or a cancel; other events are not this rule's."""
        assert type(rec) is EventRecord
        alarm = _ALARMS.get(rec.type)
        if alarm is not None:
            if not _redelivered(dev, rec, t):
                _alarm(rs, dev, rec, t, alarm)
        elif rec.type is EventType.SOS_CANCEL and not _redelivered(dev, rec, t):
            _cancel(rs, dev, rec, t)

    def dump(self, dev: DeviceState) -> dict[str, Any]:
        """Recent alarm times (the cancel window) and recent (seq, ts) keys (redeliveries)."""
        return {"sos_times": list(dev.sos_times), "recent": [list(r) for r in dev.recent]}

    def load(self, dev: DeviceState, d: dict[str, Any]) -> None:
        """Restore from `dump` output."""
        dev.sos_times = [float(x) for x in d["sos_times"]]
        dev.recent = [(int(seq), t if isinstance(t, str) else float(t))
                      for seq, t in d["recent"]]


def _redelivered(dev: DeviceState, rec: EventRecord, t: float) -> bool:
    """True for a copy of an sos/fall/cancel already handled: a QoS 1 redelivery or the
    device's own repeat until its alarm receipt, both with the same seq and device `ts`.

    The device's `ts` is the key, not the row time: with a flagged clock the row time is
    the receive time, which differs between copies, and each copy would be a new press.
    An alarm rescued from a malformed message has no usable `ts`, so its key is its `ts`
    exactly as sent: the same on every repeat, unlike the receive time, and unlike `seq`
    alone it still tells a new press apart after the device's counter restarted at 0.
    """
    key: tuple[int, float | str] = (
        (rec.seq, f"rescued:{rec.rescued_ts}") if rec.rescued_ts is not None
        else (rec.seq, t if rec.device_time is None else rec.device_time.timestamp()))
    if key in dev.recent:
        return True
    dev.recent.append(key)
    del dev.recent[:-RECENT]
    return False


def _alarm(rs: ResidentState, dev: DeviceState, rec: EventRecord, t: float,
           alarm: AlertType) -> None:
    dev.sos_times.append(t)
    dev.sos_times.sort()
    del dev.sos_times[:-RECENT]
    rs.em.trigger(dev, alarm, rs.p.severity[alarm], rec.time,
                  {"detail": rec.detail} if rec.detail else None, rec.seq, episode=False)


def _cancel(rs: ResidentState, dev: DeviceState, rec: EventRecord, t: float) -> None:
    last = max((s for s in dev.sos_times if s <= t), default=None)
    in_window = last is not None and t - last <= rs.p.cancel_window
    em = rs.em
    em.out.append(AlertCancel(em.resident_id, em.site, dev.device_id, rec.time, in_window,
                              rec.seq))
    em.changed = True


class ButtonTestRule(RuleBase):
    """`test_overdue`: no `test` from a call button for `test_overdue_s` (event time) since
    its last recorded test (context `last_test_at`), else since the detector first saw it."""

    name = "test_overdue"
    consumes = frozenset({EventRecord})

    def on_context(self, rs: ResidentState, dev: DeviceState) -> None:
        """A later recorded test (from `device_events`) moves the anchor."""
        last = rs.ctx.last_test_at
        if last is None:
            return
        t = last.timestamp()
        if dev.kind == _BUTTON and (dev.test_anchor is None or t > dev.test_anchor):
            dev.test_anchor, dev.test_src = t, "last_test"

    def before(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """A device heard before it was known to be a button: anchored where it was heard."""
        if (type(rec) is not TelemetryRecord and dev.kind == _BUTTON
                and dev.test_anchor is None and dev.seen_t is not None):
            dev.test_anchor, dev.test_src = dev.seen_t, "first_seen"

    def on_alive(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """First sight anchors a button; a record past the deadline decides it (a replay)."""
        if dev.seen_t is None and dev.kind == _BUTTON and dev.test_anchor is None:
            dev.test_anchor, dev.test_src = t, "first_seen"
        anchor = dev.test_anchor
        if anchor is not None and t >= anchor + rs.p.test_overdue:
            _test_overdue(rs, dev)

    def on_record(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """A newer `test` moves the anchor and ends an overdue episode."""
        assert type(rec) is EventRecord
        if rec.type is not EventType.TEST:
            return
        if dev.test_anchor is not None and t <= dev.test_anchor:
            return
        dev.test_anchor, dev.test_src = t, "test"
        rs.em.clear(dev, _TEST, t)

    def on_tick(self, rs: ResidentState, dev: DeviceState, now: float | None,
                wall_now: datetime) -> None:
        """Overdue at the device's effective time."""
        anchor = dev.test_anchor
        if now is not None and anchor is not None and now >= anchor + rs.p.test_overdue:
            _test_overdue(rs, dev)

    def dump(self, dev: DeviceState) -> dict[str, Any]:
        """The anchor and where it came from (`last_test`, `first_seen`, `test`)."""
        return {"test_anchor": dev.test_anchor, "test_src": dev.test_src}

    def load(self, dev: DeviceState, d: dict[str, Any]) -> None:
        """Restore from `dump` output."""
        dev.test_anchor = d["test_anchor"]
        dev.test_src = str(d["test_src"])


def _test_overdue(rs: ResidentState, dev: DeviceState) -> None:
    anchor = dev.test_anchor
    if anchor is None or _TEST in dev.open:
        return
    p = rs.p
    rs.em.trigger(dev, _TEST, p.severity[_TEST], anchor + p.test_overdue,
                  {"anchor": dev.test_src, "anchor_at": iso(anchor),
                   "overdue_s": p.test_overdue})


class BatteryRule(RuleBase):
    """`low_battery`: a status level at or below `low_battery_percent` or a `low_battery`
    event; while open at most one trigger per device per 24 h; cleared by a level at or
    above the threshold plus the margin.

    Reports can arrive out of event-time order (a redelivery, a store-and-forward batch, or
    the device's events and statuses coming over two sessions at backlog speed). A low
    report older than a *charged* one is history and changes nothing; a low report older
    than a report between the two thresholds still stands - the battery never charged in
    between - and alerts at its own event time. A charged report older than the latest one
    clears nothing."""

    name = "low_battery"
    consumes = frozenset({EventRecord, StatusRecord})

    def on_record(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """A `low_battery` event, or the level of an online status."""
        if type(rec) is EventRecord:
            if rec.type is EventType.LOW_BATTERY:
                _battery(rs, dev, t, None, rec.seq, {"source": "event", "detail": rec.detail})
        elif type(rec) is StatusRecord and rec.online and rec.battery is not None:
            _battery_level(rs, dev, t, rec.battery, rec.seq)

    def dump(self, dev: DeviceState) -> dict[str, Any]:
        """The last trigger (daily reminder), the latest report and the latest charged one."""
        return {"batt_last": dev.batt_last, "batt_t": dev.batt_t, "batt_ok_t": dev.batt_ok_t}

    def load(self, dev: DeviceState, d: dict[str, Any]) -> None:
        """Restore from `dump` output."""
        dev.batt_last = d["batt_last"]
        dev.batt_t = d.get("batt_t")
        # Saved before batt_ok_t: the latest report settled everything older, as it did then.
        dev.batt_ok_t = d.get("batt_ok_t", dev.batt_t)
        if "batt_t" not in d and dev.batt_last is not None:
            # Saved before low_battery had episodes: its alert may still be open; let the
            # next charged reading clear it (clearing a resolved alert changes nothing).
            dev.open.setdefault(_BATTERY, Severity.INFO)


def _battery(rs: ResidentState, dev: DeviceState, t: float, level: int | None,
             seq: int | None, details: dict[str, Any]) -> None:
    """A low report (a `low_battery` event or a low level) at event time `t`."""
    if dev.batt_t is None or t > dev.batt_t:
        dev.batt_t = t
    if dev.batt_ok_t is not None and t <= dev.batt_ok_t:
        return  # a charged report after it settled the battery: history
    if dev.batt_last is not None and dev.batt_last - BATTERY_REPEAT_S < t < (
            dev.batt_last + BATTERY_REPEAT_S):
        return  # within a day of the last trigger, either side: the same episode
    dev.batt_last = t if dev.batt_last is None else max(dev.batt_last, t)
    rs.em.trigger(dev, _BATTERY, rs.p.severity[_BATTERY], t, {"battery": level, **details},
                  seq)


def _battery_level(rs: ResidentState, dev: DeviceState, t: float, level: int,
                   seq: int | None) -> None:
    """A reported level: low opens (or repeats) low_battery; a charged battery clears it,
    unless a newer report came first (a late charged reading clears nothing)."""
    p = rs.p
    if level <= p.low_battery:
        _battery(rs, dev, t, level, seq, {"source": "status"})
        return
    latest = dev.batt_t is None or t > dev.batt_t
    if latest:
        dev.batt_t = t
    if level >= p.low_battery_clear:
        dev.batt_ok_t = t if dev.batt_ok_t is None else max(dev.batt_ok_t, t)
        if latest and _BATTERY in dev.open:
            dev.batt_last = None  # a new low battery alerts at once
            rs.em.clear(dev, _BATTERY, t)

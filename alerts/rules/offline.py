"""`device_offline`: a device silent for `offline_heartbeats` heartbeats, its Last Will (or a
clean power-off), a registered device never heard, and the silences no tick saw (a replay, a
backlog). A stop and restart of the platform itself is not blamed on the devices: the restart
grace (`ResidentState.resume`) holds their judgement until they had time to speak again.

See docs/alerts.md, "Detection rules", "Tick" and "After the platform itself was down".
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

from alerts.model import PLATFORM_RESTART, AlertType
from alerts.rules.base import RuleBase
from alerts.rules.params import iso, to_dt
from alerts.rules.state import RECENT, DeviceState, ResidentState
from gateway.records import EventRecord, Record, StatusRecord, TelemetryRecord

_OFFLINE = AlertType.DEVICE_OFFLINE


class OfflineRule(RuleBase):
    """Device offline, on event time with the restart grace; also keeps each device's data
    session watermark and recent event times, the evidence a replay's silences are judged on."""

    name = "offline"
    consumes = frozenset({StatusRecord})

    def before(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """Events: remember their time (they split a data gap). Data records: a gap in the
        data session longer than the offline limit is an outage no tick saw."""
        typ = type(rec)
        if typ is EventRecord:
            dev.ev_t.append(t)
            del dev.ev_t[:-RECENT]
        elif typ is TelemetryRecord or (type(rec) is StatusRecord and rec.online):
            _data_gap(rs, dev, t, rec.received_at)

    def on_alive(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """A record newer than the device's watermark: it speaks. A device heard only through
        events so far reports a gap no tick saw; a pending Last Will is overtaken; an open
        offline episode ends (as caused by the platform's restart, when it began at the stop).
        """
        seen = dev.seen_t
        if (seen is not None and dev.data_t is None and t > seen + dev.limit
                and _OFFLINE not in dev.open and not _across_restart(rs, dev, rec.received_at)):
            _offline(rs, dev, seen + dev.limit, "silent")
        dev.will_recv = None
        if dev.open and _OFFLINE in dev.open:
            restart = _restarted(rs, dev) and _caused_by_stop(rs, dev)
            _clear_offline(rs, dev, t, PLATFORM_RESTART if restart else None)

    def on_record(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """`online: false` is a Last Will or a power-off; otherwise a changed heartbeat
        interval changes the offline limit."""
        assert type(rec) is StatusRecord
        if not rec.online:
            _last_will(rs, dev, rec)
        elif rec.heartbeat_s and rec.heartbeat_s != dev.hb:
            dev.hb = rec.heartbeat_s
            dev.set_limit(rs.p)

    def on_tick(self, rs: ResidentState, dev: DeviceState, now: float | None,
                wall_now: datetime) -> None:
        """A held Last Will once the restart grace is over; a device never heard since it was
        registered; a device silent for its offline limit (not during the grace)."""
        wall = wall_now.timestamp()
        grace = _in_grace(rs, dev, wall)
        if dev.will_recv is not None and not _in_restart_window(rs, dev, wall):
            _pending_will(rs, dev)
        seen, recv = dev.seen_t, dev.seen_recv
        if now is None or seen is None or recv is None:
            if seen is None and dev.will_recv is None:
                _never_heard(rs, dev, wall_now)
            return
        if now >= seen + dev.limit and _OFFLINE not in dev.open and not grace:
            _offline(rs, dev, _silent_from(rs, dev, seen, recv), "silent")

    def dump(self, dev: DeviceState) -> dict[str, Any]:
        """The open episode's start, a held Last Will, the data watermark, recent events."""
        return {"off_at": dev.off_at, "will_recv": dev.will_recv, "data_t": dev.data_t,
                "ev_t": list(dev.ev_t)}

    def load(self, dev: DeviceState, d: dict[str, Any]) -> None:
        """Restore from `dump` output (all optional: older states lack them)."""
        dev.off_at = d.get("off_at")
        dev.will_recv = d.get("will_recv")
        dev.data_t = d.get("data_t")
        dev.ev_t = [float(x) for x in d.get("ev_t", [])]


# --- the platform's own restart ------------------------------------------------------------


def _restarted(rs: ResidentState, dev: DeviceState) -> bool:
    """True while `dev` has not been heard since the platform restarted."""
    r, recv = rs.resume, dev.seen_recv
    return r is not None and recv is not None and recv.timestamp() < r[1]


def _in_grace(rs: ResidentState, dev: DeviceState, wall: float) -> bool:
    """Not heard since the restart, and the restart less than the offline limit ago."""
    r = rs.resume
    return r is not None and _restarted(rs, dev) and wall < r[1] + dev.limit


def _in_restart_window(rs: ResidentState, dev: DeviceState, wall: float) -> bool:
    """Within the grace period after a restart (whether or not `dev` was heard since)."""
    r = rs.resume
    return r is not None and wall < r[1] + dev.limit


def _from_the_downtime(rs: ResidentState, dev: DeviceState, at: float,
                       received_at: datetime) -> bool:
    """Sent (event time `at`) while the platform was down, and received in the grace."""
    r = rs.resume
    return (r is not None and _in_restart_window(rs, dev, received_at.timestamp())
            and r[0] - dev.limit <= at < r[1])


def _downtime_gap(rs: ResidentState, dev: DeviceState, prev: float, t: float) -> bool:
    """A gap that began while the platform was down (its last record before the gap was
    sent then, and delivered only after the restart) and ended within the grace: the
    platform's silence, as for a device heard until the stop (`_across_restart`)."""
    r = rs.resume
    return r is not None and r[0] - dev.limit <= prev < r[1] and t < r[1] + dev.limit


def _across_restart(rs: ResidentState, dev: DeviceState, received_at: datetime) -> bool:
    """A record received after the restart from a device heard until the platform
    stopped: the silence between them is the platform's, not the device's."""
    r, recv = rs.resume, dev.seen_recv
    return (r is not None and recv is not None and recv.timestamp() < r[1]
            <= received_at.timestamp() and recv.timestamp() >= r[0] - dev.limit)


def _caused_by_stop(rs: ResidentState, dev: DeviceState) -> bool:
    """The open offline episode began (wall clock) when the platform stopped: not long
    before it went down, and before it came back (one reported after the grace, or from
    a Last Will received after the restart, is the device's own)."""
    r, recv, seen, off = rs.resume, dev.seen_recv, dev.seen_t, dev.off_at
    if r is None or recv is None or seen is None or off is None:
        return False
    began = recv.timestamp() + (off - seen)
    return r[0] - dev.limit <= began < r[1]


def _silent_from(rs: ResidentState, dev: DeviceState, seen: float, recv: datetime) -> float:
    """When a silent device became offline: `offline_heartbeats` heartbeats after its last
    record, or, if it has not been heard since a platform restart, after the grace."""
    at = seen + dev.limit
    r = rs.resume
    if r is not None and _restarted(rs, dev):
        at = max(at, seen + (r[1] - recv.timestamp()) + dev.limit)
    return at


# --- silences, Last Wills and the alert itself ---------------------------------------------


def _data_gap(rs: ResidentState, dev: DeviceState, t: float, received_at: datetime) -> None:
    """A telemetry or status record (the data session): a silence no tick saw (replay,
    backlog) is a gap in this session's stream longer than the offline limit that no
    event of the device fell into.

    Events travel on their own MQTT session, so after a reconnect a device's event can
    arrive before its own older readings: the gap is judged on the data stream, where
    records of a device arrive in order, never between an event and readings still on
    their way.
    """
    prev = dev.data_t
    if prev is not None and t <= prev:
        return
    dev.data_t = t
    if (prev is None or t <= prev + dev.limit or _OFFLINE in dev.open
            or _across_restart(rs, dev, received_at) or _downtime_gap(rs, dev, prev, t)):
        return
    marks = [prev, *sorted(e for e in dev.ev_t if prev < e < t), t]
    for a, b in pairwise(marks):
        if b - a > dev.limit:
            _offline(rs, dev, a + dev.limit, "silent")
            _clear_offline(rs, dev, b)
            return


def _last_will(rs: ResidentState, dev: DeviceState, rec: StatusRecord) -> None:
    """`online: false` (Last Will or clean power-off): offline at its event time.

    A Last Will is stamped by the platform on arrival (wall clock). It is put on the
    device's event-time clock (its watermark plus the wall time since that record
    arrived), or on the clock of the resident's most recently heard device; with no
    clock at all it waits (`will_recv`) for the next tick or record. Stamping it with
    the wall clock in a replay or backlog would leave the alert ahead of every later
    event: its clear would come before its opening and later silences would be dropped.
    """
    recv = dev.seen_recv
    if recv is not None and rec.received_at < recv:
        return  # the device spoke after this was sent
    if _in_grace(rs, dev, rec.received_at.timestamp()):
        dev.will_recv = rec.received_at.timestamp()  # held from the stop: judged after
        return                                       # the grace, unless the device speaks
    own = rec.seq is not None and rec.device_time is None  # a power-off with its own ts
    at = rec.time.timestamp() if own else _event_time(rs, dev, rec.received_at)
    if own and dev.seen_t is not None and at is not None and at < dev.seen_t:
        return  # the device spoke after it (event time)
    if own and at is not None and _from_the_downtime(rs, dev, at, rec.received_at):
        # A power-off sent while the platform itself was down (the demo's homes stop
        # after the pipeline) and delivered after readings from the downtime: those do
        # not end the grace, so this is held like a Last Will from the stop.
        dev.will_recv = rec.received_at.timestamp()
        return
    if at is None:
        dev.will_recv = rec.received_at.timestamp()
        return
    _went_offline(rs, dev, at)


def _went_offline(rs: ResidentState, dev: DeviceState, at: float) -> None:
    if _OFFLINE not in dev.open:
        _offline(rs, dev, at, "last_will")
    bed = dev.bed
    if bed is not None and bed.tel_t is not None:
        bed.cap_until = min(bed.cap_until, max(bed.tel_t, at))


def _event_time(rs: ResidentState, dev: DeviceState, wall: datetime) -> float | None:
    """`wall` on the event-time clock of `dev`, else of the resident's device heard last."""
    if dev.seen_t is not None and dev.seen_recv is not None:
        return dev.seen_t + (wall - dev.seen_recv).total_seconds()
    heard = [d for d in rs.devices.values()
             if d.seen_t is not None and d.seen_recv is not None]
    if not heard:
        return None
    ref = max(heard, key=lambda d: d.seen_recv or wall)
    assert ref.seen_t is not None and ref.seen_recv is not None
    return ref.seen_t + (wall - ref.seen_recv).total_seconds()


def _pending_will(rs: ResidentState, dev: DeviceState) -> None:
    """A Last Will that waited (no event-time clock yet, or received during the restart
    grace) and was not overtaken by the device: on the device's or the resident's clock
    if one exists now, else on the wall clock (ticks assume the pipeline is caught up)."""
    will = dev.will_recv
    assert will is not None
    dev.will_recv = None
    at = _event_time(rs, dev, to_dt(will))
    _went_offline(rs, dev, will if at is None else at)


def _never_heard(rs: ResidentState, dev: DeviceState, wall_now: datetime) -> None:
    """A registered device silent since it was registered: offline after never_heard_s
    (wall time, as there is no device time yet)."""
    reg = dev.registered
    if reg is None or _OFFLINE in dev.open:
        return
    due = reg + rs.p.never_heard
    if wall_now.timestamp() >= due:
        _offline(rs, dev, due, "never_heard")


def _clear_offline(rs: ResidentState, dev: DeviceState, t: float,
                   reason: str | None = None) -> None:
    """The device speaks: its offline episode ends, never before it began (a record older
    than the alert, e.g. a backlog forwarded after the Last Will, ends it at its start)."""
    off = dev.off_at
    rs.em.clear(dev, _OFFLINE, t if off is None else max(t, off), reason)
    dev.off_at = None


def _offline(rs: ResidentState, dev: DeviceState, at: float, reason: str) -> None:
    seen = dev.seen_t
    details: dict[str, Any] = {
        "device_id": dev.device_id, "device_type": dev.kind or None, "reason": reason,
        "last_seen": None if seen is None else iso(seen),
        "silent_s": None if seen is None else at - seen}
    if seen is None and dev.registered is not None:
        details["registered_at"] = iso(dev.registered)
    details.update(_occupancy(rs))
    dev.off_at = at
    dev.will_recv = None
    rs.em.trigger(dev, _OFFLINE, rs.p.severity[_OFFLINE], at, details)


def _occupancy(rs: ResidentState) -> dict[str, Any]:
    """The last known bed occupancy, so staff can tell an offline mat from an empty bed."""
    for dev in rs.devices.values():
        bed = dev.bed
        if bed is not None and bed.occupied is not None:
            since = bed.occ_since if bed.occupied else bed.out_since
            return {"last_occupied": bed.occupied, "bed_device_id": dev.device_id,
                    "occupancy_since": None if since is None else iso(since)}
    return {"last_occupied": None}

"""The detector's decisions stored on the real database, when old data is replayed (or a
device forwards a backlog): every time an alert carries is event time, one clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from alerts.detector import ResidentDetector
from alerts.model import AlertCancel, AlertClear, AlertTrigger, Decision
from alerts.store import store_cancel, store_clear, store_trigger
from gateway.records import Record
from kernel import db
from tests.support.alerts import SETTINGS, alert, history
from tests.support.detector import BTN, Feed, at, clears, context, triggers
from tests.support.homes import add_home

REPLAY = timedelta(days=200)  # the replay runs this long after the events happened
W0 = at(0) + REPLAY


def sec(n: float) -> timedelta:
    """n seconds."""
    return timedelta(seconds=n)


def received(records: Iterable[Record], wall: datetime) -> list[Record]:
    """The records as a fast replay delivers them: all around wall time `wall`."""
    return [replace(r, received_at=wall) for r in records]


def store_all(url: str, resident_id: int, decisions: Iterable[Decision],
              now: datetime) -> list[int]:
    """Store decisions as the pipeline's worker does; ids of the alerts triggered."""
    ids: list[int] = []
    with db.connect(url, autocommit=True) as conn:
        for d in decisions:
            d = replace(d, resident_id=resident_id)
            if isinstance(d, AlertTrigger):
                result = store_trigger(conn, d, SETTINGS, now)
                if result is not None:
                    ids.append(result.alert_id)
            elif isinstance(d, AlertClear):
                store_clear(conn, d, now)
            elif isinstance(d, AlertCancel):
                store_cancel(conn, d, SETTINGS, now)
    return ids


def test_a_last_will_before_older_forwarded_data(clean_db: str) -> None:
    """The button's Last Will arrives (wall W0 + 1 s) before the data it had stored: the
    alert is on the replay's event-time clock, its clear is not before its opening, and a
    later silence of the same button is still reported."""
    home = add_home(clean_db)
    det = ResidentDetector(context())
    feed = Feed()
    out: list[Decision] = []
    out += det.on_records(received(feed.readings(at(0), 60, step=5.0), W0))
    out += det.on_records([feed.will(W0 + sec(1), device=BTN)])
    out += det.on_records(received([feed.status(at(30), device=BTN),
                                    feed.status(at(100), device=BTN),
                                    feed.status(at(160), device=BTN)], W0 + sec(2)))
    out += det.on_records(received(feed.readings(at(60), 940, step=5.0), W0 + sec(3)))
    out += det.on_records(received([feed.status(at(1000), device=BTN)], W0 + sec(4)))
    offline = triggers(out, "device_offline")
    assert [t.details["reason"] for t in offline if t.details] == ["last_will", "silent"]
    assert all(t.at < W0 for t in offline), "stamped with the wall clock"
    first, second = offline
    assert second.at == at(160 + 180)
    assert [c.at for c in clears(out, "device_offline")] == [first.at, at(1000)]

    ids = store_all(clean_db, home.resident_id, out, now=W0 + sec(5))
    row = alert(clean_db, ids[0])
    assert set(ids) == {ids[0]}
    assert row["opened_at"] == first.at and row["count"] == 2
    assert row["cleared_at"] is not None and row["cleared_at"] >= row["opened_at"]
    notes = [h[5] for h in history(clean_db, ids[0]) if h[0] == "repeated"]
    # The event time in the site's zone, 24 h, to the second (issue 14; this site is UTC).
    assert notes == [f"repeat 2 at {second.at:%Y-%m-%d %H:%M:%S}; condition back"]


def test_a_will_with_no_clock_waits_for_one() -> None:
    """Nothing heard from the resident yet: the will waits; the device's own (older) data
    overtakes it, and no alert is raised."""
    det = ResidentDetector(context())
    feed = Feed()
    assert det.on_records([feed.will(W0, device=BTN)]) == []
    assert det.on_records(received([feed.status(at(0), device=BTN)],
                                   W0 + sec(1))) == []
    assert det.tick(W0 + sec(2)) == []


def test_a_will_with_no_clock_is_reported_on_the_next_tick() -> None:
    det = ResidentDetector(context())
    feed = Feed()
    assert det.on_records([feed.will(W0, device=BTN)]) == []
    [trig] = triggers(det.tick(W0 + sec(1)))
    assert (trig.type, trig.at, trig.device_id) == ("device_offline", W0, BTN)


def test_an_event_ahead_of_its_own_readings_is_no_silence() -> None:
    """After a reconnect the bed's event (own MQTT session) comes in before the readings it
    stored: no device_offline, the same decisions as live (readings and event in order)."""
    from gateway.schema import EventType

    def scenario(backlog_first: bool) -> list[Decision]:
        det = ResidentDetector(context())
        feed = Feed()
        before = feed.readings(at(0), 60, step=5.0)  # readings in up to 1 min
        backlog = feed.readings(at(60), 13 * 60, step=5.0)  # the rest, still on its way
        entry = feed.event(at(12 * 60 + 30), EventType.BED_ENTRY, device="bed-1")
        out = det.on_records(before)
        if backlog_first:
            return out + det.on_records(backlog) + det.on_records([entry])
        return out + det.on_records([entry]) + det.on_records(backlog)

    live, replayed = scenario(True), scenario(False)
    assert triggers(replayed) == triggers(live) == []
    assert clears(replayed) == clears(live) == []


def test_a_real_gap_around_an_event_is_still_reported() -> None:
    """Readings stop at 0, an event at 120 s, readings again at 600 s: silent from 120 s."""
    from gateway.schema import EventType

    det = ResidentDetector(context())
    feed = Feed()
    out = det.on_records(feed.readings(at(-60), 60, step=5.0))
    out += det.on_records([feed.event(at(120), EventType.BED_EXIT, device="bed-1")])
    out += det.on_records(feed.readings(at(600), 60, step=5.0))
    assert [t.at for t in triggers(out, "device_offline")] == [at(120 + 180)]
    assert [c.at for c in clears(out, "device_offline")] == [at(600)]


def test_a_clean_power_off_is_at_its_own_time() -> None:
    """`online: false` with the device's ts and seq (not the broker's Last Will): replayed
    late, it is still at the time the device said."""
    det = ResidentDetector(context())
    feed = Feed()
    det.on_records(received([feed.status(at(0), device=BTN)], W0))
    off = replace(feed.status(at(30), device=BTN), online=False)
    [trig] = triggers(det.on_records(received([off], W0 + sec(60))))
    assert (trig.at, trig.details and trig.details["reason"]) == (at(30), "last_will")

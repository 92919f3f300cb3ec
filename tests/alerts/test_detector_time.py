"""The pure detector on event time: replay equivalence (one go vs. interleaved ticks),
snapshot/restore mid-episode, late and out-of-order records, and the pipeline-wide Detector."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from alerts.config import AlertSettings
from alerts.detector import Detector, DeviceContext, ResidentContext, ResidentDetector
from alerts.model import AlertCancel, AlertClear, Decision
from gateway.records import Record
from gateway.schema import DeviceType, EventType
from tests.support.detector import (
    BED,
    BTN,
    RID,
    SITE,
    Feed,
    at,
    clears,
    comparable,
    context,
    local,
    minutes,
    run,
    triggers,
    vitals,
)


@pytest.fixture
def feed() -> Feed:
    """A fresh record builder."""
    return Feed()


def restored(det: ResidentDetector, ctx: ResidentContext | None = None) -> ResidentDetector:
    """A new detector resumed from a JSON round trip of `det`'s snapshot."""
    state = json.loads(json.dumps(det.snapshot(), allow_nan=False))
    return ResidentDetector(ctx or det.context, state)


# --- replay equivalence --------------------------------------------------------------------


def _night(feed: Feed) -> list[Record]:
    """A night in Shanghai with a bit of everything, received in time order. The bed goes
    quiet (no store-and-forward) twice: as a heart-rate run comes due and during a bed exit,
    and the call button is quiet for an hour."""
    records: list[Record] = []
    t, end = local(21, 0), local(8, 0, day=2)
    hr_from, apnea_at = local(2, 0, day=2), local(3, 0, day=2)
    exit_at, back_at = local(4, 0, day=2), local(4, 40, day=2)
    bed_quiet = [(hr_from + timedelta(seconds=115), local(2, 10, day=2)),
                 (local(4, 5, day=2), local(4, 45, day=2))]
    button_quiet = (local(5, 30, day=2), local(6, 30, day=2))
    while t < end:
        if not any(a <= t < b for a, b in bed_quiet):
            occupied = local(22, 0) <= t < local(7, 30, day=2) and not exit_at <= t < back_at
            hr = 135.0 if hr_from <= t < hr_from + minutes(5) else 62.0
            apnea = apnea_at <= t < apnea_at + timedelta(seconds=30)
            records.append(feed.reading(t, occupied, hr=hr, rr=0.0 if apnea else 14.0,
                                        mv=0 if apnea else 3))
            if t.second == 0:
                records.append(feed.status(t + timedelta(seconds=1)))
        if t.second == 0 and not button_quiet[0] <= t < button_quiet[1]:
            records.append(feed.status(t + timedelta(seconds=2), device=BTN))
        t += timedelta(seconds=5)
    sos = local(5, 0, day=2)
    records += [feed.event(sos, EventType.SOS), feed.event(sos + timedelta(seconds=9),
                                                           EventType.SOS_CANCEL)]
    return sorted(records, key=lambda r: r.received_at)


def _interleaved(det: ResidentDetector, records: Sequence[Record], every_s: float
                 ) -> tuple[list[Decision], list[Decision]]:
    """Feed records in windows of received time with a tick at each window's end."""
    out: list[Decision] = []
    from_ticks: list[Decision] = []
    window = timedelta(seconds=every_s)
    wall = records[0].received_at
    i = 0
    while i < len(records):
        wall += window
        j = i
        while j < len(records) and records[j].received_at < wall:
            j += 1
        out += det.on_records(records[i:j])
        ticked = det.tick(wall)
        out += ticked
        from_ticks += ticked
        i = j
    return out, from_ticks


def test_replay_in_one_go_equals_living_through_it(feed: Feed) -> None:
    records = _night(feed)
    ctx = context(tz="Asia/Shanghai")
    at_once = ResidentDetector(ctx).on_records(records)
    live, from_ticks = _interleaved(ResidentDetector(ctx), records, every_s=7.0)
    assert comparable(live) == comparable(at_once)
    kinds = sorted({(type(d).__name__, getattr(d, "type", "")) for d in at_once})
    assert kinds == [("AlertCancel", ""), ("AlertClear", "apnea"),
                     ("AlertClear", "bed_exit_no_return"), ("AlertClear", "device_offline"),
                     ("AlertClear", "heart_rate_high"), ("AlertTrigger", "apnea"),
                     ("AlertTrigger", "bed_exit_no_return"), ("AlertTrigger", "device_offline"),
                     ("AlertTrigger", "heart_rate_high"), ("AlertTrigger", "sos")]
    assert {d.type for d in triggers(from_ticks)} == {"device_offline", "heart_rate_high",
                                                      "bed_exit_no_return"}
    hr = triggers(at_once, "heart_rate_high")
    assert [t.at for t in hr] == [local(2, 2, day=2)]
    assert [t.at for t in triggers(at_once, "bed_exit_no_return")] == [local(4, 20, day=2)]
    assert len(triggers(at_once, "device_offline")) == 3
    assert [c.in_window for c in at_once if isinstance(c, AlertCancel)] == [True]


def test_replay_in_batches_equals_one_go(feed: Feed) -> None:
    records = _night(feed)
    ctx = context(tz="Asia/Shanghai")
    det = ResidentDetector(ctx)
    batched = run(det, *[records[i:i + 500] for i in range(0, len(records), 500)])
    assert comparable(batched) == comparable(ResidentDetector(ctx).on_records(records))


# --- snapshot and restore ------------------------------------------------------------------


def test_restore_mid_episode_no_duplicate_and_still_clears(feed: Feed) -> None:
    det = ResidentDetector(context())
    assert len(triggers(run(det, vitals(feed, 0, 150, hr=135)))) == 1
    det = restored(det)
    assert run(det, vitals(feed, 150, 120, hr=135)) == []
    out = run(det, vitals(feed, 270, 200, hr=70))
    assert out == []
    det = restored(det)  # mid clear timer
    assert run(det, vitals(feed, 470, 120, hr=70)) == [
        AlertClear(RID, SITE, "heart_rate_high", at(570))]


def test_restore_mid_run_fires_on_time_once(feed: Feed) -> None:
    det = ResidentDetector(context())
    assert run(det, vitals(feed, 0, 60, hr=135)) == []
    det = restored(det)
    out = run(det, vitals(feed, 60, 200, hr=135))
    assert [(t.at, t.severity) for t in triggers(out)] == [(at(120), "urgent")]


def test_restore_keeps_deadlines_and_open_offline(feed: Feed) -> None:
    ctx = context(tz="Asia/Shanghai")
    det = ResidentDetector(ctx)
    exit_at = local(2, 0, day=2)
    run(det, feed.readings(local(1, 0, day=2), 3600, step=5.0),
        feed.readings(exit_at, 60, step=5.0, occupied=False))
    assert len(triggers(det.tick(exit_at + minutes(5)), "device_offline")) == 1
    det = restored(det)
    out = det.tick(exit_at + minutes(21))
    assert [t.type for t in triggers(out)] == ["bed_exit_no_return"]
    out = run(restored(det), feed.readings(exit_at + minutes(30), 10, step=5.0))
    assert sorted(c.type for c in clears(out)) == ["bed_exit_no_return", "device_offline"]


def test_unreadable_state_starts_afresh(caplog: pytest.LogCaptureFixture) -> None:
    det = ResidentDetector(context(), {"v": 1, "devices": {BED: {"kind": "bed_sensor"}}})
    assert det.snapshot()["devices"][BED]["seen_t"] is None
    assert "unreadable" in caplog.text
    det = ResidentDetector(context(), {"v": 99})
    assert det.watermark is None


# --- late and out-of-order records ---------------------------------------------------------


def test_stale_reading_is_ignored(feed: Feed) -> None:
    det = ResidentDetector(context())
    early = feed.reading(at(50), occupied=False)
    run(det, vitals(feed, 0, 50, hr=135), vitals(feed, 51, 50, hr=135))
    assert run(det, [early]) == []
    assert det.stale == 1
    out = run(det, vitals(feed, 101, 30, hr=135))
    assert [t.at for t in triggers(out)] == [at(120)]


def test_duplicate_reading_is_ignored(feed: Feed) -> None:
    det = ResidentDetector(context())
    readings = vitals(feed, 0, 60, rr=0.0, mv=0)
    out = run(det, readings[:25], readings[:25], readings[25:])
    assert [t.type for t in triggers(out)] == ["apnea"]
    assert det.stale == 25


def test_stored_readings_after_reconnect_are_not_stale(feed: Feed) -> None:
    """Store-and-forward: the reconnect status (now) comes before the stored readings."""
    det = ResidentDetector(context())
    run(det, vitals(feed, 0, 60))
    out = run(det, [feed.will(at(100))])
    assert [t.type for t in triggers(out)] == ["device_offline"]
    stored = vitals(feed, 60, 600, hr=135)
    out = run(det, [feed.status(at(700))], stored)
    assert [c.type for c in clears(out)] == ["device_offline"]
    assert [(t.type, t.at) for t in triggers(out)] == [("heart_rate_high", at(180))]
    assert det.stale == 0


def test_old_retained_status_does_not_clear_offline(feed: Feed) -> None:
    det = ResidentDetector(context())
    retained = feed.status(at(0), device=BTN)
    run(det, [retained, feed.will(at(40), device=BTN)])
    assert run(det, [retained]) == []


# --- the pipeline-wide detector ------------------------------------------------------------


class Contexts:
    """context_of for two residents; counts lookups."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.settings = AlertSettings()

    def __call__(self, resident_id: int) -> ResidentContext | None:
        self.calls.append(resident_id)
        if resident_id not in (1, 2):
            return None
        devices = (DeviceContext(f"bed-{resident_id}", DeviceType.BED_SENSOR, 60),)
        return ResidentContext(resident_id, SITE, "UTC", self.settings, devices)


def _reading(feed: Feed, resident: int, seconds: float, **kw: Any) -> Record:
    rec = feed.reading(at(seconds), device=f"bed-{resident}", **kw)
    return rec.__class__(**{**{f: getattr(rec, f) for f in rec.__slots__},
                            "resident_id": resident})


def test_detector_routes_records_and_skips_unknown_residents(feed: Feed) -> None:
    contexts = Contexts()
    detector = Detector(contexts)
    records = [_reading(feed, r, s, hr=135) for s in range(150) for r in (1, 2, 3)]
    out = detector.process(records)
    assert sorted((t.resident_id, t.type) for t in triggers(out)) == [
        (1, "heart_rate_high"), (2, "heart_rate_high")]
    assert sorted(contexts.calls) == [1, 2, 3]


def test_snapshots_only_changed_residents_and_restore(feed: Feed) -> None:
    contexts = Contexts()
    detector = Detector(contexts)
    detector.process([_reading(feed, 1, 0), _reading(feed, 2, 0)])
    snaps = detector.snapshots()
    assert sorted(snaps) == [1, 2]
    assert detector.snapshots() == {}
    detector.process([_reading(feed, 1, 1)])
    assert list(detector.snapshots()) == [1]
    assert detector.tick(at(30)) == []
    assert detector.snapshots() == {}
    assert [t.resident_id for t in detector.tick(at(300))] == [1, 2]  # both beds silent
    assert sorted(detector.snapshots()) == [1, 2]
    again = Detector(contexts, json.loads(json.dumps(snaps)))
    assert [t.resident_id for t in again.tick(at(300))] == [1, 2]


def test_refresh_applies_new_settings(feed: Feed) -> None:
    contexts = Contexts()
    detector = Detector(contexts)
    detector.process([_reading(feed, 1, 0)])
    contexts.settings = AlertSettings(apnea_s=60)
    detector.refresh(1)
    out = detector.process([_reading(feed, 1, s, rr=0.0, mv=0) for s in range(1, 50)])
    assert out == []
    resident = detector.resident(1)
    assert resident is not None
    assert resident.context.settings.apnea_s == 60


def test_removed_device_is_forgotten(feed: Feed) -> None:
    det = ResidentDetector(context())
    run(det, [feed.status(at(0), device=BTN)])
    det.update_context(context(devices=(DeviceContext(BED, DeviceType.BED_SENSOR, 60),)))
    assert det.tick(at(3600)) == []
    assert BTN not in det.snapshot()["devices"]


def test_what_a_removed_device_left_open_is_cleared(feed: Feed) -> None:
    """A removed device can never report that its condition ended: the next tick clears it,
    unless another device of the resident still has the same alert open."""
    det = ResidentDetector(context())
    run(det, [feed.status(at(0)), feed.status(at(40), device=BTN, battery=5),
              feed.will(at(50)), feed.will(at(51), device=BTN)])
    det.update_context(context(devices=(DeviceContext(BTN, DeviceType.CALL_BUTTON, 60),)))
    assert det.tick(at(100)) == []  # the button is still offline: nothing clears
    det.update_context(context(devices=()))
    assert clears(det.tick(at(200))) == [AlertClear(RID, SITE, "device_offline", at(200)),
                                         AlertClear(RID, SITE, "low_battery", at(200))]
    assert det.tick(at(300)) == []


def test_watermark_is_the_latest_event_time(feed: Feed) -> None:
    det = ResidentDetector(context())
    assert det.watermark is None
    run(det, [feed.status(at(10)), feed.status(at(5), device=BTN)])
    assert det.watermark == at(10)
    assert isinstance(det.watermark, datetime)

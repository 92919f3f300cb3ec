"""The pure detector: sos/fall/cancel, vital signs (persistence, hysteresis), apnea, device
offline, low battery and test overdue. No broker, no database."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.config import AlertSettings
from alerts.detector import DeviceContext, ResidentDetector
from alerts.model import AlertCancel, AlertClear
from gateway.schema import DeviceType, EventType
from tests.support.detector import (
    BED,
    BTN,
    LAG,
    RID,
    SITE,
    Feed,
    at,
    clears,
    context,
    run,
    triggers,
    vitals,
)


@pytest.fixture
def feed() -> Feed:
    """A fresh record builder."""
    return Feed()


@pytest.fixture
def det() -> ResidentDetector:
    """A resident in UTC with default settings."""
    return ResidentDetector(context())


# --- sos, fall, cancel ---------------------------------------------------------------------


def test_sos_and_fall_trigger_at_once_with_seq(det: ResidentDetector, feed: Feed) -> None:
    sos = feed.event(at(0), EventType.SOS, detail="pressed")
    fall = feed.event(at(5), EventType.FALL)
    out = run(det, [sos, fall])
    assert [(t.type, t.severity, t.at, t.source_seq, t.device_id, t.site)
            for t in triggers(out)] == [
        ("sos", "critical", at(0), sos.seq, BTN, SITE),
        ("fall", "critical", at(5), fall.seq, BTN, SITE)]
    assert triggers(out)[0].details == {"detail": "pressed"}
    assert triggers(out)[1].details is None


def test_sos_redelivery_is_one_trigger_but_every_press_counts(det: ResidentDetector,
                                                              feed: Feed) -> None:
    sos = feed.event(at(0), EventType.SOS)
    again = feed.event(at(60), EventType.SOS)
    assert len(run(det, [sos, sos, again, sos])) == 2


def test_repeats_of_an_alarm_from_a_flagged_clock_are_one_press(det: ResidentDetector,
                                                                  feed: Feed) -> None:
    # A device repeating its alarm until the receipt (docs/protocol.md, alarm_received) with
    # an implausible clock: every copy gets its own receive time as row time, the same ts.
    bad_clock = datetime(2001, 1, 1, tzinfo=UTC)
    first = replace(feed.event(at(0), EventType.SOS), device_time=bad_clock)
    repeats = [replace(first, time=at(s), received_at=at(s)) for s in (2, 6, 14)]
    assert len(triggers(run(det, [first], *[[r] for r in repeats]), "sos")) == 1


def test_stale_sos_still_triggers(det: ResidentDetector, feed: Feed) -> None:
    late = feed.event(at(0), EventType.SOS)
    run(det, [feed.status(at(600), device=BTN)])
    assert len(triggers(run(det, [late]), "sos")) == 1


@pytest.mark.parametrize(("after_s", "in_window"), [(0, True), (12, True), (30, True),
                                                    (31, False), (300, False)])
def test_cancel_window(det: ResidentDetector, feed: Feed, after_s: int, in_window: bool) -> None:
    out = run(det, [feed.event(at(0), EventType.SOS),
                    cancel := feed.event(at(after_s), EventType.SOS_CANCEL)])
    assert out[-1] == AlertCancel(RID, SITE, BTN, at(after_s), in_window, cancel.seq)


def test_cancel_after_fall_and_without_any_alarm(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, [feed.event(at(0), EventType.SOS_CANCEL),
                    feed.event(at(10), EventType.FALL),
                    feed.event(at(20), EventType.SOS_CANCEL)])
    cancels = [d for d in out if isinstance(d, AlertCancel)]
    assert [c.in_window for c in cancels] == [False, True]


def test_cancel_uses_the_same_devices_alarm(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, [feed.event(at(0), EventType.SOS, device="btn-2"),
                    feed.event(at(5), EventType.SOS_CANCEL)])
    assert out[-1] == AlertCancel(RID, SITE, BTN, at(5), False, feed.seq[BTN])


# --- vital signs ---------------------------------------------------------------------------


def test_heart_rate_urgent_after_two_minutes(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 300), vitals(feed, 300, 180, hr=135),
              vitals(feed, 480, 60, hr=135))
    [trig] = triggers(out)
    assert (trig.type, trig.severity, trig.at, trig.device_id) == (
        "heart_rate_high", "urgent", at(420), BED)
    assert trig.details == {"value": 135.0, "band": "urgent", "threshold": 131.0,
                            "sustained_s": 120.0, "since": at(300).isoformat()}
    assert trig.source_seq is None


def test_heart_rate_spike_of_90_s_never_alerts(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 90, hr=135), vitals(feed, 90, 600, hr=70))
    assert out == []


def test_heart_rate_low_urgent(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 60, hr=55), vitals(feed, 60, 200, hr=38))
    assert [(t.type, t.severity, t.at) for t in triggers(out)] == [
        ("heart_rate_low", "urgent", at(180))]


def test_heart_rate_low_band_has_no_warning(det: ResidentDetector, feed: Feed) -> None:
    assert run(det, vitals(feed, 0, 3600, hr=45)) == []


def test_warning_then_worsening_upgrades_to_urgent(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 660, hr=115), vitals(feed, 660, 300, hr=140))
    assert [(t.severity, t.at) for t in triggers(out, "heart_rate_high")] == [
        ("warning", at(600)), ("urgent", at(780))]


def test_warning_needs_its_own_persistence(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 590, hr=115), vitals(feed, 590, 20, hr=105),
              vitals(feed, 610, 590, hr=115))
    assert out == []


def test_urgent_episode_is_not_downgraded_by_warning(det: ResidentDetector,
                                                     feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 200, hr=135), vitals(feed, 200, 900, hr=115))
    assert [t.severity for t in triggers(out)] == ["urgent"]


def _episode(det: ResidentDetector, feed: Feed) -> None:
    assert len(triggers(run(det, vitals(feed, 0, 150, hr=135)))) == 1


def test_hysteresis_between_normal_and_warning_does_not_clear(det: ResidentDetector,
                                                              feed: Feed) -> None:
    _episode(det, feed)
    assert run(det, vitals(feed, 150, 3600, hr=100)) == []


def test_five_minutes_normal_clears(det: ResidentDetector, feed: Feed) -> None:
    _episode(det, feed)
    out = run(det, vitals(feed, 150, 60, hr=100), vitals(feed, 210, 400, hr=70))
    assert out == [AlertClear(RID, SITE, "heart_rate_high", at(510))]


def test_dip_back_restarts_the_clear_timer(det: ResidentDetector, feed: Feed) -> None:
    _episode(det, feed)
    out = run(det, vitals(feed, 150, 240, hr=70), vitals(feed, 390, 10, hr=100),
              vitals(feed, 400, 290, hr=70))
    assert out == []
    out = run(det, vitals(feed, 690, 60, hr=70))
    assert out == [AlertClear(RID, SITE, "heart_rate_high", at(700))]


def test_new_episode_after_clear(det: ResidentDetector, feed: Feed) -> None:
    _episode(det, feed)
    out = run(det, vitals(feed, 150, 310, hr=70), vitals(feed, 460, 150, hr=135))
    assert [type(d).__name__ for d in out] == ["AlertClear", "AlertTrigger"]


@pytest.mark.parametrize("gap", [{"hr": None}, {"occupied": False}])
def test_missing_readings_break_the_run(det: ResidentDetector, feed: Feed,
                                        gap: dict[str, Any]) -> None:
    out = run(det, vitals(feed, 0, 100, hr=135), vitals(feed, 100, 3, **gap),
              vitals(feed, 103, 100, hr=135))
    assert out == []


def test_telemetry_gap_longer_than_the_hold_breaks_the_run(det: ResidentDetector,
                                                           feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 60, hr=135), vitals(feed, 100, 60, hr=135))
    assert out == []


def test_sparse_readings_still_sustain(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, feed.readings(at(0), 300, step=5.0, hr=135))
    assert [t.at for t in triggers(out)] == [at(120)]


@pytest.mark.parametrize(("values", "expected"), [
    ({"rr": 28.0}, [("respiration_high", "urgent", 120)]),
    ({"rr": 6.0}, [("respiration_low", "urgent", 120)]),
    ({"rr": 22.0}, []),  # warning needs 15 min
    ({"rr": 18.0}, []),
])
def test_respiration_bands(det: ResidentDetector, feed: Feed, values: dict[str, float],
                           expected: list[tuple[str, str, int]]) -> None:
    out = run(det, vitals(feed, 0, 300, **values))
    assert [(t.type, t.severity, t.at) for t in triggers(out)] == [
        (typ, sev, at(s)) for typ, sev, s in expected]


def test_respiration_warning_and_clear(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 1000, rr=22.0), vitals(feed, 1000, 400, rr=15.0))
    assert [(t.severity, t.at) for t in triggers(out, "respiration_high")] == [
        ("warning", at(900))]
    assert clears(out) == [AlertClear(RID, SITE, "respiration_high", at(1300))]


def test_respiration_spike_never_alerts(det: ResidentDetector, feed: Feed) -> None:
    assert run(det, vitals(feed, 0, 90, rr=33.0), vitals(feed, 90, 600)) == []


def test_thresholds_come_from_the_residents_settings(feed: Feed) -> None:
    s = AlertSettings.model_validate({"heart_rate": {
        "urgent_at_or_below": 35, "urgent_at_or_above": 150, "urgent_sustain_s": 60,
        "warning_at_or_above": 120, "warning_sustain_s": 600, "normal_low": 45,
        "normal_high": 95}})
    det = ResidentDetector(context(settings=s))
    assert run(det, vitals(feed, 0, 300, hr=140)) == []
    out = run(det, vitals(feed, 300, 100, hr=155))
    assert [(t.severity, t.at) for t in triggers(out)] == [("urgent", at(360))]


# --- apnea ---------------------------------------------------------------------------------


def test_apnea_after_twenty_seconds_then_clears(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 60), vitals(feed, 60, 30, rr=0.0, mv=0),
              vitals(feed, 90, 10))
    assert [(t.type, t.severity, t.at) for t in triggers(out)] == [
        ("apnea", "critical", at(80))]
    assert clears(out) == [AlertClear(RID, SITE, "apnea", at(90))]


def test_fifteen_second_apnea_never_alerts(det: ResidentDetector, feed: Feed) -> None:
    assert run(det, vitals(feed, 0, 15, rr=0.0, mv=0), vitals(feed, 15, 60)) == []


def test_apnea_with_unmeasured_respiration(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 30, rr=None, mv=0))
    assert [d.type for d in triggers(out)] == ["apnea"]


@pytest.mark.parametrize("values", [{"rr": 0.0, "mv": 4}, {"rr": 0.0, "occupied": False},
                                    {"rr": 4.0, "mv": 0}])
def test_no_apnea_with_movement_out_of_bed_or_breathing(det: ResidentDetector, feed: Feed,
                                                        values: dict[str, Any]) -> None:
    assert triggers(run(det, vitals(feed, 0, 60, **values)), "apnea") == []


def test_apnea_does_not_double_as_respiration_low(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, vitals(feed, 0, 300, rr=0.0, mv=0))
    assert [t.type for t in triggers(out)] == ["apnea"]


# --- device offline ------------------------------------------------------------------------


def test_silent_device_goes_offline_on_tick_and_clears(det: ResidentDetector,
                                                       feed: Feed) -> None:
    run(det, vitals(feed, 0, 60), [feed.status(at(30))])
    last_recv = at(59) + LAG
    assert det.tick(last_recv + timedelta(seconds=179)) == []
    [trig] = triggers(det.tick(last_recv + timedelta(seconds=181)))
    assert (trig.type, trig.severity, trig.device_id, trig.at) == (
        "device_offline", "warning", BED, at(59 + 180))
    assert trig.details is not None
    assert trig.details["reason"] == "silent"
    assert trig.details["last_occupied"] is True
    assert trig.details["occupancy_since"] == at(0).isoformat()
    assert det.tick(last_recv + timedelta(seconds=900)) == []
    out = run(det, [feed.status(at(1000))])
    assert clears(out) == [AlertClear(RID, SITE, "device_offline", at(1000))]


def test_last_will_is_offline_at_once(det: ResidentDetector, feed: Feed) -> None:
    run(det, [feed.status(at(0), device=BTN)])
    [trig] = triggers(run(det, [feed.will(at(40) + LAG, device=BTN)]))
    assert trig.details is not None
    assert (trig.device_id, trig.at, trig.details["reason"]) == (BTN, at(40), "last_will")
    assert trig.details["last_occupied"] is None
    assert det.tick(at(3600)) == []  # one episode
    assert clears(run(det, [feed.status(at(3700), device=BTN)])) == [
        AlertClear(RID, SITE, "device_offline", at(3700))]


def test_a_will_overtaken_by_newer_records_is_ignored(det: ResidentDetector,
                                                      feed: Feed) -> None:
    run(det, [feed.status(at(10), device=BTN)])
    assert run(det, [feed.will(at(5), device=BTN)]) == []


def test_offline_clears_only_when_every_device_is_back(det: ResidentDetector,
                                                       feed: Feed) -> None:
    run(det, [feed.status(at(0)), feed.status(at(0), device=BTN)])
    out = run(det, [feed.will(at(50)), feed.will(at(51), device=BTN)])
    assert len(triggers(out, "device_offline")) == 2
    assert run(det, [feed.status(at(100))]) == []
    assert clears(run(det, [feed.status(at(110), device=BTN)])) == [
        AlertClear(RID, SITE, "device_offline", at(110))]


def test_reported_heartbeat_sets_the_offline_limit(det: ResidentDetector, feed: Feed) -> None:
    run(det, [feed.status(at(0), device=BTN, heartbeat_s=20)])
    assert det.tick(at(59) + LAG) == []
    assert [t.at for t in det.tick(at(61) + LAG)] == [at(60)]


def test_a_device_never_heard_goes_offline_a_day_after_registration(feed: Feed) -> None:
    registered = at(0)
    det = ResidentDetector(context(devices=(
        DeviceContext(BED, DeviceType.BED_SENSOR, 60, registered_at=registered),
        DeviceContext(BTN, DeviceType.CALL_BUTTON, 60, registered_at=registered))))
    day = 86_400
    run(det, [feed.status(at(10), device=BTN, heartbeat_s=day)])  # the mat never speaks
    assert triggers(det.tick(at(day - 1)), "device_offline") == []
    [trig] = triggers(det.tick(at(day + 1)), "device_offline")
    assert (trig.device_id, trig.at) == (BED, at(day))
    never = trig.details
    assert never is not None
    assert (never["reason"], never["last_seen"], never["registered_at"]) == (
        "never_heard", None, registered.isoformat())
    assert triggers(det.tick(at(day + 3600)), "device_offline") == []  # one episode
    run(det, [feed.status(at(day + 4000), device=BTN)])
    assert clears(run(det, [feed.status(at(day + 4000))])) == [
        AlertClear(RID, SITE, "device_offline", at(day + 4000))]


def test_never_heard_needs_a_registration_time(det: ResidentDetector) -> None:
    assert det.tick(at(30 * 86_400)) == []


def test_offline_gap_seen_only_in_replay_is_reported(det: ResidentDetector,
                                                     feed: Feed) -> None:
    out = run(det, [feed.status(at(0), device=BTN), feed.status(at(3600), device=BTN)])
    assert [(type(d).__name__, d.at) for d in out] == [
        ("AlertTrigger", at(180)), ("AlertClear", at(3600))]


# --- low battery, test overdue -------------------------------------------------------------


def test_low_battery_once_a_day_per_device(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, [feed.status(at(0), battery=50), feed.status(at(60), battery=19),
                    feed.status(at(120), battery=18),
                    feed.event(at(130), EventType.LOW_BATTERY, device=BED)])
    [trig] = triggers(out)
    assert (trig.type, trig.severity, trig.device_id, trig.at) == (
        "low_battery", "info", BED, at(60))
    assert trig.details == {"battery": 19, "source": "status"}
    out = run(det, [feed.event(at(140), EventType.LOW_BATTERY, detail="battery 15%"),
                    feed.status(at(86_460), battery=10)])
    batt = triggers(out, "low_battery")
    assert [(t.device_id, t.at) for t in batt] == [(BTN, at(140)), (BED, at(86_460))]
    assert batt[0].source_seq == feed.seq[BTN]
    assert batt[0].details == {"battery": None, "source": "event", "detail": "battery 15%"}


def test_low_battery_threshold_is_inclusive(det: ResidentDetector, feed: Feed) -> None:
    assert run(det, [feed.status(at(0), battery=21)]) == []
    assert len(run(det, [feed.status(at(60), battery=20)])) == 1


def test_low_battery_clears_on_a_charged_battery_with_hysteresis(det: ResidentDetector,
                                                                 feed: Feed) -> None:
    """20 % opens, 30 % (20 + the 10-point margin) clears: a level hovering at the threshold
    does not flap, and after a clear the next low battery alerts at once."""
    assert len(triggers(run(det, [feed.status(at(0), battery=20)]), "low_battery")) == 1
    assert run(det, [feed.status(at(60), battery=21), feed.status(at(120), battery=29),
                     feed.status(at(180), battery=19)]) == []  # same episode, within 24 h
    out = run(det, [feed.status(at(240), battery=30)])
    assert clears(out) == [AlertClear(RID, SITE, "low_battery", at(240))]
    assert run(det, [feed.status(at(300), battery=100)]) == []  # nothing open to clear
    [again] = triggers(run(det, [feed.status(at(360), battery=20)]), "low_battery")
    assert again.at == at(360)


def test_an_old_low_battery_report_arriving_late_changes_nothing(det: ResidentDetector,
                                                                 feed: Feed) -> None:
    """A redelivered or store-and-forward status older than the latest level is history."""
    low = feed.status(at(0), battery=15)
    run(det, [low])
    assert clears(run(det, [feed.status(at(3600), battery=100)]))
    assert run(det, [low, feed.event(at(10), EventType.LOW_BATTERY, device=BED)]) == []


def test_a_low_battery_event_overtaken_by_a_later_level_still_alerts(det: ResidentDetector,
                                                                      feed: Feed) -> None:
    """A device's events and statuses come over two sessions: at backlog speed a later
    status (between the low and the charged thresholds) can be taken first. The battery
    never charged in between, so the older warning still opens the alert, at its own time;
    a charged report before it would have settled it."""
    assert run(det, [feed.status(at(60), battery=25)]) == []
    [trig] = triggers(run(det, [feed.event(at(0), EventType.LOW_BATTERY, device=BED,
                                           detail="battery 29%")]), "low_battery")
    assert trig.at == at(0) and trig.details["source"] == "event"
    assert run(det, [feed.status(at(30), battery=19)]) == []  # the same episode


def test_a_state_saved_before_charged_reports_were_kept_loads_as_it_worked(
        feed: Feed) -> None:
    """A state saved without `batt_ok_t`: its latest report still settles older ones."""
    det = ResidentDetector(context())
    run(det, [feed.status(at(60), battery=25)])
    old = json.loads(json.dumps(det.snapshot()))
    for device in old["devices"].values():
        device.pop("batt_ok_t")
    again = ResidentDetector(context(), state=old)
    assert run(again, [feed.event(at(0), EventType.LOW_BATTERY, device=BED)]) == []


def test_a_late_charged_reading_clears_nothing(det: ResidentDetector, feed: Feed) -> None:
    assert len(triggers(run(det, [feed.status(at(60), battery=15)]), "low_battery")) == 1
    assert clears(run(det, [feed.status(at(0), battery=90)])) == []
    assert clears(run(det, [feed.status(at(120), battery=90)])) == [
        AlertClear(RID, SITE, "low_battery", at(120))]


def test_low_battery_of_a_state_saved_before_episodes_clears(feed: Feed) -> None:
    det = ResidentDetector(context())
    run(det, [feed.status(at(0), battery=15)])
    old = json.loads(json.dumps(det.snapshot()))
    for device in old["devices"].values():
        device.pop("batt_t")
        device["open"].pop("low_battery", None)
    again = ResidentDetector(context(), state=old)
    assert clears(run(again, [feed.status(at(60), battery=90)])) == [
        AlertClear(RID, SITE, "low_battery", at(60))]


def test_low_battery_clears_when_every_device_is_charged(det: ResidentDetector,
                                                         feed: Feed) -> None:
    run(det, [feed.status(at(0), battery=10), feed.status(at(0), device=BTN, battery=10)])
    assert run(det, [feed.status(at(60), battery=90)]) == []
    assert clears(run(det, [feed.status(at(120), device=BTN, battery=90)])) == [
        AlertClear(RID, SITE, "low_battery", at(120))]


def test_low_battery_clear_margin_is_a_setting(feed: Feed) -> None:
    det = ResidentDetector(context(settings=AlertSettings(low_battery_percent=95,
                                                          low_battery_clear_margin=10)))
    run(det, [feed.status(at(0), battery=95)])
    assert clears(run(det, [feed.status(at(60), battery=100)]))  # capped at 100 %


def test_test_overdue_from_the_last_test(feed: Feed) -> None:
    last = at(0)
    det = ResidentDetector(context(last_test_at=last))
    week = 7 * 86_400
    run(det, [feed.status(at(week - 3600), device=BTN, heartbeat_s=3600)])
    assert det.tick(at(week - 1)) == []
    [trig] = triggers(det.tick(at(week + 1) + LAG))
    assert (trig.type, trig.severity, trig.device_id, trig.at) == (
        "test_overdue", "info", BTN, at(week))
    assert trig.details == {"anchor": "last_test", "anchor_at": last.isoformat(),
                            "overdue_s": float(week)}
    assert det.tick(at(week + 1200)) == []
    out = run(det, [feed.event(at(week + 1800), EventType.TEST)])
    assert out == [AlertClear(RID, SITE, "test_overdue", at(week + 1800))]


def test_test_overdue_anchors_at_first_sight_and_replays(det: ResidentDetector,
                                                         feed: Feed) -> None:
    week = 7 * 86_400
    beats = [feed.status(at(h * 3600), device=BTN, heartbeat_s=3600)
             for h in range(0, 7 * 24 + 2)]
    out = run(det, beats)
    assert [(t.type, t.at, (t.details or {})["anchor"]) for t in triggers(out)] == [
        ("test_overdue", at(week), "first_seen")]


def test_snapshot_is_json(det: ResidentDetector, feed: Feed) -> None:
    run(det, vitals(feed, 0, 200, hr=135), [feed.event(at(10), EventType.SOS)])
    state = json.loads(json.dumps(det.snapshot(), allow_nan=False))
    assert state["v"] == 1
    assert state["watermark"] == at(199).timestamp()

"""The pure detector's bed rules: bed exit without return (night window across midnight,
Asia/Shanghai), not up, long absence (never while the bed sensor is offline)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

import pytest

from alerts.detector import ResidentDetector
from alerts.model import AlertClear, Decision
from gateway.records import TelemetryRecord
from tests.support.detector import (
    BED,
    LAG,
    RID,
    SH,
    SITE,
    Feed,
    clears,
    context,
    local,
    minutes,
    run,
    triggers,
)

STEP = 5.0


def span(feed: Feed, start: datetime, end: datetime, occupied: bool,
         step: float = STEP) -> list[TelemetryRecord]:
    """Readings every `step` s in [start, end)."""
    return feed.readings(start, (end - start).total_seconds(), step=step, occupied=occupied)


def stay(feed: Feed, *phases: tuple[datetime, bool], until: datetime) -> list[TelemetryRecord]:
    """In bed (True) or out (False) from each phase's start to the next one's."""
    out: list[TelemetryRecord] = []
    ends = [t for t, _ in phases[1:]] + [until]
    for (start, occupied), end in zip(phases, ends, strict=True):
        out += span(feed, start, end, occupied)
    return out


@pytest.fixture
def feed() -> Feed:
    """A fresh record builder."""
    return Feed()


@pytest.fixture
def det() -> ResidentDetector:
    """A resident in Shanghai with default settings (night 22:00-07:00)."""
    return ResidentDetector(context(tz="Asia/Shanghai"))


# --- bed exit without return ---------------------------------------------------------------


@pytest.mark.parametrize(("exit_local", "fires"), [
    (local(22, 30), True), (local(23, 50), True), (local(0, 30, day=2), True),
    (local(4, 30, day=2), True), (local(6, 50, day=2), False),  # 06:50: getting up
    (local(7, 10, day=2), False), (local(21, 50), False),
    (local(15, 0), False)])
def test_bed_exit_night_window_crosses_midnight(det: ResidentDetector, feed: Feed,
                                                exit_local: datetime, fires: bool) -> None:
    out = run(det, stay(feed, (exit_local - minutes(40), True), (exit_local, False),
                        until=exit_local + minutes(30)))
    expected = [exit_local + minutes(20)] if fires else []
    assert [t.at for t in triggers(out, "bed_exit_no_return")] == expected


@pytest.mark.parametrize(("bedtime", "exit_local", "fires"), [
    (time(20, 30), local(21, 15), True),  # an early sleeper's night starts at their bedtime
    (None, local(21, 15), False),  # not learned: the settings' night (22:00)
    (time(20, 30), local(20, 10), False),  # before even the early bedtime
    (time(23, 30), local(22, 30), True),  # a late sleeper keeps the default night
    (time(0, 30), local(22, 30), True),  # after midnight: the default night too
])
def test_a_learned_early_bedtime_starts_the_night_earlier(
        feed: Feed, bedtime: time | None, exit_local: datetime, fires: bool) -> None:
    det = ResidentDetector(replace(context(tz="Asia/Shanghai"), usual_bedtime=bedtime))
    out = run(det, stay(feed, (exit_local - minutes(40), True), (exit_local, False),
                        until=exit_local + minutes(30)))
    expected = [exit_local + minutes(20)] if fires else []
    assert [t.at for t in triggers(out, "bed_exit_no_return")] == expected


def test_bed_exit_details_and_clear_on_return(det: ResidentDetector, feed: Feed) -> None:
    exit_at = local(2, 0, day=2)
    out = run(det, stay(feed, (local(22, 0), True), (exit_at, False),
                        (exit_at + minutes(45), True), until=exit_at + minutes(60)))
    [trig] = triggers(out)
    assert (trig.type, trig.severity, trig.device_id, trig.at) == (
        "bed_exit_no_return", "high", BED, exit_at + minutes(20))
    assert trig.details == {"exit_at": exit_at.isoformat(), "away_s": 1200.0,
                            "in_bed_s": 4 * 3600.0}
    assert clears(out) == [AlertClear(RID, SITE, "bed_exit_no_return", exit_at + minutes(45))]


def test_back_within_twenty_minutes_never_alerts(det: ResidentDetector, feed: Feed) -> None:
    exit_at = local(2, 0, day=2)
    assert run(det, stay(feed, (local(23, 0), True), (exit_at, False),
                         (exit_at + minutes(19), True), until=exit_at + minutes(60))) == []


def test_too_short_in_bed_does_not_count(det: ResidentDetector, feed: Feed) -> None:
    exit_at = local(23, 0)
    assert run(det, stay(feed, (local(22, 0), False), (exit_at - minutes(5), True),
                         (exit_at, False), until=exit_at + minutes(60))) == []


def test_short_absences_do_not_reset_the_time_in_bed(det: ResidentDetector,
                                                     feed: Feed) -> None:
    """A 60-s false absence (undebounced mat) in the middle of the night does not make the
    real exit 4 minutes later look like a short visit to the bed."""
    t = local(1, 0, day=2)
    out = run(det, stay(feed, (local(0, 52, day=2), True), (t - minutes(1), False),
                        (t, True), (t + minutes(4), False), until=t + minutes(30)))
    assert [x.at for x in triggers(out)] == [t + minutes(24)]


def test_bed_exit_fires_on_tick_when_the_mat_goes_silent(det: ResidentDetector,
                                                         feed: Feed) -> None:
    """Out of bed at night and then nothing more from the mat: no evidence of a return, so
    the deadline passes on the wall clock (and the mat is reported offline as well)."""
    exit_at = local(3, 0, day=2)
    run(det, stay(feed, (local(1, 0, day=2), True), (exit_at, False),
                  until=exit_at + minutes(1)))
    early = det.tick(exit_at + minutes(19))
    assert [t.type for t in triggers(early)] == ["device_offline"]
    out = det.tick(exit_at + minutes(20) + LAG)
    assert [t.at for t in triggers(out)] == [exit_at + minutes(20)]
    assert triggers(out)[0].type == "bed_exit_no_return"


# --- not up --------------------------------------------------------------------------------


def test_not_up_at_ten_then_clears(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, stay(feed, (local(21, 0), False), (local(22, 0), True),
                        (local(10, 30, day=2), False), until=local(11, 0, day=2)))
    [trig] = triggers(out)
    assert (trig.type, trig.severity, trig.at) == ("not_up", "high", local(10, 0, day=2))
    assert trig.details == {"deadline": local(10, 0, day=2).isoformat(),
                            "in_bed_since": local(22, 0).isoformat(), "local_day": "2026-03-02"}
    assert clears(out) == [AlertClear(RID, SITE, "not_up", local(10, 30, day=2))]


@pytest.mark.parametrize(("rise", "up_at", "expected"), [
    (time(9, 30), local(10, 20, day=2), None),  # deadline 10:30
    (time(9, 30), local(10, 40, day=2), local(10, 30, day=2)),
    (time(7, 0), local(10, 5, day=2), local(10, 0, day=2)),  # 08:00 < 10:00
    (None, local(9, 0, day=2), None)])
def test_not_up_uses_the_later_of_ten_and_usual_rise(feed: Feed, rise: time | None,
                                                      up_at: datetime,
                                                      expected: datetime | None) -> None:
    det = ResidentDetector(context(tz="Asia/Shanghai", usual_rise=rise))
    out = run(det, stay(feed, (local(22, 0), True), (up_at, False), until=local(12, 0, day=2)))
    assert [t.at for t in triggers(out, "not_up")] == ([expected] if expected else [])


def test_not_up_once_per_local_day(det: ResidentDetector, feed: Feed) -> None:
    out = run(det, stay(feed, (local(22, 0), True), (local(14, 0, day=2), False),
                        (local(22, 0, day=2), True), (local(11, 0, day=3), False),
                        until=local(12, 0, day=3)))
    assert [t.at for t in triggers(out, "not_up")] == [local(10, 0, day=2),
                                                       local(10, 0, day=3)]
    assert len(clears(out, "not_up")) == 2


@pytest.mark.parametrize(("up_at", "expected"), [(local(10, 30, day=2), []),
                                                 (local(11, 10, day=2), [local(11, 0, day=2)])])
def test_new_usual_rise_moves_the_pending_check(det: ResidentDetector, feed: Feed,
                                                up_at: datetime,
                                                expected: list[datetime]) -> None:
    """The check of the coming morning was planned for 10:00; a usual rise of 10:00 (known
    only at 02:00) moves it to 11:00."""
    run(det, span(feed, local(22, 0), local(2, 0, day=2), occupied=True))
    det.update_context(context(tz="Asia/Shanghai", usual_rise=time(10, 0)))
    out = run(det, stay(feed, (local(2, 0, day=2), True), (up_at, False),
                        until=local(12, 0, day=2)))
    assert [t.at for t in triggers(out, "not_up")] == expected


def test_not_up_not_checked_for_a_day_started_after_its_deadline(feed: Feed) -> None:
    det = ResidentDetector(context(tz="Asia/Shanghai"))
    assert run(det, span(feed, local(10, 30), local(12, 0), occupied=True)) == []


# --- long absence --------------------------------------------------------------------------


def test_long_absence_after_twelve_hours_then_clears(det: ResidentDetector,
                                                     feed: Feed) -> None:
    out_at = local(18, 0)
    out = run(det, stay(feed, (out_at - minutes(30), True), (out_at, False),
                        (out_at + minutes(13 * 60), True), until=out_at + minutes(13 * 60 + 5)))
    [trig] = triggers(out, "long_absence")
    assert (trig.severity, trig.at) == ("high", out_at + minutes(12 * 60))
    assert trig.details == {"out_since": out_at.isoformat(), "absent_s": 12 * 3600.0}
    assert clears(out, "long_absence") == [
        AlertClear(RID, SITE, "long_absence", out_at + minutes(13 * 60))]


def test_eleven_hours_away_is_not_long(det: ResidentDetector, feed: Feed) -> None:
    out_at = local(18, 0)
    out = run(det, stay(feed, (out_at - minutes(30), True), (out_at, False),
                        (out_at + minutes(11 * 60), True), until=out_at + minutes(11 * 60 + 5)))
    assert triggers(out, "long_absence") == []


def test_long_absence_never_fires_while_the_bed_sensor_is_offline(det: ResidentDetector,
                                                                  feed: Feed) -> None:
    out_at = local(18, 0)
    run(det, stay(feed, (out_at - minutes(30), True), (out_at, False),
                  until=out_at + minutes(60)))
    decisions: list[Decision] = run(det, [feed.will(out_at + minutes(61))])
    for hour in range(2, 15):
        decisions += det.tick(out_at + minutes(hour * 60))
    assert [t.type for t in triggers(decisions)] == ["device_offline"]
    back = out_at + minutes(15 * 60)
    out = run(det, [feed.status(back)], span(feed, back, back + minutes(5), occupied=False))
    assert [t.at for t in triggers(out, "long_absence")] == [back]
    assert [c.type for c in clears(out)] == ["device_offline"]


def test_long_absence_fires_on_tick_while_the_bed_is_heard(det: ResidentDetector,
                                                           feed: Feed) -> None:
    """A mat that only sends heartbeats while the bed is empty is online: the clock runs."""
    out_at = local(14, 0)  # past the usual day's end (06:00 + 16 h + 1 h) at 02:00
    run(det, stay(feed, (out_at - minutes(30), True), (out_at, False),
                  until=out_at + minutes(1)))
    decisions: list[Decision] = []
    for m in range(1, 12 * 60 + 3):
        beat = out_at + minutes(m)
        decisions += run(det, [feed.status(beat)]) + det.tick(beat + timedelta(seconds=30))
    assert [t.at for t in triggers(decisions)] == [out_at + minutes(12 * 60)]


# --- ordinary days of an early riser who never naps ----------------------------------------


def routine(feed: Feed, days: int, rise: list[int], fall_night: int | None = None
            ) -> list[TelemetryRecord]:
    """Readings every minute: in bed 22:00 -> 05:30 (+ rise[d] minutes), up all day, no nap.
    On `fall_night` the resident leaves the bed at 02:00 and is not back before the rise."""
    out: list[TelemetryRecord] = []
    for d in range(1, days + 1):
        bed = local(22, 0, day=d)
        up = local(5, 30, day=d + 1) + minutes(rise[d - 1])
        phases = [(bed, True), (up, False)]
        if d == fall_night:
            phases = [(bed, True), (local(2, 0, day=d + 1), False)]
        next_bed = local(22, 0, day=d + 1)
        ends = [t for t, _ in phases[1:]] + [next_bed]
        for (start, occupied), end in zip(phases, ends, strict=True):
            out += span(feed, start, end, occupied, step=60.0)
    return out


@pytest.mark.parametrize("usual_rise", [None, time(5, 30)], ids=["default", "learned"])
def test_an_early_riser_without_naps_has_no_alert_on_ordinary_days(
        feed: Feed, usual_rise: time | None) -> None:
    """Rises at 05:10-05:50 and is up 16.5 h a day: neither the morning rise (before the
    07:00 night end) nor the long day is an alarm, with the usual rise learned or not."""
    det = ResidentDetector(context(tz="Asia/Shanghai", usual_rise=usual_rise))
    out = run(det, routine(feed, 5, rise=[0, -20, 20, -5, 10]))
    assert triggers(out) == []


@pytest.mark.parametrize("usual_rise", [None, time(5, 30)], ids=["default", "learned"])
def test_an_early_risers_fall_at_two_is_still_caught(feed: Feed,
                                                     usual_rise: time | None) -> None:
    det = ResidentDetector(context(tz="Asia/Shanghai", usual_rise=usual_rise))
    out = run(det, routine(feed, 4, rise=[0, 0, 0, 0], fall_night=2))
    assert [(t.type, t.at) for t in triggers(out, "bed_exit_no_return")] == [
        ("bed_exit_no_return", local(2, 0, day=3) + minutes(20))]
    # not back all day (the scenario goes on until 22:00): long past the usual day's end
    assert [t.at for t in triggers(out, "long_absence")] == [
        local(2, 0, day=3) + minutes(17 * 60)]  # 16 h + 1 h


def test_a_long_absence_is_judged_against_the_learned_day(feed: Feed) -> None:
    """A resident whose usual day is 14 h (learned): out from 06:00, not back at 21:00 + 1 h."""
    det = ResidentDetector(replace(context(tz="Asia/Shanghai", usual_rise=time(6, 0)),
                                   usual_day_s=14 * 3600.0))
    out = run(det, span(feed, local(22, 0), local(6, 0, day=2), True, step=60.0),
              span(feed, local(6, 0, day=2), local(23, 30, day=2), False, step=60.0))
    assert [(t.type, t.at) for t in triggers(out)] == [
        ("long_absence", local(21, 0, day=2))]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulated_early_risers_have_no_alert_over_five_days(seed: int) -> None:
    """simulators.resident routines (night exits, false absences, day-to-day jitter: rises
    from 04:45 to 06:10) of residents who usually rise at 05:30 (learned) and never nap."""
    from simulators.resident import ResidentModel, ResidentProfile

    model = ResidentModel(ResidentProfile(rise_min=5 * 60 + 30, nap_probability=0.0), seed, SH)
    det = ResidentDetector(context(tz="Asia/Shanghai", usual_rise=time(5, 30)))
    records = [TelemetryRecord(t, BED, RID, i, r.occupied, r.heart_rate, r.respiration,
                               r.movement, None, t + LAG)
               for i, (t, r) in enumerate(model.readings(local(12, 0), local(12, 0, day=6),
                                                          period_s=10.0))]
    out = run(det, records)
    assert [(t.type, t.at) for t in triggers(out)] == []


def test_a_late_rise_starts_the_day(det: ResidentDetector, feed: Feed) -> None:
    """Up at 07:30 (usual rise not learned: 06:00), back in bed at 00:00: a 16.5-h day is
    ordinary; the day counts from the rise, not from the population's usual rise."""
    out = run(det, span(feed, local(22, 0), local(7, 30, day=2), True, step=60.0),
              span(feed, local(7, 30, day=2), local(0, 0, day=3), False, step=60.0),
              span(feed, local(0, 0, day=3), local(1, 0, day=3), True, step=60.0))
    assert triggers(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_simulated_random_residents_have_no_alert_over_three_days(seed: int) -> None:
    """The population's routines (simulators.resident random profiles: naps, night exits,
    rises 06:00-07:30 with jitter), usual rise and day not learned yet."""
    from simulators.resident import ResidentModel

    model = ResidentModel.random(seed, SH)
    det = ResidentDetector(context(tz="Asia/Shanghai"))
    records = [TelemetryRecord(t, BED, RID, i, r.occupied, r.heart_rate, r.respiration,
                               r.movement, None, t + LAG)
               for i, (t, r) in enumerate(model.readings(local(12, 0), local(12, 0, day=4),
                                                          period_s=10.0))]
    assert [(t.type, t.at) for t in triggers(run(det, records))] == []

"""A planned stop of the platform is not a device fault: the pure detector after a restart
(grace period, silences across the downtime, alerts the stop caused)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from alerts.detector import ResidentDetector
from alerts.model import PLATFORM_RESTART, AlertClear
from gateway.records import StatusRecord
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
)


def restarted(feed: Feed, stop_s: float, up_s: float, will_btn_s: float | None = None
              ) -> ResidentDetector:
    """Both devices heard every minute until `stop_s` (the button's clean power-off at
    `will_btn_s`), then the platform is down until `up_s` and resumes from saved state."""
    det = ResidentDetector(context())
    beats = [feed.status(at(s), device=d) for s in range(0, int(stop_s) + 1, 60)
             for d in (BED, BTN) if not (d == BTN and will_btn_s is not None and s > will_btn_s)]
    run(det, sorted(beats, key=lambda r: r.time))
    if will_btn_s is not None:
        run(det, [feed.will(at(will_btn_s) + LAG, device=BTN)])
    again = ResidentDetector(context(), state=det.snapshot())
    again.resume(at(stop_s) + LAG, at(up_s))
    return again


def test_a_device_silent_across_the_downtime_gets_a_grace_period() -> None:
    feed = Feed()
    det = restarted(feed, stop_s=120, up_s=720)
    assert det.tick(at(721)) == []
    assert run(det, [feed.status(at(725))]) == []  # the bed talks: no silence reported
    assert det.tick(at(720 + 179)) == []
    out = det.tick(at(720 + 181))  # the button stays silent: reported after the grace
    assert [(t.device_id, t.at) for t in triggers(out)] == [(BTN, at(720 + 180) - LAG)]


def test_a_device_reported_after_the_grace_clears_as_usual() -> None:
    feed = Feed()
    det = restarted(feed, stop_s=120, up_s=720)
    run(det, [feed.status(at(725)), feed.status(at(850))])
    assert len(triggers(det.tick(at(720 + 181)))) == 1
    out = run(det, [feed.status(at(2000), device=BTN)])
    assert clears(out) == [AlertClear(RID, SITE, "device_offline", at(2000))]


def test_a_will_held_from_the_stop_is_dropped_when_the_device_speaks() -> None:
    feed = Feed()
    det = restarted(feed, stop_s=120, up_s=720)
    assert run(det, [feed.will(at(722), device=BTN)]) == []
    assert det.tick(at(730)) == []
    assert run(det, [feed.status(at(735), device=BTN), feed.status(at(735))]) == []
    assert det.tick(at(900)) == []


def test_a_held_will_counts_after_the_grace() -> None:
    feed = Feed()
    det = restarted(feed, stop_s=120, up_s=720)
    run(det, [feed.will(at(722), device=BTN), feed.status(at(730)), feed.status(at(890))])
    out = det.tick(at(720 + 181))
    assert [(t.device_id, t.details and t.details["reason"]) for t in triggers(out)] == [
        (BTN, "last_will")]


def test_an_offline_alert_the_stop_caused_is_cleared_as_such() -> None:
    feed = Feed()
    det = restarted(feed, stop_s=120, up_s=720, will_btn_s=120)
    out = run(det, [feed.status(at(725), device=BTN)])
    assert clears(out) == [AlertClear(RID, SITE, "device_offline", at(725), PLATFORM_RESTART)]


def test_an_offline_alert_from_before_the_stop_clears_as_usual() -> None:
    feed = Feed()
    det = restarted(feed, stop_s=3000, up_s=3600, will_btn_s=60)
    out = run(det, [feed.status(at(3605), device=BTN)])
    assert clears(out) == [AlertClear(RID, SITE, "device_offline", at(3605))]


def test_without_a_restart_a_silence_is_reported_at_once() -> None:
    feed = Feed()
    det = ResidentDetector(context())
    run(det, [feed.status(at(0)), feed.status(at(0), device=BTN)])
    assert len(triggers(det.tick(at(181) + timedelta(seconds=1)))) == 2


def test_the_homes_going_quiet_after_the_platform_stopped_open_nothing() -> None:
    """The demo's order: the pipeline stops first, then the simulated homes send their last
    readings and power off cleanly (with their own ts). At the restart those wait in the
    broker and arrive first, so the device is 'heard since the restart' (by a reading from
    the downtime) when its power-off comes: still the stop's, held, and dropped when the
    device speaks again."""
    feed = Feed()
    det = restarted(feed, stop_s=120, up_s=720)
    received = at(721)  # everything below is delivered right after the restart
    backlog = [replace(feed.status(at(125)), received_at=received),
               StatusRecord(at(126), BED, RID, 99, False, None, None, None, None, None,
                            received)]
    assert run(det, backlog) == []
    assert det.tick(at(722)) == []  # a tick before the home's new readings arrive
    assert run(det, [feed.status(at(725)), feed.status(at(725), device=BTN)]) == []
    assert run(det, [feed.status(at(850)), feed.status(at(850), device=BTN)]) == []
    assert det.tick(at(720 + 181)) == []  # past the grace: the held power-off was dropped

"""Audience resolution (real database) and the pure quiet-hours / severity rules."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from alerts.model import Audience, ChannelKind, Severity
from alerts.notify.outbox import load_alert_info
from alerts.notify.recipients import (
    ChannelSpec,
    Resolution,
    deliver_at,
    in_quiet_hours,
    passes_min_severity,
    quiet_until,
    resolve_recipients,
)
from kernel import db
from tests.alerts.notify.seed import World, add_alert, add_channel, add_user

NIGHT = (time(22, 0), time(7, 0))


def spec(quiet: tuple[time, time] | None = NIGHT, tz: str = "UTC") -> ChannelSpec:
    return ChannelSpec(id=1, kind=ChannelKind.EMAIL, target="a@example.org",
                       quiet_start=quiet[0] if quiet else None,
                       quiet_end=quiet[1] if quiet else None, timezone=tz)


# pure rules ------------------------------------------------------------------------------

@pytest.mark.parametrize(("local", "expected"), [
    (time(21, 59), False), (time(22, 0), True), (time(23, 59), True), (time(0, 0), True),
    (time(6, 59), True), (time(7, 0), False), (time(12, 0), False)])
def test_quiet_hours_across_midnight(local, expected):
    assert in_quiet_hours(local, *NIGHT) is expected


@pytest.mark.parametrize(("local", "expected"), [
    (time(12, 59), False), (time(13, 0), True), (time(14, 59), True), (time(15, 0), False)])
def test_quiet_hours_within_a_day(local, expected):
    assert in_quiet_hours(local, time(13, 0), time(15, 0)) is expected


def test_equal_start_and_end_means_no_quiet_hours():
    assert not in_quiet_hours(time(3, 0), time(5, 0), time(5, 0))


def test_quiet_until_is_next_end_in_channel_timezone():
    # 23:30 in Shanghai (UTC+8) is 15:30 UTC; quiet ends 07:00 Shanghai = 23:00 UTC.
    now = datetime(2026, 3, 5, 15, 30, tzinfo=UTC)
    assert quiet_until(now, *NIGHT, "Asia/Shanghai") == datetime(2026, 3, 5, 23, 0, tzinfo=UTC)
    # 02:00 Shanghai (18:00 UTC): same night's end.
    now = datetime(2026, 3, 5, 18, 0, tzinfo=UTC)
    assert quiet_until(now, *NIGHT, "Asia/Shanghai") == datetime(2026, 3, 5, 23, 0, tzinfo=UTC)
    # 12:00 Shanghai: not quiet.
    assert quiet_until(datetime(2026, 3, 5, 4, 0, tzinfo=UTC), *NIGHT, "Asia/Shanghai") is None


def test_quiet_until_over_a_dst_change():
    # London springs forward on 29 Mar 2026: 07:00 BST that morning is 06:00 UTC.
    now = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    assert quiet_until(now, *NIGHT, "Europe/London") == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)


def test_critical_ignores_quiet_hours_others_wait():
    night = datetime(2026, 3, 5, 23, 30, tzinfo=UTC)
    morning = datetime(2026, 3, 6, 7, 0, tzinfo=UTC)
    assert deliver_at(spec(), Severity.CRITICAL, night) == night
    assert deliver_at(spec(), Severity.URGENT, night) == morning
    assert deliver_at(spec(), Severity.INFO, night) == morning
    assert deliver_at(spec(quiet=None), Severity.INFO, night) == night
    noon = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    assert deliver_at(spec(), Severity.INFO, noon) == noon


def test_unknown_timezone_falls_back_to_utc():
    night = datetime(2026, 3, 5, 23, 30, tzinfo=UTC)
    assert deliver_at(spec(tz="Mars/Olympus"), Severity.HIGH, night) == datetime(
        2026, 3, 6, 7, 0, tzinfo=UTC)


def test_min_severity():
    assert passes_min_severity(Severity.CRITICAL, Severity.URGENT)
    assert passes_min_severity(Severity.URGENT, Severity.URGENT)
    assert not passes_min_severity(Severity.HIGH, Severity.URGENT)
    assert passes_min_severity(Severity.INFO, Severity.INFO)


# audiences -------------------------------------------------------------------------------

def _resolve(world: World, alert_id: int, audience: Audience) -> Resolution:
    with db.connect(world.url) as conn:
        info = load_alert_info(conn, alert_id)
        assert info is not None
        return resolve_recipients(conn, audience, info)


def _channel_ids(resolution: Resolution) -> list[int]:
    return sorted(r.channel.id for r in resolution.recipients)


def test_site_workers_are_on_duty_active_care_workers_of_the_site(world):
    on = add_user(world, "on", "care_worker", on_duty=True)
    off = add_user(world, "off", "care_worker", on_duty=False)
    gone = add_user(world, "gone", "care_worker", on_duty=True, active=False)
    officer = add_user(world, "officer", "duty_officer")
    ch_on = add_channel(world, "email", "on@example.org", user_id=on)
    add_channel(world, "email", "off@example.org", user_id=off)
    add_channel(world, "email", "gone@example.org", user_id=gone)
    add_channel(world, "email", "officer@example.org", user_id=officer)
    add_channel(world, "email", "paused@example.org", user_id=on, active=False)
    alert = add_alert(world)
    assert _channel_ids(_resolve(world, alert, Audience.SITE_WORKERS)) == [ch_on]


def test_duty_officers_assigned_and_family(world):
    officer = add_user(world, "officer", "duty_officer")
    worker = add_user(world, "worker", "care_worker", on_duty=True)
    son = add_user(world, "son", "family", family_of=world.resident)
    add_user(world, "stranger", "family")
    ch_officer = add_channel(world, "email", "o@example.org", user_id=officer)
    ch_worker = add_channel(world, "webhook", "http://127.0.0.1:9/w", user_id=worker)
    ch_son = add_channel(world, "email", "son@example.org", user_id=son)
    alert = add_alert(world, assigned_to=worker)
    assert _channel_ids(_resolve(world, alert, Audience.DUTY_OFFICERS)) == [ch_officer]
    assert _channel_ids(_resolve(world, alert, Audience.ASSIGNED)) == [ch_worker]
    assert _channel_ids(_resolve(world, alert, Audience.FAMILY)) == [ch_son]


def test_assigned_with_nobody_assigned_is_empty(world):
    alert = add_alert(world)
    assert _resolve(world, alert, Audience.ASSIGNED).recipients == []


def test_site_group_channels(world):
    group = add_channel(world, "wecom", "k1", site=True)
    add_channel(world, "dingtalk", "t1", site=True, active=False)
    alert = add_alert(world)
    resolution = _resolve(world, alert, Audience.SITE_GROUP)
    assert _channel_ids(resolution) == [group]
    assert resolution.recipients[0].user_id is None


def test_min_severity_filters_and_people_without_channels_are_reported(world):
    daughter = add_user(world, "daughter", "family", family_of=world.resident)
    son = add_user(world, "son", "family", family_of=world.resident)
    add_user(world, "cousin", "family", family_of=world.resident)  # no channel at all
    add_channel(world, "email", "d@example.org", user_id=daughter, min_severity="urgent")
    ch_son = add_channel(world, "email", "s@example.org", user_id=son)
    alert = add_alert(world, type_="bed_exit_no_return", severity="high")
    resolution = _resolve(world, alert, Audience.FAMILY)
    assert _channel_ids(resolution) == [ch_son]
    assert resolution.below_min_severity == 1
    assert len(resolution.unreachable) == 1

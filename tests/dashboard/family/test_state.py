"""The relative's state in words: a pure function of the latest facts and an injected now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dashboard.family.state import BedFacts, local_clock, presence

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 4, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


def at(hh_mm: str, days_ago: int = 0) -> datetime:
    """A Shanghai wall-clock time today (or days ago), as an aware instant."""
    local = NOW.astimezone(SHANGHAI)
    hour, minute = map(int, hh_mm.split(":"))
    return local.replace(hour=hour, minute=minute) - timedelta(days=days_ago)


def test_in_bed_since_the_start_of_the_current_run_in_the_sites_zone():
    facts = BedFacts(True, True, NOW, latest=NOW - timedelta(seconds=5), occupied=True,
                     run_since=at("22:14", days_ago=1))
    state = presence(facts, NOW, SHANGHAI)
    assert (state.kind, state.text) == ("in_bed", "In bed since 22:14 yesterday")


def test_up_and_about_then_probably_out_after_three_hours():
    up = BedFacts(True, True, NOW, latest=NOW, occupied=False, run_since=at("07:02"))
    assert presence(up, NOW, SHANGHAI).text == "Up and about since 07:02"
    out = BedFacts(True, True, NOW, latest=NOW, occupied=False, run_since=at("06:10"))
    state = presence(out, NOW, SHANGHAI)
    assert (state.kind, state.text) == ("away", "Probably out of the house since 06:10")


def test_offline_with_an_open_alert_says_the_centre_has_been_told():
    facts = BedFacts(True, False, at("03:00"), latest=at("02:58"), occupied=True,
                     run_since=at("23:00", 1), offline_alert_at=at("03:05"))
    state = presence(facts, NOW, SHANGHAI)
    assert state.kind == "offline_reported"
    assert state.text == "Sensor offline since 03:00 — the centre has been told"
    assert state.since == at("03:00")


@pytest.mark.parametrize("facts", [
    BedFacts(True, False, at("03:00"), latest=at("03:00"), occupied=True),
    # marked online, but silent for longer than a heartbeat allows
    BedFacts(True, True, at("03:00"), latest=at("03:00"), occupied=False),
])
def test_a_silent_or_offline_sensor_without_an_alert_is_offline_and_nothing_more(facts):
    state = presence(facts, NOW, SHANGHAI)
    assert (state.kind, state.text) == ("offline", "Sensor offline since 03:00")


def test_no_sensor_and_no_data_say_so_without_a_time():
    assert presence(BedFacts(False), NOW, SHANGHAI).text == "No bed sensor is installed yet"
    state = presence(BedFacts(True, None, None), NOW, SHANGHAI)
    assert (state.kind, state.since, state.text) == (
        "no_data", None, "No news from the bed sensor yet")


def test_clock_times_are_24_hour_and_name_the_day_when_not_today():
    assert local_clock(at("09:10"), NOW, SHANGHAI) == "09:10"
    assert local_clock(at("22:14", 1), NOW, SHANGHAI) == "22:14 yesterday"
    assert local_clock(at("22:14", 3), NOW, SHANGHAI) == "2026-03-01 22:14"

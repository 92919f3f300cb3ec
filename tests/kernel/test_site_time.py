"""kernel.sites.site_time: the server's one way to write a time for people (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime

from kernel.sites import site_time

AT = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 07:30 on 2 March in Shanghai


def test_a_time_is_written_in_the_sites_zone_24_hour_iso_like() -> None:
    assert site_time(AT, "Asia/Shanghai") == "2026-03-02 07:30"
    assert site_time(AT, "America/New_York") == "2026-03-01 18:30"
    assert site_time(datetime(2026, 3, 2, 13, 5, tzinfo=UTC), "UTC") == "2026-03-02 13:05"


def test_only_the_clock_on_the_sites_same_day() -> None:
    assert site_time(AT, "Asia/Shanghai", datetime(2026, 3, 2, 12, 0, tzinfo=UTC)) == "07:30"
    # Noon UTC on 1 March is 20:00 on 1 March in Shanghai: another day than the 2nd.
    assert site_time(AT, "Asia/Shanghai", datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) == (
        "2026-03-02 07:30")


def test_an_unset_zone_is_utc_and_an_unknown_one_says_so() -> None:
    assert site_time(AT, None) == "2026-03-01 23:30"
    assert site_time(AT, "Not/AZone") == "2026-03-01 23:30 UTC"
    assert site_time(AT, "localtime") == "2026-03-01 23:30 UTC"  # never the server's zone


def test_seconds_for_event_times() -> None:
    assert site_time(AT.replace(second=15), "Asia/Shanghai", seconds=True) == (
        "2026-03-02 07:30:15")

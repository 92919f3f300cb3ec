"""When a resident's next visit is due (pure: every time is given, no clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from kernel.visits import (
    VISIT_CHECKLIST,
    Plan,
    VisitStatus,
    all_well,
    family_visit_summary,
    next_due,
)

REGISTERED = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def test_never_visited_is_due_on_the_registration_date():
    due = next_due(None, REGISTERED, 7, datetime(2026, 1, 1, 23, 0, tzinfo=UTC), "UTC")
    assert (due.due_on, due.overdue) == (date(2026, 1, 1), False)
    due = next_due(None, REGISTERED, 7, datetime(2026, 1, 3, 0, 0, tzinfo=UTC), "UTC")
    assert (due.overdue, due.days_overdue) == (True, 2)


def test_due_interval_days_after_the_last_visit_and_overdue_only_the_day_after():
    last = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    on_the_day = next_due(last, REGISTERED, 7, datetime(2026, 3, 9, 23, 59, tzinfo=UTC), "UTC")
    assert (on_the_day.due_on, on_the_day.overdue) == (date(2026, 3, 9), False)
    next_day = next_due(last, REGISTERED, 7, datetime(2026, 3, 10, 0, 0, tzinfo=UTC), "UTC")
    assert (next_day.overdue, next_day.days_overdue) == (True, 1)


def test_an_open_visit_booked_for_an_earlier_date_sets_the_due_date():
    last = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    now = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
    booked = next_due(last, REGISTERED, 30, now, "UTC", scheduled_on=date(2026, 3, 4))
    assert (booked.due_on, booked.overdue, booked.days_overdue) == (date(2026, 3, 4), True, 2)
    later = next_due(last, REGISTERED, 30, now, "UTC", scheduled_on=date(2026, 5, 1))
    assert (later.due_on, later.overdue) == (date(2026, 4, 1), False)


def test_dates_are_the_sites_local_dates():
    # 2026-03-01 20:00 UTC is already 2 March in Shanghai (UTC+8).
    last = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    now = datetime(2026, 3, 8, 17, 0, tzinfo=UTC)  # 9 March 01:00 in Shanghai
    in_shanghai = next_due(last, REGISTERED, 7, now, "Asia/Shanghai")
    assert (in_shanghai.due_on, in_shanghai.overdue) == (date(2026, 3, 9), False)
    in_utc = next_due(last, REGISTERED, 7, now, "UTC")
    assert (in_utc.due_on, in_utc.overdue) == (date(2026, 3, 8), False)
    later = next_due(last, REGISTERED, 7, datetime(2026, 3, 9, 17, 0, tzinfo=UTC),
                     "Asia/Shanghai")
    assert later.overdue and later.days_overdue == 1


def test_an_unknown_zone_counts_as_utc():
    last = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    now = datetime(2026, 3, 8, 17, 0, tzinfo=UTC)
    assert next_due(last, REGISTERED, 7, now, "Nowhere/Else") == next_due(
        last, REGISTERED, 7, now, "UTC")


def test_a_resident_override_beats_the_site_default():
    assert Plan(site_interval_days=30, override_days=None).interval_days == 30
    assert Plan(site_interval_days=30, override_days=7).interval_days == 7


def test_family_words_hide_the_checklist():
    ticked = dict.fromkeys(VISIT_CHECKLIST, True)
    assert all_well(ticked, follow_up=False)
    assert not all_well(ticked, follow_up=True)
    assert not all_well({**ticked, "medication": False}, follow_up=False)
    assert not all_well({}, follow_up=False)
    assert family_visit_summary(VisitStatus.COMPLETED, True) == "A carer visited; all was well."
    assert "following" in family_visit_summary(VisitStatus.COMPLETED, False)
    assert family_visit_summary(VisitStatus.IN_PROGRESS, True) == "A carer is visiting."

"""Regular visits to residents (巡访关爱): the checklist, the visit states, the family's
words, and when the next visit is due.

The plan is simple on purpose: every site has a default interval (and one for high-risk
residents: those with any risk category in the ledger, see docs/dashboard.md "Visits"),
and a resident may override it. The next visit is due `interval` days after the local date
of the last completed visit, in the site's time zone; a resident never visited is due on
the local date they were registered. The computation is pure (the caller passes `now`), so
it is tested without a clock.

Part of the shared kernel: the dashboard and the CLI both use it; it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from kernel.i18n import N_

MIN_INTERVAL_DAYS = 1
MAX_INTERVAL_DAYS = 366
DEFAULT_INTERVAL_DAYS = 30       # "monthly otherwise"
DEFAULT_HIGH_RISK_DAYS = 7       # "weekly for high-risk residents"


class VisitStatus(StrEnum):
    """Where a visit stands: planned (maybe assigned), under way, done or called off."""

    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (VisitStatus.PLANNED, VisitStatus.IN_PROGRESS)

VISIT_STATUS_LABELS: dict[str, str] = {
    VisitStatus.PLANNED: N_("Planned"),
    VisitStatus.IN_PROGRESS: N_("Carer on site"),
    VisitStatus.COMPLETED: N_("Completed"),
    VisitStatus.CANCELLED: N_("Cancelled"),
}

# The checklist a care worker goes through on every visit, in the order the form shows it.
# Values are stored (visits.checklist jsonb keys); labels are shown.
VISIT_CHECKLIST: dict[str, str] = {
    "seen_well": N_("Resident seen and well"),
    "home_safe": N_("Home safe and warm"),
    "food_water": N_("Food and water in the house"),
    "medication": N_("Medication taken"),
    "devices_ok": N_("Devices working, batteries fine"),
}

# What a family member reads about a visit: no notes, names or checklist details.
FAMILY_VISIT_WELL = N_("A carer visited; all was well.")
FAMILY_VISIT_FOLLOW_UP = N_("A carer visited; the care team is following something up.")
FAMILY_VISIT_UNDER_WAY = N_("A carer is visiting.")


def family_visit_summary(status: VisitStatus, all_well: bool) -> str:
    """A visit in a family member's words (untranslated; the caller translates)."""
    if status is VisitStatus.IN_PROGRESS:
        return FAMILY_VISIT_UNDER_WAY
    return FAMILY_VISIT_WELL if all_well else FAMILY_VISIT_FOLLOW_UP


def all_well(checklist: dict[str, bool], follow_up: bool) -> bool:
    """Whether a visit found nothing to act on: every checklist item ticked, no follow-up."""
    return not follow_up and all(checklist.get(item) is True for item in VISIT_CHECKLIST)


@dataclass(frozen=True)
class Plan:
    """A resident's effective plan: the site's default unless the resident overrides it."""

    site_interval_days: int
    override_days: int | None

    @property
    def interval_days(self) -> int:
        """The interval that applies."""
        return self.override_days if self.override_days is not None else self.site_interval_days


@dataclass(frozen=True)
class Due:
    """When a resident's next visit is due and whether that has passed."""

    due_on: date
    overdue: bool
    days_overdue: int


def next_due(last_completed: datetime | None, registered: datetime, interval_days: int,
             now: datetime, tz_name: str, scheduled_on: date | None = None) -> Due:
    """The next visit's due date in the site's zone: `interval_days` after the local date
    of the last completed visit (or the registration date when there was none), or the
    date an open visit was scheduled for if that is earlier (a duty officer who books a
    visit for a date expects it overdue after that date, whatever the plan says). Overdue
    once the local date of `now` is after the due date, so a visit due "today" is never
    overdue before the day is out wherever the site is."""
    zone = _zone(tz_name)
    if last_completed is None:
        due_on = registered.astimezone(zone).date()
    else:
        due_on = last_completed.astimezone(zone).date() + timedelta(days=interval_days)
    if scheduled_on is not None and scheduled_on < due_on:
        due_on = scheduled_on
    today = now.astimezone(zone).date()
    late = (today - due_on).days
    return Due(due_on=due_on, overdue=late > 0, days_overdue=max(late, 0))


def local_today(now: datetime, tz_name: str) -> date:
    """The date at the site."""
    return now.astimezone(_zone(tz_name)).date()


def _zone(tz_name: str) -> ZoneInfo:
    """The site's zone; an unknown name (never stored: sites validate it) falls back to UTC."""
    try:
        return ZoneInfo(tz_name)
    except (ValueError, KeyError):
        return ZoneInfo("UTC")

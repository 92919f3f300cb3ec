"""Who is on duty: the roster (shifts in a site's local time) plus each person's manual
override, evaluated at one instant.

A pure function of (roster, overrides, instant), so assignment and escalation (which pass the
alert's event time) and the pages (which pass "now") agree, and tests can pick any instant,
DST change or midnight included. Shifts are wall-clock times of the site's zone: a night shift
"22:00 to 06:00" is 8 hours on an ordinary night, 7 or 9 on a DST night, because people work
by the clock on the wall.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from psycopg.rows import tuple_row

from kernel.db import Conn
from kernel.i18n import N_


class DutyOverride(StrEnum):
    """A manual override of the roster for one person (none: the roster decides)."""

    ON = "on"
    OFF = "off"


DUTY_OVERRIDE_LABELS: dict[str, str] = {
    DutyOverride.ON: N_("On duty (manual)"),
    DutyOverride.OFF: N_("Off duty (manual)"),
}


@dataclass(frozen=True)
class Shift:
    """One person on duty at a site between two local wall-clock times of `timezone`."""

    user_id: int
    starts_local: datetime  # naive: the site's wall clock
    ends_local: datetime  # naive, after starts_local (a night shift ends the next day)
    timezone: str

    def instants(self) -> tuple[datetime, datetime]:
        """The shift's start and end as UTC instants. In the hour repeated in autumn the
        start is read as its first occurrence and the end as its second, so the shift takes
        the longer reading rather than silently losing an hour. A wall time skipped in spring
        does not exist; it is read with the offset before the change (start) or after it
        (end), as zoneinfo does for fold=0 and fold=1."""
        zone = ZoneInfo(self.timezone)
        start = self.starts_local.replace(tzinfo=zone, fold=0).astimezone(UTC)
        end = self.ends_local.replace(tzinfo=zone, fold=1).astimezone(UTC)
        return start, end

    def covers(self, instant: datetime) -> bool:
        """Whether the shift is running at `instant` (aware): start included, end excluded."""
        start, end = self.instants()
        return start <= instant.astimezone(UTC) < end


def on_duty(shifts: Iterable[Shift], overrides: Mapping[int, DutyOverride | None],
            instant: datetime) -> frozenset[int]:
    """The people on duty at `instant`: those a shift covers, plus those with the override
    ON, minus those with the override OFF. `overrides` also names people without shifts."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    rostered = {s.user_id for s in shifts if s.covers(instant)}
    forced_on = {u for u, o in overrides.items() if o is DutyOverride.ON}
    forced_off = {u for u, o in overrides.items() if o is DutyOverride.OFF}
    return frozenset((rostered | forced_on) - forced_off)


def override_of(on_duty_flag: bool, forced_off: bool) -> DutyOverride | None:
    """The override stored in users.on_duty / users.duty_forced_off."""
    if forced_off:
        return DutyOverride.OFF
    return DutyOverride.ON if on_duty_flag else None


# Shifts that may cover an instant: local times within two days of it either way (a site's
# offset is within ±14 h and a shift lasts at most 48 h, migration 0013).
_SITE_SHIFTS = """
SELECT sh.user_id, sh.starts_local, sh.ends_local, s.timezone
FROM shifts sh JOIN sites s ON s.id = sh.site_id
WHERE sh.site_id = %(site)s AND sh.starts_local < %(hi)s AND sh.ends_local > %(lo)s
"""
_SITE_PEOPLE = """
SELECT id, on_duty, duty_forced_off FROM users
WHERE site_id = %(site)s AND role = ANY(%(roles)s) AND active
"""
_WINDOW = timedelta(days=3)


def on_duty_at_site(conn: Conn, site_id: str, instant: datetime,
                    roles: tuple[str, ...] = ("care_worker", "duty_officer")
                    ) -> frozenset[int]:
    """The active people of `roles` on duty at a site at `instant`, read with a (sync)
    psycopg connection and decided by `on_duty`."""
    naive = instant.astimezone(UTC).replace(tzinfo=None)
    params = {"site": site_id, "lo": naive - _WINDOW, "hi": naive + _WINDOW,
              "roles": list(roles)}
    with conn.cursor(row_factory=tuple_row) as cur:
        people = cur.execute(_SITE_PEOPLE, params).fetchall()
        overrides = {int(r[0]): override_of(bool(r[1]), bool(r[2])) for r in people}
        shifts = [Shift(int(r[0]), r[1], r[2], str(r[3]))
                  for r in cur.execute(_SITE_SHIFTS, params).fetchall()
                  if int(r[0]) in overrides]
    return on_duty(shifts, overrides, instant)

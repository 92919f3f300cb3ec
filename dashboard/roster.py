"""The duty roster API: a site's shifts (local wall-clock times of the site's zone) and who
is on duty at an instant (kernel.roster decides; assignment and escalation use the same).

Administrators manage every site's roster, duty officers their own site's; care workers may
read their own site's roster. Family members get 403.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg
from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from dashboard.audit import audited
from dashboard.auth import CurrentUser
from dashboard.deps import AsyncConn, ConnDep
from dashboard.errors import FieldRefusal
from dashboard.models import BoundedTime, UserOut
from dashboard.params import MAX_ID, SITE_REGEX, IdPath
from dashboard.scope import not_found
from kernel.accounts import Role
from kernel.audit import Action
from kernel.i18n import N_, Said
from kernel.roster import Shift, on_duty, override_of

logger = logging.getLogger(__name__)
router = APIRouter(tags=["roster"])

SitePath = Annotated[str, Path(pattern=SITE_REGEX)]
MAX_SPAN = timedelta(days=62)
MAX_SHIFT = timedelta(hours=48)
EARLIEST_LOCAL = datetime(2000, 1, 1)
LATEST_LOCAL = datetime(2200, 1, 1)


class ShiftIn(BaseModel):
    """A shift: who, from when to when (wall-clock times of the site, without offset)."""

    model_config = ConfigDict(extra="forbid")

    user_id: int = Field(ge=1, le=MAX_ID)
    starts_local: datetime = Field(description="Site-local wall time, e.g. 2026-03-02T22:00")
    ends_local: datetime = Field(description="Later than starts_local; at most 48 h later.")


class ShiftOut(BaseModel):
    """A stored shift with its instants (UTC) as the site's zone makes them."""

    model_config = ConfigDict(frozen=True)

    id: int
    user_id: int
    username: str
    full_name: str
    role: Role
    starts_local: datetime
    ends_local: datetime
    starts_at: datetime
    ends_at: datetime


class RosterOut(BaseModel):
    """A site's shifts in a period and who is on duty at `at`."""

    model_config = ConfigDict(frozen=True)

    site_id: str
    timezone: str
    at: datetime
    on_duty: list[int] = Field(description="Ids of the people on duty at `at` (roster or "
                                           "override).")
    shifts: list[ShiftOut]


def _check_site_access(user: UserOut, site: str, write: bool) -> None:
    if user.role is Role.ADMIN:
        return
    own_site = user.role in (Role.DUTY_OFFICER, Role.CARE_WORKER) and user.site_id == site
    if own_site and (not write or user.role is Role.DUTY_OFFICER):
        return
    raise HTTPException(status.HTTP_403_FORBIDDEN,
                        N_("Only administrators and this site's duty officers manage its roster")
                        if write else N_("You cannot see this site's roster"))


async def _site_zone(conn: AsyncConn, site: str) -> str:
    cur = await conn.execute("SELECT timezone FROM sites WHERE id = %s", (site,))
    row = await cur.fetchone()
    if row is None:
        raise not_found(N_("Site"))
    return str(row[0])


def _naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        raise ValueError(N_("give the site's wall-clock time without an offset"))
    if not EARLIEST_LOCAL <= value < LATEST_LOCAL:
        raise ValueError(N_("must be between 2000 and 2200"))
    return value


async def is_on_duty(conn: AsyncConn, user_id: int, instant: datetime) -> bool:
    """Whether one person is on duty at `instant` (their override, else their shifts)."""
    cur = await conn.execute(
        "SELECT u.on_duty, u.duty_forced_off, s.timezone FROM users u "
        "LEFT JOIN sites s ON s.id = u.site_id WHERE u.id = %s", (user_id,))
    row = await cur.fetchone()
    if row is None or row[2] is None:
        return bool(row and row[0])
    naive = instant.astimezone(UTC).replace(tzinfo=None)
    cur = await conn.execute(
        "SELECT starts_local, ends_local FROM shifts WHERE user_id = %s "
        "AND starts_local < %s AND ends_local > %s",
        (user_id, naive + timedelta(days=3), naive - timedelta(days=3)))
    shifts = [Shift(user_id, r[0], r[1], str(row[2])) for r in await cur.fetchall()]
    return user_id in on_duty(shifts, {user_id: override_of(bool(row[0]), bool(row[1]))},
                              instant)


async def _refuse_overlap(conn: AsyncConn, user_id: int, starts: datetime, ends: datetime
                          ) -> None:
    """409 when the person already has a shift in [starts, ends): one person cannot be on two
    shifts at once, and a double entry would hide a gap in the roster."""
    cur = await conn.execute(
        "SELECT starts_local, ends_local FROM shifts WHERE user_id = %s "
        "AND starts_local < %s AND ends_local > %s ORDER BY starts_local LIMIT 1",
        (user_id, ends, starts))
    clash = await cur.fetchone()
    if clash is not None:
        raise FieldRefusal("starts_local", Said(N_("Overlaps this person's shift {start} – {end}"),
                                start=f"{clash[0]:%Y-%m-%d %H:%M}",
                                end=f"{clash[1]:%Y-%m-%d %H:%M}"),
                           kind="conflict", status_code=status.HTTP_409_CONFLICT)


@router.get("/sites/{site}/shifts", response_model=RosterOut,
            dependencies=[audited(Action.ROSTER_READ, "site", id_param="site")],
            responses={403: {"description": "Another site, or a family member"}})
async def list_shifts(site: SitePath, user: CurrentUser, conn: ConnDep,
                      from_: Annotated[BoundedTime | None, Query(alias="from")] = None,
                      to: Annotated[BoundedTime | None, Query()] = None,
                      at: Annotated[BoundedTime | None, Query(
                          description="Instant for `on_duty` (default: now).")] = None,
                      ) -> RosterOut:
    """Shifts overlapping [from, to) (default: the 7 days from now) and who is on duty."""
    _check_site_access(user, site, write=False)
    zone = await _site_zone(conn, site)
    instant = at or datetime.now(UTC)
    start = from_ or instant
    end = to or start + timedelta(days=7)
    if not start < end <= start + MAX_SPAN:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            N_("'to' must be after 'from' and at most 62 days later"))
    lo = min(start, instant).replace(tzinfo=None) - timedelta(days=3)
    hi = max(end, instant).replace(tzinfo=None) + timedelta(days=3)
    cur = await conn.execute(
        "SELECT sh.id, sh.user_id, u.username, u.full_name, u.role, sh.starts_local, "
        "sh.ends_local FROM shifts sh JOIN users u ON u.id = sh.user_id "
        "WHERE sh.site_id = %s AND u.active AND sh.starts_local < %s AND sh.ends_local > %s "
        "ORDER BY sh.starts_local, sh.id", (site, hi, lo))
    rows = await cur.fetchall()
    shifts = [Shift(int(r[1]), r[5], r[6], zone) for r in rows]
    people = await conn.execute(
        "SELECT id, on_duty, duty_forced_off FROM users WHERE site_id = %s AND active "
        "AND role IN ('duty_officer', 'care_worker')", (site,))
    overrides = {int(r[0]): override_of(bool(r[1]), bool(r[2]))
                 for r in await people.fetchall()}
    out = []
    for r, shift in zip(rows, shifts, strict=True):
        s_at, e_at = shift.instants()
        if s_at < end and e_at > start:
            out.append(ShiftOut(id=r[0], user_id=r[1], username=r[2], full_name=r[3],
                                role=Role(r[4]), starts_local=r[5], ends_local=r[6],
                                starts_at=s_at, ends_at=e_at))
    duty = on_duty([s for s in shifts if s.user_id in overrides], overrides, instant)
    return RosterOut(site_id=site, timezone=zone, at=instant, on_duty=sorted(duty), shifts=out)


@router.post("/sites/{site}/shifts", response_model=ShiftOut,
             dependencies=[audited(Action.ROSTER_CHANGE, "site", id_param="site")],
             status_code=status.HTTP_201_CREATED,
             responses={403: {"description": "Not an administrator or this site's duty "
                                             "officer"}})
async def add_shift(site: SitePath, body: ShiftIn, user: CurrentUser, conn: ConnDep
                    ) -> ShiftOut:
    """Put a duty officer or care worker of the site on the roster."""
    _check_site_access(user, site, write=True)
    zone = await _site_zone(conn, site)
    try:
        starts, ends = _naive(body.starts_local), _naive(body.ends_local)
    except ValueError as exc:
        raise FieldRefusal("starts_local", str(exc)) from None
    if not starts < ends <= starts + MAX_SHIFT:
        raise FieldRefusal("ends_local",
                           N_("The shift must end after it starts and last at most 48 h"))
    cur = await conn.execute(
        "SELECT username, full_name, role FROM users WHERE id = %s AND site_id = %s AND active "
        "AND role IN ('duty_officer', 'care_worker')", (body.user_id, site))
    person = await cur.fetchone()
    if person is None:
        raise FieldRefusal("user_id", N_("Choose an active duty officer or care worker of "
                                         "this site"))
    await _refuse_overlap(conn, body.user_id, starts, ends)
    try:
        cur = await conn.execute(
            "INSERT INTO shifts (site_id, user_id, starts_local, ends_local) "
            "VALUES (%s, %s, %s, %s) RETURNING id", (site, body.user_id, starts, ends))
    except psycopg.errors.CheckViolation:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, N_("invalid shift")) from None
    row = await cur.fetchone()
    assert row is not None
    s_at, e_at = Shift(body.user_id, starts, ends, zone).instants()
    logger.info("user %s added shift %s for user %s at %s", user.username, row[0],
                body.user_id, site)
    return ShiftOut(id=row[0], user_id=body.user_id, username=person[0], full_name=person[1],
                    role=Role(person[2]), starts_local=starts, ends_local=ends,
                    starts_at=s_at, ends_at=e_at)


@router.delete("/sites/{site}/shifts/{shift_id}", status_code=status.HTTP_204_NO_CONTENT,
               dependencies=[audited(Action.ROSTER_CHANGE, "site", id_param="site")],
               responses={403: {"description": "Not an administrator or this site's duty "
                                               "officer"}})
async def remove_shift(site: SitePath, shift_id: IdPath, user: CurrentUser,
                       conn: ConnDep) -> None:
    """Take a shift off the roster."""
    _check_site_access(user, site, write=True)
    cur = await conn.execute("DELETE FROM shifts WHERE id = %s AND site_id = %s",
                             (shift_id, site))
    if cur.rowcount == 0:
        raise not_found(N_("Shift"))
    logger.info("user %s removed shift %s at %s", user.username, shift_id, site)

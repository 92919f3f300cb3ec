"""GET /api/v1/family/residents and /family/residents/{id}/summary: the family view.

Only family accounts may call them (staff have the duty screen and the resident API: 403),
and only for the residents linked to them in family_contacts (any other id: 404, as for a
resident that does not exist). Alerts are given in family wording from a whitelist
(dashboard.models.family_alert / family_history): never notes, staff names or assignments.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from alerts.model import AlertStatus, Outcome
from alerts.vocabulary import FAMILY_OUTCOME_WORDS
from dashboard.audit import audited
from dashboard.auth import CurrentUser
from dashboard.deps import AsyncConn, ConnDep, StateDep
from dashboard.family import nights as nt
from dashboard.family import store
from dashboard.family.state import local_clock, presence
from dashboard.family.words import ALL_CLEAR
from dashboard.language import api_language
from dashboard.models import (
    FamilyAlertDetailOut,
    UserOut,
    family_alert,
    family_history,
)
from dashboard.params import IdPath
from dashboard.scope import not_found
from kernel.accounts import Role
from kernel.audit import Action
from kernel.i18n import N_, translate

logger = logging.getLogger(__name__)

router = APIRouter(tags=["family"])
RECENT_ALERTS = 10


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StateOut(_Out):
    """Where the relative is now."""

    kind: str = Field(description="in_bed, up, away, offline_reported, offline, no_sensor, "
                                  "no_data")
    since: datetime | None
    text: str = Field(description='In plain words, e.g. "In bed since 22:14".')


class FamilyResidentOut(_Out):
    """A resident the family member is linked to, with their state now."""

    id: int
    full_name: str
    relation: str
    timezone: str = Field(description="The zone every time of this resident is told in.")
    state: StateOut
    active_alerts: int = Field(description="Alerts still open or being handled.")


class ComparedOut(_Out):
    """A night's value next to the person's usual (median of the previous 14 nights)."""

    value: float | None
    usual: float | None
    kind: str = Field(description="usual, higher, lower or unknown")
    text: str = Field(description='e.g. "about usual", "not enough nights yet".')


class LastNightOut(_Out):
    """The night that ended most recently (22:00-07:00 local, docs/storage.md)."""

    day: date
    start: datetime
    end: datetime
    time_in_bed_s: int | None
    night_exits: int | None = Field(description="Times up at night.")
    resting_hr: ComparedOut
    breathing: ComparedOut


class DayOut(_Out):
    """One night of the last 7 and its local day."""

    day: date
    time_in_bed_s: int | None
    night_exits: int | None
    resting_hr: float | None = Field(description="Resting heart rate of the night, beats "
                                                 "per minute (the 7-day chart).")
    alerts: int


class FamilyRecentAlertOut(FamilyAlertDetailOut):
    """An alert with its story in family words and the all-clear this user was sent."""

    told: bool = Field(description="Whether you were notified of it.")
    all_clear: str | None = Field(description='e.g. "All clear at 10:42: a carer helped at '
                                              'home"; only after you were sent one.')


class FamilySummaryOut(_Out):
    """Everything the family page shows about one resident."""

    resident: FamilyResidentOut
    last_night: LastNightOut
    days: list[DayOut] = Field(description="The last 7 nights, oldest first.")
    alerts: list[FamilyRecentAlertOut] = Field(description="Newest first.")


def require_family(user: CurrentUser) -> UserOut:
    """403 for every role but family: the family view is about *their* relatives."""
    if user.role is not Role.FAMILY:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("The family view is for family accounts"))
    return user


FamilyUser = Annotated[UserOut, Depends(require_family)]


async def _resident(conn: AsyncConn, who: store.Linked, now: datetime, lang: str
                    ) -> FamilyResidentOut:
    state = presence(await store.bed_facts(conn, who.id, now), now, who.tz, lang=lang)
    cur = await conn.execute("SELECT count(*) FROM alerts WHERE resident_id = %s "
                             "AND status IN ('open', 'acknowledged') AND created_at <= %s",
                             (who.id, now))
    row = await cur.fetchone()
    return FamilyResidentOut(id=who.id, full_name=who.full_name, relation=who.relation,
                             timezone=who.tz.key,
                             state=StateOut(kind=state.kind, since=state.since,
                                            text=state.text),
                             active_alerts=int(row[0]) if row else 0)


_STAFF: dict[int | str, dict[str, Any]] = {403: {"description": "Not a family account"}}


@router.get("/family/residents", response_model=list[FamilyResidentOut], responses=_STAFF,
            dependencies=[audited(Action.RESIDENT_LIST, "resident")])
async def my_residents(user: FamilyUser, conn: ConnDep, app: StateDep, request: Request
                       ) -> list[FamilyResidentOut]:
    """The residents linked to you, each with their state now (in the request's language)."""
    now, lang = app.clock(), api_language(request)
    return [await _resident(conn, who, now, lang)
            for who in await store.linked(conn, user.id)]


@router.get("/family/residents/{resident_id}/summary", response_model=FamilySummaryOut,
            dependencies=[audited(Action.VITALS_READ, "resident", resident="resident_id")],
            responses={**_STAFF, 404: {"description": "Not a resident linked to you"}})
async def resident_summary(resident_id: IdPath, user: FamilyUser, conn: ConnDep, app: StateDep,
                           request: Request,
                           alerts: Annotated[int, Query(ge=1, le=50)] = RECENT_ALERTS
                           ) -> FamilySummaryOut:
    """State now, last night compared with the usual, the last 7 nights and recent alerts."""
    found = await store.linked(conn, user.id, resident_id)
    if not found:
        raise not_found(N_("Resident"))
    who, now, lang = found[0], app.clock(), api_language(request)
    day = nt.last_night(now, who.tz)
    week_from = day - timedelta(days=6)
    known = await store.nights(conn, who.id, who.tz, day - timedelta(days=nt.USUAL_NIGHTS),
                               day, week_from)
    recent = await store.recent_alerts(conn, who.id, user.id, now, alerts)
    return FamilySummaryOut(resident=await _resident(conn, who, now, lang),
                            last_night=_last_night(known, day, who, lang),
                            days=[DayOut(day=n.day, time_in_bed_s=n.time_in_bed_s,
                                         night_exits=n.night_exits,
                                         resting_hr=_round(n.resting_hr), alerts=n.alerts)
                                  for n in nt.week(known, day)],
                            alerts=[_family(a, now, who, lang) for a in recent])


def _last_night(known: list[nt.Night], day: date, who: store.Linked, lang: str
                ) -> LastNightOut:
    tonight = nt.week(known, day, 1)[0]
    before = nt.previous(known, day)
    start, end = nt.night_window(day, who.tz)

    def compared(value: float | None, usual: float | None, tolerance: float) -> ComparedOut:
        c = nt.compare(value, usual, tolerance)
        return ComparedOut(value=_round(c.value), usual=_round(c.usual), kind=c.kind,
                           text=translate(c.text, lang))

    return LastNightOut(
        day=day, start=start, end=end, time_in_bed_s=tonight.time_in_bed_s,
        night_exits=tonight.night_exits,
        resting_hr=compared(tonight.resting_hr, nt.usual([n.resting_hr for n in before]),
                            nt.HR_TOLERANCE),
        breathing=compared(tonight.median_rr, nt.usual([n.median_rr for n in before]),
                           nt.RR_TOLERANCE))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _family(staff: store.StaffAlert, now: datetime, who: store.Linked, lang: str
            ) -> FamilyRecentAlertOut:
    view = family_alert(staff.alert, lang)
    clear = None
    if staff.all_clear_at is not None:
        finished = staff.finished_at or staff.alert.resolved_at or staff.all_clear_at
        outcome = (Outcome.CANCELLED_BY_RESIDENT if staff.alert.status is AlertStatus.CANCELLED
                   else staff.alert.outcome or Outcome.OTHER)
        clear = translate(ALL_CLEAR, lang).format(
            time=local_clock(finished, now, who.tz, lang),
            outcome=translate(FAMILY_OUTCOME_WORDS.get(
                outcome, FAMILY_OUTCOME_WORDS[Outcome.OTHER]), lang))
    return FamilyRecentAlertOut(**view.model_dump(),
                                history=family_history(staff.alert, staff.history, lang),
                                told=staff.told, all_clear=clear)

"""Visits (巡访关爱): list, create and assign, record (arrive, checklist, findings, follow-up,
leave), "go and check" from an alert, and a resident's visit history.

Staff see the visits of their scope (care workers and duty officers: their site). A care
worker records only visits assigned to them (arriving at an unassigned one takes it) and
assigns only themselves; duty officers and admins assign anyone working at the visit's site.
Family members get GET /residents/{id}/visits alone, in family wording (`FamilyVisitOut`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from psycopg import sql

from dashboard.actions import require_alert
from dashboard.audit import AuditNote, audited
from dashboard.deps import AsyncConn, ConnDep
from dashboard.params import MAX_ID, IdPath, SiteQuery
from dashboard.scope import Scope, ScopeDep, Where, not_found
from dashboard.visit_models import AlertVisitIn, FamilyVisitOut, VisitIn, VisitOut, VisitPatch
from dashboard.visit_plans import PLANNING_ROLES, StaffScope, resident_due
from kernel.accounts import Role
from kernel.audit import Action, Target
from kernel.i18n import N_, Said, translate
from kernel.visits import VisitStatus, all_well, family_visit_summary, local_today

logger = logging.getLogger(__name__)

router = APIRouter(tags=["visits"])

_OPEN = "('planned', 'in_progress')"

_VISITS = f"""
SELECT v.id, v.resident_id, r.full_name AS resident_name, v.site_id, v.alert_id, v.status,
       v.due_on,
       v.status IN {_OPEN} AND v.due_on < (%(now)s AT TIME ZONE s.timezone)::date AS overdue,
       v.assigned_to, COALESCE(NULLIF(u.full_name, ''), u.username) AS assigned_name,
       v.created_by, v.created_at, v.arrived_at, v.left_at, v.findings, v.checklist,
       v.follow_up, v.follow_up_note
FROM visits v
JOIN residents r ON r.id = v.resident_id
JOIN sites s ON s.id = v.site_id
LEFT JOIN users u ON u.id = v.assigned_to
{{where}}
ORDER BY {{order}}
LIMIT %(limit)s
"""

_OPEN_FIRST = sql.SQL(f"(v.status IN {_OPEN}) DESC, "
                      "CASE WHEN v.status IN ('planned', 'in_progress') THEN v.due_on END, "
                      "COALESCE(v.left_at, v.arrived_at, v.created_at) DESC, v.id DESC")
_NEWEST_FIRST = sql.SQL("COALESCE(v.arrived_at, v.created_at) DESC, v.id DESC")

_FIELDS = list(VisitOut.model_fields)

Limit = Annotated[int, Query(ge=1, le=500, description="At most this many visits.")]


async def fetch_visits(conn: AsyncConn, where: Where, *, now: datetime, limit: int,
                       order: sql.Composable = _OPEN_FIRST) -> list[VisitOut]:
    """Visits matching `where` (alias v; r, s, u joined)."""
    query = sql.SQL(_VISITS).format(where=where.clause(), order=order)
    cur = await conn.execute(query, {**where.params, "now": now, "limit": limit})
    return [VisitOut(**dict(zip(_FIELDS, row, strict=True))) for row in await cur.fetchall()]


async def _visit(conn: AsyncConn, scope: Scope, visit_id: int) -> VisitOut:
    """One visit in scope (404 otherwise)."""
    where = Where()
    where.add("v.id = %(visit_id)s", visit_id=visit_id)
    scope.restrict_alerts(where, "v")  # same columns: site_id, resident_id
    found = await fetch_visits(conn, where, now=datetime.now(UTC), limit=1)
    if not found:
        raise not_found(N_("Visit"))
    return found[0]


async def _check_assignee(conn: AsyncConn, scope: Scope, site: str, user_id: int | None
                          ) -> None:
    """422 unless `user_id` works at `site`; 403 when a care worker assigns someone else."""
    if user_id is None:
        return
    if scope.user.role is Role.CARE_WORKER and user_id != scope.user.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("Care workers can only take visits themselves"))
    cur = await conn.execute(
        "SELECT 1 FROM users WHERE id = %s AND active AND site_id = %s "
        "AND role IN ('care_worker', 'duty_officer')", (user_id, site))
    if await cur.fetchone() is None:
        raise RequestValidationError([{
            "loc": ("body", "assigned_to"), "type": "value_error",
            "msg": f"user {user_id} is not an active care worker or duty officer of site "
                   f"'{site}'"}])


async def _site_today(conn: AsyncConn, site: str, now: datetime) -> date:
    """The date at the site: a visit made from an alert is due today there."""
    cur = await conn.execute("SELECT timezone FROM sites WHERE id = %s", (site,))
    row = await cur.fetchone()
    return local_today(now, row[0] if row else "UTC")


async def _insert(conn: AsyncConn, scope: Scope, resident_id: int, assigned_to: int | None,
                  due_on: date | None, alert_id: int | None) -> int:
    """Store a new visit for a resident in scope; return its id."""
    now = datetime.now(UTC)
    due = await resident_due(conn, resident_id, now)
    await _check_assignee(conn, scope, due.site_id, assigned_to)
    if due_on is None:
        due_on = await _site_today(conn, due.site_id, now) if alert_id else due.due_on
    cur = await conn.execute(
        "INSERT INTO visits (resident_id, site_id, alert_id, due_on, assigned_to, created_by) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (resident_id, due.site_id, alert_id, due_on, assigned_to, scope.user.id))
    row = await cur.fetchone()
    assert row is not None
    logger.info("user %s planned visit %d to resident %d (assigned to %s%s)",
                scope.user.username, row[0], resident_id, assigned_to,
                f", from alert {alert_id}" if alert_id else "")
    return int(row[0])


# --- routes -----------------------------------------------------------------------------------


@router.get("/visits", response_model=list[VisitOut])
async def list_visits(
        note: Annotated[AuditNote, audited(Action.VISIT_READ, "visit")],
        scope: StaffScope, conn: ConnDep, site: SiteQuery = None,
        worker: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Assigned to this "
                                            "user.")] = None,
        visit_status: Annotated[VisitStatus | None, Query(
            alias="status", description="Only visits in this state; `open` is not a state: "
            "use open=true.")] = None,
        open_only: Annotated[bool, Query(alias="open", description="Only planned or under "
                                         "way.")] = False,
        overdue: Annotated[bool, Query(description="Only open visits past their due "
                                       "date.")] = False,
        resident: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        alert: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Made from this "
                                           "alert.")] = None,
        limit: Limit = 100) -> list[VisitOut]:
    """Visits in scope: open ones first (soonest due first), then the latest done."""
    note.target = Target("visit", None, resident)
    scope.check_site(site)
    where = Where()
    scope.restrict_alerts(where, "v")
    filters: dict[str, tuple[str, object]] = {
        "site": ("v.site_id = %(site)s", site), "worker": ("v.assigned_to = %(worker)s", worker),
        "status": ("v.status = %(status)s", visit_status and visit_status.value),
        "resident": ("v.resident_id = %(resident)s", resident),
        "alert": ("v.alert_id = %(alert)s", alert),
    }
    for name, (condition, value) in filters.items():
        if value is not None:
            where.add(condition, **{name: value})
    if open_only or overdue:
        where.add(f"v.status IN {_OPEN}")
    if overdue:
        where.add("v.due_on < (%(now)s AT TIME ZONE s.timezone)::date")
    found = await fetch_visits(conn, where, now=datetime.now(UTC), limit=limit)
    note.detail.update(site=site, visits=[v.id for v in found])
    return found


@router.post("/visits", response_model=VisitOut, status_code=status.HTTP_201_CREATED,
             responses={403: {"description": "Family accounts; care workers assigning "
                                             "someone else"}})
async def create_visit(note: Annotated[AuditNote, audited(Action.VISIT_CREATE, "visit")],
                       body: VisitIn, scope: StaffScope, conn: ConnDep) -> VisitOut:
    """Plan a visit (care workers: to themselves, by default and at most)."""
    note.target = Target("visit", None, body.resident_id)
    await scope.require_resident(conn, body.resident_id)
    assigned = body.assigned_to
    if assigned is None and scope.user.role is Role.CARE_WORKER:
        assigned = scope.user.id
    visit_id = await _insert(conn, scope, body.resident_id, assigned, body.due_on, None)
    note.target = Target("visit", visit_id, body.resident_id)
    note.detail.update(after={"assigned_to": assigned, "due_on": body.due_on})
    return await _visit(conn, scope, visit_id)


@router.get("/visits/{visit_id}", response_model=VisitOut)
async def get_visit(note: Annotated[AuditNote, audited(Action.VISIT_READ, "visit",
                                                     id_param="visit_id")],
                    visit_id: IdPath, scope: StaffScope, conn: ConnDep) -> VisitOut:
    """One visit in scope."""
    visit = await _visit(conn, scope, visit_id)
    note.target = Target("visit", visit_id, visit.resident_id)
    return visit


@router.patch("/visits/{visit_id}", response_model=VisitOut,
              responses={409: {"description": "Not possible in the visit's state"}})
async def record_visit(note: Annotated[AuditNote, audited(Action.VISIT_CHANGE, "visit",
                                                        id_param="visit_id")],
                       visit_id: IdPath, body: VisitPatch, scope: StaffScope, conn: ConnDep
                       ) -> VisitOut:
    """Arrive, leave or cancel, and record what was found; absent fields stay as they are."""
    visit = await _visit(conn, scope, visit_id)
    note.target = Target("visit", visit_id, visit.resident_id)
    _may_record(scope, visit)
    if "assigned_to" in body.model_fields_set:
        await _check_assignee(conn, scope, visit.site_id, body.assigned_to)
    changes = _changes(scope, visit, body, datetime.now(UTC))
    note.detail.update(before={k: getattr(visit, k, None) for k in changes},
                       after={**changes, **({"checklist": {**visit.checklist, **body.checklist}}
                                            if body.checklist is not None else {})})
    if changes:
        names = sql.SQL(", ").join(
            sql.SQL("{} = %({})s").format(sql.Identifier(k), sql.SQL(k)) for k in changes)
        query = sql.SQL("UPDATE visits SET {}, updated_at = now() "
                        "WHERE id = %(id)s AND status = %(was)s").format(names)
        cur = await conn.execute(query, {**changes, "id": visit_id, "was": visit.status.value})
        if cur.rowcount != 1:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                N_("Someone else changed this visit just now; reload it"))
        logger.info("user %s recorded visit %d: %s", scope.user.username, visit_id,
                    ", ".join(sorted(changes)))
    return await _visit(conn, scope, visit_id)


def _may_record(scope: Scope, visit: VisitOut) -> None:
    """403 when a care worker records someone else's visit."""
    if scope.user.role is not Role.CARE_WORKER:
        return
    if visit.assigned_to not in (None, scope.user.id):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            Said(N_("This visit is assigned to {name}"), name=visit.assigned_name)
                            if visit.assigned_name else
                            N_("This visit is assigned to someone else"))


def _changes(scope: Scope, visit: VisitOut, body: VisitPatch, now: datetime
             ) -> dict[str, object]:
    """The columns a PATCH sets, after checking the transition (409 when not possible)."""
    if visit.status is VisitStatus.CANCELLED or (
            visit.status is VisitStatus.COMPLETED and body.action is not None):
        raise HTTPException(status.HTTP_409_CONFLICT,
                            N_("This visit is already cancelled")
                            if visit.status is VisitStatus.CANCELLED
                            else N_("This visit is already completed"))
    changes: dict[str, object] = {}
    for name in ("findings", "follow_up", "follow_up_note", "assigned_to"):
        if name in body.model_fields_set:
            changes[name] = getattr(body, name)
    if changes.get("findings", "") is None:
        changes["findings"] = ""
    if body.checklist is not None:
        changes["checklist"] = json.dumps({**visit.checklist, **body.checklist})
    if body.action == "arrive":
        if visit.status is not VisitStatus.PLANNED:
            raise HTTPException(status.HTTP_409_CONFLICT, N_("You have already arrived"))
        changes.update(status=VisitStatus.IN_PROGRESS.value, arrived_at=now)
        if visit.assigned_to is None and "assigned_to" not in changes:
            changes["assigned_to"] = scope.user.id
    elif body.action == "leave":
        if visit.status is not VisitStatus.IN_PROGRESS:
            raise HTTPException(status.HTTP_409_CONFLICT, N_("Record your arrival first"))
        changes.update(status=VisitStatus.COMPLETED.value, left_at=now)
    elif body.action == "cancel":
        if scope.user.role not in PLANNING_ROLES and visit.assigned_to != scope.user.id:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                N_("Only the assigned carer, a duty officer or an admin "
                                   "cancels a visit"))
        changes["status"] = VisitStatus.CANCELLED.value
    return changes


@router.post("/alerts/{alert_id}/visit", response_model=VisitOut,
             status_code=status.HTTP_201_CREATED, tags=["alerts"],
             responses={409: {"description": "An open visit for this alert exists"}})
async def visit_from_alert(note: Annotated[AuditNote, audited(Action.VISIT_CREATE, "visit")],
                           alert_id: IdPath, scope: StaffScope, conn: ConnDep,
                           body: AlertVisitIn | None = None) -> VisitOut:
    """"Go and check": a visit to the alert's resident, due today, linked to the alert."""
    note.detail["alert_id"] = alert_id
    await require_alert(conn, scope, alert_id)
    cur = await conn.execute(
        "SELECT a.resident_id, a.assigned_to, "
        f"(SELECT v.id FROM visits v WHERE v.alert_id = a.id AND v.status IN {_OPEN} "
        " LIMIT 1) FROM alerts a WHERE a.id = %s", (alert_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found(N_("Alert"))
    resident_id, alert_assignee, existing = row
    if existing is not None:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            Said(N_("A visit for this alert is already planned (visit {visit})"),
                                 visit=existing))
    assigned = body.assigned_to if body and body.assigned_to else None
    if assigned is None:
        assigned = scope.user.id if scope.user.role is Role.CARE_WORKER else (
            await _usable_assignee(conn, alert_assignee, int(resident_id)))
    visit_id = await _insert(conn, scope, int(resident_id), assigned, None, alert_id)
    note.target = Target("visit", visit_id, int(resident_id))
    note.detail.update(after={"assigned_to": assigned})
    return await _visit(conn, scope, visit_id)


async def _usable_assignee(conn: AsyncConn, user_id: int | None, resident_id: int
                           ) -> int | None:
    """The alert's assignee if they could take the visit (active staff of the resident's
    site), else nobody: a default must never turn into a field error."""
    if user_id is None:
        return None
    cur = await conn.execute(
        "SELECT 1 FROM users u JOIN residents r ON r.site_id = u.site_id WHERE u.id = %s "
        "AND r.id = %s AND u.active AND u.role IN ('care_worker', 'duty_officer')",
        (user_id, resident_id))
    return user_id if await cur.fetchone() else None


VisitHistory = list[VisitOut] | list[FamilyVisitOut]


@router.get("/residents/{resident_id}/visits", response_model=VisitHistory,
            tags=["residents"],
            dependencies=[audited(Action.VISIT_READ, "resident", resident="resident_id")])
async def resident_visits(
        resident_id: IdPath, scope: ScopeDep, conn: ConnDep,
        limit: Annotated[int, Query(ge=1, le=50, description="At most this many.")] = 5,
) -> VisitHistory:
    """A resident's visits, newest first. Family members: visits that took place, in their
    words (`[{id, started_at, ended_at, summary}]`), no notes, names or checklist."""
    await scope.require_resident(conn, resident_id)
    where = Where()
    where.add("v.resident_id = %(rid)s", rid=resident_id)
    family = scope.user.role is Role.FAMILY
    if family:
        where.add("v.arrived_at IS NOT NULL AND v.status IN ('in_progress', 'completed')")
    visits = await fetch_visits(conn, where, now=datetime.now(UTC), limit=limit,
                                order=_NEWEST_FIRST)
    if not family:
        return visits
    return [_family_visit(v) for v in visits]


def _family_visit(visit: VisitOut) -> FamilyVisitOut:
    """The family's view of a visit that took place (whitelisted fields)."""
    assert visit.arrived_at is not None
    words = family_visit_summary(visit.status, all_well(visit.checklist, visit.follow_up))
    return FamilyVisitOut(id=visit.id, started_at=visit.arrived_at, ended_at=visit.left_at,
                          summary=translate(words))


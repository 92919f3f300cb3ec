"""Visit plans (GET/PUT /sites/{site}/visit-plan, /residents/{id}/visit-plan) and who is
due a visit (GET /visits/due).

A site's default interval applies unless the resident has their own; the due date itself is
`kernel.visits.next_due` (pure), fed here with the last completed visit and the site's zone.
Staff only: family members see visits through GET /residents/{id}/visits alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from psycopg import sql

from dashboard.audit import AuditNote, audited
from dashboard.deps import AsyncConn, ConnDep
from dashboard.params import SITE_REGEX, IdPath, SiteQuery
from dashboard.scope import Scope, ScopeDep, Where, not_found
from dashboard.visit_models import (
    DueOut,
    ResidentPlanIn,
    ResidentPlanOut,
    SitePlanIn,
    SitePlanOut,
)
from kernel.accounts import Role
from kernel.audit import Action
from kernel.i18n import N_
from kernel.visits import (
    DEFAULT_HIGH_RISK_DAYS,
    DEFAULT_INTERVAL_DAYS,
    Plan,
    local_today,
    next_due,
)

logger = logging.getLogger(__name__)

router = APIRouter(tags=["visits"])

STAFF_ROLES = frozenset({Role.ADMIN, Role.DUTY_OFFICER, Role.CARE_WORKER})
PLANNING_ROLES = frozenset({Role.ADMIN, Role.DUTY_OFFICER})

_PLAN_ROWS = """
SELECT r.id, r.full_name, r.site_id, r.address, r.created_at, s.timezone,
       CASE WHEN cardinality(r.risks) > 0
            THEN COALESCE(sp.high_risk_interval_days, %(high_risk_days)s)
            ELSE COALESCE(sp.interval_days, %(default_days)s) END, rp.interval_days,
       (SELECT max(d.left_at) FROM visits d
        WHERE d.resident_id = r.id AND d.status = 'completed'),
       o.id, o.assigned_to, COALESCE(NULLIF(u.full_name, ''), u.username), o.due_on
FROM residents r
JOIN sites s ON s.id = r.site_id
LEFT JOIN visit_site_plans sp ON sp.site_id = r.site_id
LEFT JOIN visit_resident_plans rp ON rp.resident_id = r.id
LEFT JOIN LATERAL (SELECT v.id, v.assigned_to, v.due_on FROM visits v
                   WHERE v.resident_id = r.id AND v.status IN ('planned', 'in_progress')
                   ORDER BY v.due_on, v.id LIMIT 1) o ON true
LEFT JOIN users u ON u.id = o.assigned_to
{where}
ORDER BY r.site_id, r.full_name, r.id
"""


def staff_scope(scope: ScopeDep) -> Scope:
    """Dependency: the caller's scope if they are staff (family members: 403)."""
    if scope.user.role not in STAFF_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Family accounts see visits on their "
                                                          "relative's page only"))
    return scope


StaffScope = Annotated[Scope, Depends(staff_scope)]


def due_scope(scope: ScopeDep) -> Scope:
    """Dependency: staff, or a wall display (its "visits overdue" panel; the display may
    call nothing else of visits, dashboard.auth.DISPLAY_ROUTES)."""
    if scope.user.role is Role.DISPLAY:
        return scope
    return staff_scope(scope)


def require_planner(scope: Scope) -> None:
    """403 unless the caller may change plans (admins, duty officers)."""
    if scope.user.role not in PLANNING_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("Only duty officers and administrators change visit plans"))


async def plan_rows(conn: AsyncConn, where: Where, now: datetime) -> list[DueOut]:
    """Every resident matching `where` (alias r) with their plan and due date: their own
    interval, else the site's high-risk interval when they carry any risk category (the
    ledger's `risks`), else the site's default."""
    query = sql.SQL(_PLAN_ROWS).format(where=where.clause())
    cur = await conn.execute(query, {**where.params, "default_days": DEFAULT_INTERVAL_DAYS,
                                     "high_risk_days": DEFAULT_HIGH_RISK_DAYS})
    out = []
    for (rid, name, site, address, registered, tz_name, site_days, own_days, last,
         open_id, open_to, open_name, open_due) in await cur.fetchall():
        plan = Plan(site_interval_days=int(site_days), override_days=own_days)
        due = next_due(last, registered, plan.interval_days, now, tz_name, open_due)
        out.append(DueOut(resident_id=rid, resident_name=name, site_id=site, address=address,
                          interval_days=plan.interval_days, last_visit_at=last,
                          last_visit_on=local_today(last, tz_name) if last else None,
                          due_on=due.due_on, overdue=due.overdue,
                          days_overdue=due.days_overdue, open_visit_id=open_id,
                          open_visit_assigned_to=open_to,
                          open_visit_assignee=open_name if open_id else None))
    return out


async def resident_due(conn: AsyncConn, resident_id: int, now: datetime) -> DueOut:
    """One resident's plan and due date (the caller has checked the scope)."""
    where = Where()
    where.add("r.id = %(rid)s", rid=resident_id)
    rows = await plan_rows(conn, where, now)
    if not rows:
        raise not_found(N_("Resident"))
    return rows[0]


@router.get("/visits/due", response_model=list[DueOut],
            dependencies=[audited(Action.VISIT_PLAN_READ, "visit_plan")])
async def visits_due(scope: Annotated[Scope, Depends(due_scope)], conn: ConnDep,
                     site: SiteQuery = None,
                     overdue: Annotated[bool, Query(description="Only residents whose visit "
                                                    "is overdue.")] = False,
                     ) -> list[DueOut]:
    """Active residents in scope with their next visit by the plan, most overdue first."""
    rows = await plan_rows(conn, scope.active_residents(site), datetime.now(UTC))
    if overdue:
        rows = [row for row in rows if row.overdue]
    return sorted(rows, key=lambda row: (-row.days_overdue, row.due_on, row.resident_name))


# --- site plans -----------------------------------------------------------------------------


SitePath = Annotated[str, Path(pattern=SITE_REGEX, description="Site id.")]


async def _site_plan(conn: AsyncConn, scope: Scope, site: str) -> SitePlanOut:
    scope.check_site(site)
    cur = await conn.execute(
        "SELECT s.id, COALESCE(p.interval_days, %s), COALESCE(p.high_risk_interval_days, %s) "
        "FROM sites s LEFT JOIN visit_site_plans p ON p.site_id = s.id WHERE s.id = %s",
        (DEFAULT_INTERVAL_DAYS, DEFAULT_HIGH_RISK_DAYS, site))
    row = await cur.fetchone()
    if row is None:
        raise not_found(N_("Site"))
    return SitePlanOut(site_id=row[0], interval_days=row[1], high_risk_interval_days=row[2])


@router.get("/sites/{site}/visit-plan", response_model=SitePlanOut,
            dependencies=[audited(Action.VISIT_PLAN_READ, "site", id_param="site")])
async def get_site_plan(site: SitePath, scope: StaffScope, conn: ConnDep) -> SitePlanOut:
    """A site's default intervals (30 and 7 days until someone sets them)."""
    return await _site_plan(conn, scope, site)


@router.put("/sites/{site}/visit-plan", response_model=SitePlanOut)
async def put_site_plan(note: Annotated[AuditNote, audited(Action.VISIT_PLAN_CHANGE, "site",
                                                         id_param="site")],
                        site: SitePath, body: SitePlanIn, scope: StaffScope, conn: ConnDep
                        ) -> SitePlanOut:
    """Set a site's default intervals (admins; duty officers of the site)."""
    before = await _site_plan(conn, scope, site)
    note.detail.update(before=before.model_dump(mode="json"),
                       after=body.model_dump(mode="json"))
    require_planner(scope)
    await conn.execute(
        "INSERT INTO visit_site_plans (site_id, interval_days, high_risk_interval_days) "
        "VALUES (%s, %s, %s) ON CONFLICT (site_id) DO UPDATE SET "
        "interval_days = EXCLUDED.interval_days, "
        "high_risk_interval_days = EXCLUDED.high_risk_interval_days, updated_at = now()",
        (site, body.interval_days, body.high_risk_interval_days))
    logger.info("user %s set the visit plan of site %s to %d/%d days", scope.user.username,
                site, body.interval_days, body.high_risk_interval_days)
    return await _site_plan(conn, scope, site)


# --- resident plans -------------------------------------------------------------------------


async def _read_resident_plan(conn: AsyncConn, scope: Scope, resident_id: int
                              ) -> ResidentPlanOut:
    await scope.require_resident(conn, resident_id)
    cur = await conn.execute(
        "SELECT rp.interval_days, CASE WHEN cardinality(r.risks) > 0 "
        "THEN COALESCE(sp.high_risk_interval_days, %s) ELSE COALESCE(sp.interval_days, %s) END "
        "FROM residents r "
        "LEFT JOIN visit_resident_plans rp ON rp.resident_id = r.id "
        "LEFT JOIN visit_site_plans sp ON sp.site_id = r.site_id WHERE r.id = %s",
        (DEFAULT_HIGH_RISK_DAYS, DEFAULT_INTERVAL_DAYS, resident_id))
    row = await cur.fetchone()
    if row is None:
        raise not_found(N_("Resident"))
    due = await resident_due(conn, resident_id, datetime.now(UTC))
    return ResidentPlanOut(resident_id=resident_id, interval_days=row[0],
                           site_interval_days=row[1],
                           effective_interval_days=due.interval_days,
                           last_visit_at=due.last_visit_at, due_on=due.due_on,
                           overdue=due.overdue)


@router.get("/residents/{resident_id}/visit-plan", response_model=ResidentPlanOut,
            dependencies=[audited(Action.VISIT_PLAN_READ, "resident", resident="resident_id")])
async def get_resident_plan(resident_id: IdPath, scope: StaffScope, conn: ConnDep
                            ) -> ResidentPlanOut:
    """A resident's interval (own or the site's) and when their next visit is due."""
    return await _read_resident_plan(conn, scope, resident_id)


@router.put("/residents/{resident_id}/visit-plan", response_model=ResidentPlanOut)
async def put_resident_plan(note: Annotated[AuditNote, audited(
                                Action.VISIT_PLAN_CHANGE, "resident", resident="resident_id")],
                            resident_id: IdPath, body: ResidentPlanIn, scope: StaffScope,
                            conn: ConnDep) -> ResidentPlanOut:
    """Give a resident their own interval, or null to follow the site's default."""
    await scope.require_resident(conn, resident_id)
    require_planner(scope)
    await conn.execute(
        "INSERT INTO visit_resident_plans (resident_id, interval_days) VALUES (%s, %s) "
        "ON CONFLICT (resident_id) DO UPDATE SET interval_days = EXCLUDED.interval_days, "
        "updated_at = now()", (resident_id, body.interval_days))
    note.detail.update(after={"interval_days": body.interval_days})
    logger.info("user %s set resident %d's visit interval to %s", scope.user.username,
                resident_id, body.interval_days)
    return await _read_resident_plan(conn, scope, resident_id)


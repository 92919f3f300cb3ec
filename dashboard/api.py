"""Read API for residents and alerts; every route is scoped through `ScopeDep`."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query
from psycopg import sql
from psycopg.rows import class_row

from dashboard.deps import AsyncConn, ConnDep
from dashboard.models import (
    ALERT_TYPE_PATTERN,
    AlertDetailOut,
    AlertHistoryOut,
    AlertOut,
    AlertStatus,
    DeviceOut,
    ResidentOut,
    Severity,
)
from dashboard.scope import Scope, ScopeDep, Where, not_found
from gateway.schema import SITE_PATTERN, DeviceType

logger = logging.getLogger(__name__)

router = APIRouter()

MAX_ID = 2**63 - 1
SITE_REGEX = rf"^{SITE_PATTERN}$"

SiteQuery = Annotated[str | None, Query(pattern=SITE_REGEX, description="Site id.")]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]

_RESIDENTS = """
SELECT r.id, r.site_id, r.full_name, r.address,
       (SELECT count(*) FROM alerts oa WHERE oa.resident_id = r.id AND oa.status = 'open')
FROM residents r
{where}
ORDER BY r.site_id, r.full_name, r.id
"""

_DEVICES = """
SELECT resident_id, id, type, online, battery, last_seen
FROM devices
WHERE active AND resident_id = ANY(%(ids)s)
ORDER BY type, id
"""

_ALERT_COLUMNS = """
a.id, a.resident_id, r.full_name AS resident_name, a.site_id, a.device_id, a.type,
a.severity, a.status, a.opened_at, a.created_at, a.last_seen, a.count, a.assigned_to,
a.acknowledged_by, a.acknowledged_at, a.resolved_by, a.resolved_at, a.outcome, a.note
"""

_ALERTS = f"""
SELECT {_ALERT_COLUMNS}
FROM alerts a JOIN residents r ON r.id = a.resident_id
{{where}}
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s
"""

_ALERT = f"""
SELECT {_ALERT_COLUMNS}, a.details
FROM alerts a JOIN residents r ON r.id = a.resident_id
{{where}}
"""

_HISTORY = """
SELECT id, at, action, actor_id, actor, status, note
FROM alert_history WHERE alert_id = %s ORDER BY at, id
"""


class _AlertWithDetails(AlertOut):
    """An alert row including its jsonb details (history is fetched separately)."""

    details: dict[str, object]


async def _residents(conn: AsyncConn, where: Where) -> list[ResidentOut]:
    """Residents matching `where` (alias r), each with its active devices."""
    query = sql.SQL(_RESIDENTS).format(where=where.clause())
    cur = await conn.execute(query, where.params)
    rows = await cur.fetchall()
    devices: dict[int, list[DeviceOut]] = {int(row[0]): [] for row in rows}
    if devices:
        cur = await conn.execute(_DEVICES, {"ids": list(devices)})
        for rid, dev_id, dev_type, online, battery, last_seen in await cur.fetchall():
            devices[int(rid)].append(DeviceOut(id=dev_id, type=DeviceType(dev_type),
                                               online=online, battery=battery,
                                               last_seen=last_seen))
    return [ResidentOut(id=rid, site_id=site, full_name=name, address=address,
                        open_alerts=int(open_alerts), devices=devices[int(rid)])
            for rid, site, name, address, open_alerts in rows]


@router.get("/residents", response_model=list[ResidentOut], tags=["residents"])
async def list_residents(scope: ScopeDep, conn: ConnDep, site: SiteQuery = None
                         ) -> list[ResidentOut]:
    """Active residents in the caller's scope, with devices and open-alert counts."""
    scope.check_site(site)
    where = Where()
    where.add("r.active")
    scope.restrict_residents(where)
    if site is not None:
        where.add("r.site_id = %(site)s", site=site)
    return await _residents(conn, where)


@router.get("/residents/{resident_id}", response_model=ResidentOut, tags=["residents"])
async def get_resident(resident_id: IdPath, scope: ScopeDep, conn: ConnDep) -> ResidentOut:
    """One resident in scope (404 when missing or outside the caller's scope)."""
    where = Where()
    where.add("r.id = %(resident_id)s", resident_id=resident_id)
    scope.restrict_residents(where)
    found = await _residents(conn, where)
    if not found:
        raise not_found("Resident")
    return found[0]


@router.get("/alerts", response_model=list[AlertOut], tags=["alerts"])
async def list_alerts(
    scope: ScopeDep,
    conn: ConnDep,
    status: Annotated[list[AlertStatus] | None,
                      Query(description="Repeat to match several statuses.")] = None,
    site: SiteQuery = None,
    alert_type: Annotated[str | None, Query(alias="type", pattern=ALERT_TYPE_PATTERN,
                                            description="Alert type, e.g. sos, fall.")] = None,
    severity: Annotated[list[Severity] | None,
                        Query(description="Repeat to match several severities.")] = None,
    resident: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Resident id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlertOut]:
    """Alerts in the caller's scope, newest first."""
    scope.check_site(site)
    if resident is not None:
        await scope.require_resident(conn, resident)
    where = _alert_filters(scope, status, site, alert_type, severity, resident)
    query = sql.SQL(_ALERTS).format(where=where.clause())
    async with conn.cursor(row_factory=class_row(AlertOut)) as cur:
        await cur.execute(query, {**where.params, "limit": limit})
        return await cur.fetchall()


def _alert_filters(scope: Scope, statuses: list[AlertStatus] | None, site: str | None,
                   alert_type: str | None, severities: list[Severity] | None,
                   resident: int | None) -> Where:
    """The scoped WHERE for an alert listing."""
    where = Where()
    scope.restrict_alerts(where)
    if statuses:
        where.add("a.status = ANY(%(statuses)s)", statuses=[s.value for s in statuses])
    if site is not None:
        where.add("a.site_id = %(site)s", site=site)
    if alert_type is not None:
        where.add("a.type = %(type)s", type=alert_type)
    if severities:
        where.add("a.severity = ANY(%(severities)s)", severities=[s.value for s in severities])
    if resident is not None:
        where.add("a.resident_id = %(resident)s", resident=resident)
    return where


@router.get("/alerts/{alert_id}", response_model=AlertDetailOut, tags=["alerts"])
async def get_alert(alert_id: IdPath, scope: ScopeDep, conn: ConnDep) -> AlertDetailOut:
    """One alert with its history (404 when missing or outside the caller's scope)."""
    where = Where()
    where.add("a.id = %(alert_id)s", alert_id=alert_id)
    scope.restrict_alerts(where)
    async with conn.cursor(row_factory=class_row(_AlertWithDetails)) as cur:
        await cur.execute(sql.SQL(_ALERT).format(where=where.clause()), where.params)
        alert = await cur.fetchone()
    if alert is None:
        raise not_found("Alert")
    async with conn.cursor(row_factory=class_row(AlertHistoryOut)) as cur:
        await cur.execute(_HISTORY, (alert_id,))
        history = await cur.fetchall()
    return AlertDetailOut(**alert.model_dump(), history=history)

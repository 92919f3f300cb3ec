"""Read API for residents: the residents in the caller's scope with their devices and
open-alert counts."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter
from psycopg import sql

from dashboard.audit import AuditNote, audited
from dashboard.deps import AsyncConn, ConnDep
from dashboard.models import DeviceOut, ResidentOut
from dashboard.params import IdPath, SiteQuery
from dashboard.scope import ScopeDep, Where, not_found
from gateway.schema import DeviceType
from kernel.audit import Action

logger = logging.getLogger(__name__)

router = APIRouter()

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
async def list_residents(scope: ScopeDep, conn: ConnDep,
                         note: Annotated[AuditNote, audited(Action.RESIDENT_LIST, "resident")],
                         site: SiteQuery = None) -> list[ResidentOut]:
    """Active residents in the caller's scope, with devices and open-alert counts."""
    scope.check_site(site)
    where = Where()
    where.add("r.active")
    scope.restrict_residents(where)
    if site is not None:
        where.add("r.site_id = %(site)s", site=site)
    found = await _residents(conn, where)
    note.detail.update(site=site, residents=[r.id for r in found])
    return found


@router.get("/residents/{resident_id}", response_model=ResidentOut, tags=["residents"],
            dependencies=[audited(Action.RESIDENT_READ, "resident", resident="resident_id")])
async def get_resident(resident_id: IdPath, scope: ScopeDep, conn: ConnDep) -> ResidentOut:
    """One resident in scope (404 when missing or outside the caller's scope)."""
    where = Where()
    where.add("r.id = %(resident_id)s", resident_id=resident_id)
    scope.restrict_residents(where)
    found = await _residents(conn, where)
    if not found:
        raise not_found("Resident")
    return found[0]

"""Read API for residents: the residents in the caller's scope with their devices and
open-alert counts; staff also get the ledger summary (status, risks, ...) and the whole
ledger entry of one resident (dashboard.ledger has the ledger's writes).

Family members keep the shape these routes always had (ResidentOut): the ledger is the care
team's record, not theirs."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query
from psycopg import sql

from dashboard.audit import audited
from dashboard.deps import AsyncConn, ConnDep
from dashboard.ledger import store
from dashboard.ledger.models import ResidentDetailOut, ResidentListOut
from dashboard.models import DeviceOut, ResidentOut
from dashboard.params import IdPath, SiteQuery
from dashboard.scope import Scope, ScopeDep, Where, not_found
from gateway.schema import DeviceType
from kernel.accounts import Role
from kernel.audit import Action
from kernel.i18n import N_
from kernel.ledger import ResidentStatus, Risk

logger = logging.getLogger(__name__)

router = APIRouter()

_RESIDENTS = """
SELECT r.id, r.site_id, r.full_name, r.address,
       (SELECT count(*) FROM alerts oa WHERE oa.resident_id = r.id AND oa.status = 'open'),
       r.status, r.risks, r.sex, r.birth_year, r.living_situation, r.phone, r.care_level
FROM residents r
{where}
ORDER BY r.site_id, r.full_name, r.id
{page}
"""

_DEVICES = """
SELECT resident_id, id, type, online, battery, last_seen
FROM devices
WHERE active AND resident_id = ANY(%(ids)s)
ORDER BY type, id
"""

MAX_PAGE = 500


async def _residents(conn: AsyncConn, where: Where, *, ledger: bool = False,
                     page: sql.Composable | None = None) -> list[ResidentOut]:
    """Residents matching `where` (alias r), each with its active devices; with `ledger`,
    as ResidentListOut (the staff's view)."""
    query = sql.SQL(_RESIDENTS).format(where=where.clause(), page=page or sql.SQL(""))
    cur = await conn.execute(query, where.params)
    rows = await cur.fetchall()
    devices: dict[int, list[DeviceOut]] = {int(row[0]): [] for row in rows}
    if devices:
        cur = await conn.execute(_DEVICES, {"ids": list(devices)})
        for rid, dev_id, dev_type, online, battery, last_seen in await cur.fetchall():
            devices[int(rid)].append(DeviceOut(id=dev_id, type=DeviceType(dev_type),
                                               online=online, battery=battery,
                                               last_seen=last_seen))
    out: list[ResidentOut] = []
    for rid, site, name, address, open_alerts, *summary in rows:
        base = {"id": rid, "site_id": site, "full_name": name, "address": address,
                "open_alerts": int(open_alerts), "devices": devices[int(rid)]}
        if not ledger:
            out.append(ResidentOut(**base))
            continue
        status, risks, sex, birth_year, living, phone, care_level = summary
        out.append(ResidentListOut(**base, status=status, risks=risks, sex=sex,
                                   birth_year=birth_year, living_situation=living,
                                   phone=phone, care_level=care_level))
    return out


def _is_staff(scope: Scope) -> bool:
    return scope.user.role is not Role.FAMILY


RiskQuery = Annotated[list[Risk] | None, Query(description="Any of these risk categories "
                                                           "(staff only).")]
StatusQuery = Annotated[list[ResidentStatus] | None, Query(
    description="Any of these statuses (staff only; default: not discharged).")]
TextQuery = Annotated[str | None, Query(max_length=100, description="Text in the name, "
                                                                    "address or phone.")]


@router.get("/residents", response_model=None, tags=["residents"],
            dependencies=[audited(Action.RESIDENT_LIST, "resident")],
            responses={200: {"model": list[ResidentListOut],
                             "description": "Staff get ResidentListOut, family ResidentOut"}})
async def list_residents(scope: ScopeDep, conn: ConnDep, site: SiteQuery = None,
                         risk: RiskQuery = None, status: StatusQuery = None,
                         q: TextQuery = None,
                         limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
                         offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
                         ) -> list[ResidentOut]:
    """Residents in the caller's scope, with devices and open-alert counts; by name. Staff
    may filter by risk, status and text, and page with limit/offset."""
    scope.check_site(site)
    where = Where()
    staff = _is_staff(scope)
    if staff and status:
        where.add("r.status = ANY(%(status)s)", status=[str(s) for s in status])
    else:
        where.add("r.active")
    scope.restrict_residents(where)
    if site is not None:
        where.add("r.site_id = %(site)s", site=site)
    if staff and risk:
        where.add("r.risks && %(risk)s::text[]", risk=[str(r) for r in risk])
    if staff and q:
        where.add("(r.full_name ILIKE %(q)s OR r.address ILIKE %(q)s OR r.phone ILIKE %(q)s)",
                  q="%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    page: sql.Composable | None = None
    if limit is not None or offset:
        page = sql.SQL("LIMIT {} OFFSET {}").format(
            sql.Literal(limit if limit is not None else MAX_PAGE), sql.Literal(offset))
    return await _residents(conn, where, ledger=staff, page=page)


@router.get("/residents/{resident_id}", response_model=None, tags=["residents"],
            dependencies=[audited(Action.RESIDENT_READ, "resident", resident="resident_id")],
            responses={200: {"model": ResidentDetailOut,
                             "description": "Staff get ResidentDetailOut, family ResidentOut"},
                       404: {"description": "No such resident in your scope"}})
async def get_resident(resident_id: IdPath, scope: ScopeDep, conn: ConnDep
                       ) -> ResidentOut:
    """One resident in scope (404 when missing or outside the caller's scope); staff get the
    whole ledger entry (without the door code: see reveal-access)."""
    where = Where()
    where.add("r.id = %(resident_id)s", resident_id=resident_id)
    scope.restrict_residents(where)
    staff = _is_staff(scope)
    found = await _residents(conn, where, ledger=staff)
    if not found:
        raise not_found(N_("Resident"))
    if not staff:
        return found[0]
    return await store.detail(conn, found[0])

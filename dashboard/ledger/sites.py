"""Sites: list and read (admin: all; site staff: their own), create and edit (admin only).

A site's time zone decides its residents' nights and mornings, so it must be an IANA name
the machine knows (checked field by field: a 422 naming `timezone`). Its language is the one
its group channels are written to in (a 422 naming `language` for one the platform does not
speak)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Path, status
from psycopg import errors

from dashboard.audit import audited
from dashboard.deps import AsyncConn, ConnDep
from dashboard.ledger.models import SiteIn, SiteOut, SitePatch
from dashboard.params import SITE_REGEX
from dashboard.scope import SITE_ROLES, Scope, ScopeDep, not_found
from kernel.accounts import Role
from kernel.audit import Action
from kernel.i18n import N_, Said

logger = logging.getLogger(__name__)

router = APIRouter(tags=["sites"])

_SITES = "SELECT id, name, timezone, address, language, created_at FROM sites"


def _require_admin(scope: Scope) -> None:
    if scope.user.role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Only an administrator can change sites"))


def _require_staff(scope: Scope) -> None:
    if scope.user.role is Role.FAMILY:
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Sites are for the care team"))


async def _sites(conn: AsyncConn, site: str | None) -> list[SiteOut]:
    query = _SITES + (" WHERE id = %(site)s" if site is not None else "") + " ORDER BY id"
    cur = await conn.execute(query, {"site": site})
    return [SiteOut(id=i, name=n, timezone=tz, address=a, language=lang, created_at=at)
            for i, n, tz, a, lang, at in await cur.fetchall()]


@router.get("/sites", response_model=list[SiteOut])
async def list_sites(scope: ScopeDep, conn: ConnDep) -> list[SiteOut]:
    """Every site for an administrator; their own site for site staff."""
    _require_staff(scope)
    own = scope.user.site_id if scope.user.role in SITE_ROLES else None
    return await _sites(conn, own)


@router.post("/sites", response_model=SiteOut, status_code=status.HTTP_201_CREATED,
             dependencies=[audited(Action.SITE_CREATE, "site")],
             responses={409: {"description": "The site already exists"}})
async def create_site(body: SiteIn, scope: ScopeDep, conn: ConnDep) -> SiteOut:
    """Create a site (admin only); an existing id is 409, never a silent no-op."""
    _require_admin(scope)
    try:
        await conn.execute("INSERT INTO sites (id, name, timezone, address, language) "
                           "VALUES (%s, %s, %s, %s, %s)",
                           (body.id, body.name, body.timezone, body.address, body.language))
    except errors.UniqueViolation:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            Said(N_("Site '{site}' already exists; edit it instead"),
                                 site=body.id)) from None
    logger.info("user %s created site %s", scope.user.username, body.id)
    return (await _sites(conn, body.id))[0]


SitePath = Path(pattern=SITE_REGEX, description="Site id.")


@router.get("/sites/{site_id}", response_model=SiteOut,
            responses={404: {"description": "No such site in your scope"}})
async def get_site(scope: ScopeDep, conn: ConnDep, site_id: str = SitePath) -> SiteOut:
    """One site (admin; staff of that site)."""
    _require_staff(scope)
    if scope.user.role in SITE_ROLES and site_id != scope.user.site_id:
        raise not_found(N_("Site"))
    found = await _sites(conn, site_id)
    if not found:
        raise not_found(N_("Site"))
    return found[0]


@router.patch("/sites/{site_id}", response_model=SiteOut,
              dependencies=[audited(Action.SITE_UPDATE, "site", id_param="site_id")],
              responses={404: {"description": "No such site"}})
async def update_site(body: SitePatch, scope: ScopeDep, conn: ConnDep,
                      site_id: str = SitePath) -> SiteOut:
    """Change a site's name, time zone, address or language (admin only); only the fields
    sent."""
    _require_admin(scope)
    sent = body.model_fields_set
    if any(key in sent and getattr(body, key) is None for key in ("name", "timezone",
                                                                   "language")):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            N_("name, timezone and language cannot be null"))
    cur = await conn.execute(
        "UPDATE sites SET name = COALESCE(%s, name), timezone = COALESCE(%s, timezone), "
        "language = COALESCE(%s, language), "
        "address = CASE WHEN %s THEN %s ELSE address END WHERE id = %s RETURNING id",
        (body.name, body.timezone, body.language, "address" in sent, body.address, site_id))
    if await cur.fetchone() is None:
        raise not_found(N_("Site"))
    logger.info("user %s changed %s of site %s", scope.user.username, sorted(sent), site_id)
    return (await _sites(conn, site_id))[0]

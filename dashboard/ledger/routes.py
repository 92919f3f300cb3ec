"""The ledger's routes: create and edit residents, reveal how to get in, notes, timeline,
alert settings.

Who: an administrator (every site) and a duty officer (their own site) create and edit; a care
worker reads their site's residents; family members get 403 (their view is elsewhere). A
resident outside the caller's scope is 404, like one that does not exist.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from alerts.config import AlertSettings, effective_settings
from dashboard.audit import audited
from dashboard.deps import AsyncConn, ConnDep
from dashboard.ledger import store
from dashboard.ledger.models import (
    AccessOut,
    AlertSettingsOut,
    LedgerFields,
    NoteIn,
    NoteOut,
    ResidentCreate,
    ResidentDetailOut,
    TimelineEntry,
)
from dashboard.params import IdPath
from dashboard.residents import get_resident
from dashboard.scope import Scope, ScopeDep
from kernel import ledger
from kernel.accounts import Role
from kernel.audit import Action
from kernel.i18n import N_

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ledger"])

EDITORS = frozenset({Role.ADMIN, Role.DUTY_OFFICER})
MAX_OVERRIDE_BYTES = 16_000


def require_staff(scope: Scope) -> None:
    """403 for family accounts: the ledger is the care team's record."""
    if scope.user.role is Role.FAMILY:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("The resident ledger is for the care team"))


def require_editor(scope: Scope) -> None:
    """403 unless an administrator or a duty officer."""
    if scope.user.role not in EDITORS:
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Only an administrator or a duty "
                                                          "officer can change the ledger"))


async def _detail(conn: AsyncConn, scope: Scope, resident_id: int) -> ResidentDetailOut:
    found = await get_resident(resident_id, scope, conn)
    assert isinstance(found, ResidentDetailOut)
    return found


@router.post("/residents", response_model=ResidentDetailOut,
             status_code=status.HTTP_201_CREATED,
             dependencies=[audited(Action.RESIDENT_CREATE, "resident")])
async def create_resident(body: ResidentCreate, scope: ScopeDep, conn: ConnDep
                          ) -> ResidentDetailOut:
    """Create a resident with their ledger entry (admin; duty officer for their own site)."""
    require_editor(scope)
    scope.check_site(body.site_id)
    async with conn.transaction():
        cur = await conn.execute("SELECT 1 FROM sites WHERE id = %(site)s",
                                 {"site": body.site_id})
        if await cur.fetchone() is None:
            raise RequestValidationError([{"loc": ("body", "site_id"), "type": "value_error",
                                           "msg": f"no site {body.site_id!r}"}])
        cur = await conn.execute(ledger.INSERT_RESIDENT,
                                 {"site": body.site_id, "full_name": body.full_name})
        row = await cur.fetchone()
        assert row is not None
        resident_id = int(row[0])
        await store.apply(conn, resident_id, body, scope.user.id)
    logger.info("user %s created resident %d at %s", scope.user.username, resident_id,
                body.site_id)
    return await _detail(conn, scope, resident_id)


@router.patch("/residents/{resident_id}", response_model=ResidentDetailOut,
              dependencies=[audited(Action.RESIDENT_UPDATE, "resident", resident="resident_id")],
              responses={404: {"description": "No such resident in your scope"}})
async def update_resident(resident_id: IdPath, body: LedgerFields, scope: ScopeDep,
                          conn: ConnDep) -> ResidentDetailOut:
    """Change the fields sent (admin; duty officer of the resident's site)."""
    require_editor(scope)
    await scope.require_resident(conn, resident_id)
    async with conn.transaction():
        await store.apply(conn, resident_id, body, scope.user.id)
    logger.info("user %s changed %s of resident %d", scope.user.username,
                sorted(body.model_fields_set), resident_id)
    return await _detail(conn, scope, resident_id)


@router.post("/residents/{resident_id}/reveal-access", response_model=AccessOut,
             dependencies=[audited(Action.RESIDENT_ACCESS_READ, "resident",
                                   resident="resident_id")],
             responses={404: {"description": "No such resident in your scope"}})
async def reveal_access(resident_id: IdPath, scope: ScopeDep, conn: ConnDep) -> AccessOut:
    """How to get in, door code included: its own request so that every reveal is recorded
    (admin; duty officer of the resident's site)."""
    require_editor(scope)
    await scope.require_resident(conn, resident_id)
    cur = await conn.execute(ledger.SELECT_DOOR, {"id": resident_id})
    row = await cur.fetchone()
    assert row is not None
    logger.warning("user %s revealed the door code of resident %d", scope.user.username,
                   resident_id)
    return AccessOut(resident_id=resident_id, access_notes=row[0], door_code=row[1])


@router.get("/residents/{resident_id}/notes", response_model=list[NoteOut],
            dependencies=[audited(Action.RESIDENT_READ, "resident", resident="resident_id")],
            responses={404: {"description": "No such resident in your scope"}})
async def list_notes(resident_id: IdPath, scope: ScopeDep, conn: ConnDep) -> list[NoteOut]:
    """The resident's notes, newest first (staff of the resident's site)."""
    require_staff(scope)
    await scope.require_resident(conn, resident_id)
    cur = await conn.execute("SELECT id, resident_id, author, body, created_at "
                             "FROM resident_notes WHERE resident_id = %s "
                             "ORDER BY created_at DESC, id DESC", (resident_id,))
    return [NoteOut(id=i, resident_id=r, author=a, body=b, created_at=at)
            for i, r, a, b, at in await cur.fetchall()]


@router.post("/residents/{resident_id}/notes", response_model=NoteOut,
             dependencies=[audited(Action.RESIDENT_UPDATE, "resident", resident="resident_id")],
             status_code=status.HTTP_201_CREATED,
             responses={404: {"description": "No such resident in your scope"}})
async def add_note(resident_id: IdPath, body: NoteIn, scope: ScopeDep, conn: ConnDep
                   ) -> NoteOut:
    """Add a note to the resident's timeline (admin; duty officer of the resident's site)."""
    require_editor(scope)
    await scope.require_resident(conn, resident_id)
    cur = await conn.execute(
        "INSERT INTO resident_notes (resident_id, author_id, author, body) "
        "VALUES (%s, %s, %s, %s) RETURNING id, created_at",
        (resident_id, scope.user.id, scope.user.username, body.body))
    row = await cur.fetchone()
    assert row is not None
    return NoteOut(id=row[0], resident_id=resident_id, author=scope.user.username,
                   body=body.body, created_at=row[1])


@router.get("/residents/{resident_id}/timeline", response_model=list[TimelineEntry],
            dependencies=[audited(Action.RESIDENT_READ, "resident", resident="resident_id")],
            responses={404: {"description": "No such resident in your scope"}})
async def get_timeline(resident_id: IdPath, scope: ScopeDep, conn: ConnDep,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100
                       ) -> list[TimelineEntry]:
    """Alerts, devices added, notes and completed visits, newest first (staff of the
    resident's site)."""
    require_staff(scope)
    await scope.require_resident(conn, resident_id)
    return await store.timeline(conn, resident_id, limit)


async def _stored_overrides(conn: AsyncConn, resident_id: int
                            ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    cur = await conn.execute(
        "SELECT so.settings, ro.settings FROM residents r "
        "LEFT JOIN alert_overrides so ON so.site_id = r.site_id "
        "LEFT JOIN alert_overrides ro ON ro.resident_id = r.id WHERE r.id = %s",
        (resident_id,))
    row = await cur.fetchone()
    assert row is not None
    return row[0], row[1]


def _settings_out(resident_id: int, site: dict[str, Any] | None,
                  override: dict[str, Any] | None) -> AlertSettingsOut:
    effective = effective_settings(AlertSettings(), site, override)
    return AlertSettingsOut(resident_id=resident_id, override=override,
                            effective=effective.model_dump(mode="json"))


@router.get("/residents/{resident_id}/alert-settings", response_model=AlertSettingsOut,
            dependencies=[audited(Action.RESIDENT_READ, "resident", resident="resident_id")],
            responses={404: {"description": "No such resident in your scope"}})
async def get_alert_settings(resident_id: IdPath, scope: ScopeDep, conn: ConnDep
                             ) -> AlertSettingsOut:
    """The resident's threshold override and the settings in effect (staff of the site)."""
    require_staff(scope)
    await scope.require_resident(conn, resident_id)
    site, override = await _stored_overrides(conn, resident_id)
    return _settings_out(resident_id, site, override)


@router.put("/residents/{resident_id}/alert-settings", response_model=AlertSettingsOut,
            dependencies=[audited(Action.RESIDENT_UPDATE, "resident", resident="resident_id")],
            responses={404: {"description": "No such resident in your scope"}})
async def put_alert_settings(resident_id: IdPath, scope: ScopeDep, conn: ConnDep,
                             override: Annotated[dict[str, Any], Body(
                                 description="The whole override (partial settings, as "
                                             "`eldercare alerts settings --set`); {} clears it.")],
                             ) -> AlertSettingsOut:
    """Replace the resident's override, validated like the CLI's; each bad value is a 422
    naming its field (admin; duty officer of the resident's site)."""
    require_editor(scope)
    await scope.require_resident(conn, resident_id)
    if len(json.dumps(override)) > MAX_OVERRIDE_BYTES:
        raise RequestValidationError([{"loc": ("body",), "type": "value_error",
                                       "msg": "the override is too large"}])
    site, _ = await _stored_overrides(conn, resident_id)
    try:
        effective_settings(AlertSettings(), site, override)
    except ValidationError as exc:
        raise RequestValidationError(
            [{"loc": ("body", *err["loc"]), "type": err["type"], "msg": err["msg"],
              "ctx": err.get("ctx", {})} for err in exc.errors()]) from None
    if override:
        await conn.execute(
            "INSERT INTO alert_overrides (resident_id, settings) VALUES (%s, %s) "
            "ON CONFLICT (resident_id) DO UPDATE SET settings = EXCLUDED.settings, "
            "updated_at = now()", (resident_id, json.dumps(override)))
    else:
        await conn.execute("DELETE FROM alert_overrides WHERE resident_id = %s", (resident_id,))
    logger.info("user %s set the alert override of resident %d", scope.user.username,
                resident_id)
    return _settings_out(resident_id, site, override or None)

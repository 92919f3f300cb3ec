"""Staff actions on alerts (acknowledge, resolve), the duty toggle and the Web Push key.

Only care workers, duty officers and admins may act; family accounts are read-only (403).
Which alerts a user may act on is decided by `dashboard.scope` (out of scope answers 404).
The state change itself is `alerts.lifecycle`: exactly one of concurrent callers wins, the
others get 409 with who got there first.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from alerts import lifecycle
from alerts.lifecycle import ActionResult, AlertNotFound
from alerts.model import RESOLVE_OUTCOMES, AlertStatus, Outcome
from alerts.notify.vapid import public_key_b64url_async
from dashboard import api
from dashboard.audit import AuditNote, audited
from dashboard.auth import CurrentUser
from dashboard.deps import AsyncConn, ConnDep
from dashboard.language import api_language
from dashboard.models import MAX_NOTE, AlertDetailOut, NoteText, UserOut
from dashboard.params import IdPath
from dashboard.roster import is_on_duty
from dashboard.scope import SITE_ROLES, Scope, ScopeDep, Where, not_found
from kernel import audit as audit_log
from kernel.accounts import Role
from kernel.audit import Action, Target
from kernel.i18n import N_, Said, say
from kernel.sites import site_time

logger = logging.getLogger(__name__)

router = APIRouter()

# A wall display acknowledges (recorded as the display's account); dashboard.auth's
# DISPLAY_ROUTES keeps it from resolving.
ACTING_ROLES = frozenset({Role.ADMIN, Role.DUTY_OFFICER, Role.CARE_WORKER, Role.DISPLAY})

# What was already done to an alert, as the verb of the 409's sentence (the English verbs
# are the statuses' own words; `Said` so that a Chinese sentence gets its own verb).
_DONE = {AlertStatus.ACKNOWLEDGED: N_("acknowledged"), AlertStatus.RESOLVED: N_("resolved"),
         AlertStatus.CANCELLED: N_("cancelled")}
# (by the caller, by someone named, by nobody named) x (without, with the time).
_ALREADY = {
    ("you", False): N_("You already {verb} this alert"),
    ("you", True): N_("You already {verb} this alert at {when}"),
    ("by", False): N_("Already {verb} by {by}"),
    ("by", True): N_("Already {verb} by {by} at {when}"),
    ("", False): N_("Already {verb}"),
    ("", True): N_("Already {verb} at {when}"),
}

_CONFLICT_CONTEXT = """
SELECT (SELECT s.timezone FROM alerts a JOIN sites s ON s.id = a.site_id
        WHERE a.id = %(alert)s),
       (SELECT COALESCE(NULLIF(full_name, ''), username) FROM users WHERE id = %(user)s)
"""


# --- models -----------------------------------------------------------------------------


def _clean_note(value: str | None) -> str | None:
    """A note without surrounding blanks; blank means none."""
    note = value.strip() if value is not None else None
    return note or None


class AckIn(BaseModel):
    """Optional body of an acknowledgement."""

    model_config = ConfigDict(extra="forbid")

    note: NoteText | None = Field(default=None, description=f"At most {MAX_NOTE} characters.")

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        return _clean_note(value)


class ResolveIn(BaseModel):
    """How an alert ended; a note is required for outcome 'other'."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome = Field(description="One of: " + ", ".join(RESOLVE_OUTCOMES))
    note: NoteText | None = Field(default=None, validate_default=True,
                                 description=f"At most {MAX_NOTE} characters.")

    @field_validator("outcome", mode="before")
    @classmethod
    def _choosable(cls, value: object) -> object:
        if value not in RESOLVE_OUTCOMES:
            raise ValueError(Said(N_("choose one of {choices}"),
                                  choices=", ".join(RESOLVE_OUTCOMES)))
        return value

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None, info: ValidationInfo) -> str | None:
        note = _clean_note(value)
        if note is None and info.data.get("outcome") is Outcome.OTHER:
            raise ValueError(N_("a note is required when the outcome is 'other'"))
        return note


class ConflictOut(BaseModel):
    """Why an action lost: someone else acted first, or the alert is already finished."""

    model_config = ConfigDict(frozen=True)

    detail: str = Field(description='e.g. "Already acknowledged by Dora Duty at 03:12".')
    status: AlertStatus
    by_user_id: int | None
    by: str | None = Field(description="Name of whoever acted first, when known.")
    at: datetime | None


class DutyIn(BaseModel):
    """Going on or off duty."""

    model_config = ConfigDict(extra="forbid")

    on_duty: bool = Field(strict=True)


class DutyOut(BaseModel):
    """Whether the caller is on duty (on-duty care workers receive site alerts)."""

    model_config = ConfigDict(frozen=True)

    on_duty: bool


class VapidKeyOut(BaseModel):
    """The application server key for `pushManager.subscribe`."""

    model_config = ConfigDict(frozen=True)

    public_key: str = Field(description="Base64url-encoded P-256 public key.")


# --- role and scope ---------------------------------------------------------------------


def acting_scope(scope: ScopeDep) -> Scope:
    """Dependency: the caller's scope, if their role may act on alerts (403 otherwise)."""
    if scope.user.role not in ACTING_ROLES:
        logger.info("user %s (%s) denied an alert action", scope.user.username,
                    scope.user.role.value)
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Family accounts can follow alerts "
                                                          "but cannot acknowledge or resolve them"))
    return scope


ActingScope = Annotated[Scope, Depends(acting_scope)]


async def require_alert(conn: AsyncConn, scope: Scope, alert_id: int) -> tuple[str, int]:
    """404 unless the alert exists and is in the caller's scope; its status and resident
    (the "before" of the audit record)."""
    where = Where()
    where.add("a.id = %(alert_id)s", alert_id=alert_id)
    scope.restrict_alerts(where)
    cur = await conn.execute(sql.SQL("SELECT a.status, a.resident_id FROM alerts a {}").format(
        where.clause()), where.params)
    row = await cur.fetchone()
    if row is None:
        raise not_found(N_("Alert"))
    return str(row[0]), int(row[1])


def _note_change(audit_note: AuditNote, alert_id: int, before: tuple[str, int],
                 result: ActionResult, **after: object) -> None:
    """The audit record of an ack/resolve: status before and after; a lost race is an
    error (409)."""
    audit_note.target = Target("alert", alert_id, before[1])
    audit_note.detail.update(before={"status": before[0]},
                             after={"status": result.status.value, **after})
    if not result.ok:
        audit_note.outcome = audit_log.Outcome.ERROR
        audit_note.detail["status"] = status.HTTP_409_CONFLICT


# --- conflict messages ------------------------------------------------------------------


def local_time(at: datetime, tz_name: str | None, now: datetime) -> str:
    """"03:12" in the site's time zone, with the date when it is not today there
    (kernel.sites.site_time)."""
    return site_time(at, tz_name, now)


def conflict_message(result: ActionResult, by: str | None, by_caller: bool,
                     when: str | None) -> str:
    """A readable sentence saying who already did what, and when (a `Said`: the 409 is
    answered in the caller's language)."""
    verb = _DONE.get(result.status)
    if verb is None:
        return result.message or N_("This alert cannot be changed right now")
    who: str | None = by
    if by is None and result.status is AlertStatus.CANCELLED:
        who = Said(N_("the resident"))
    whose = "you" if by_caller else ("by" if who else "")
    return Said(_ALREADY[whose, when is not None], verb=Said(verb), by=who or "",
                when=when or "")


async def _conflict(conn: AsyncConn, user: UserOut, result: ActionResult, lang: str
                    ) -> JSONResponse:
    """The 409 answer for a lost or pointless action."""
    cur = await conn.execute(_CONFLICT_CONTEXT,
                             {"alert": result.alert_id, "user": result.by_user_id})
    row = await cur.fetchone()
    tz_name, by = (row[0], row[1]) if row else (None, None)
    when = local_time(result.at, tz_name, datetime.now(UTC)) if result.at else None
    detail = say(conflict_message(result, by, result.by_user_id == user.id, when), lang)
    out = ConflictOut(detail=detail, status=result.status, by_user_id=result.by_user_id,
                      by=by, at=result.at)
    return JSONResponse(status_code=status.HTTP_409_CONFLICT, content=out.model_dump(mode="json"))


async def _answer(conn: AsyncConn, scope: Scope, result: ActionResult, action: str,
                  lang: str) -> AlertDetailOut | JSONResponse:
    """200 with the updated alert for the winner, 409 for everyone else."""
    if not result.ok:
        logger.info("user %s could not %s alert %d: already %s", scope.user.username, action,
                    result.alert_id, result.status.value)
        return await _conflict(conn, scope.user, result, lang)
    logger.info("user %s %sd alert %d", scope.user.username, action, result.alert_id)
    return await api.alert_detail(conn, scope, result.alert_id)


_ACTION_RESPONSES: dict[int | str, dict[str, object]] = {
    403: {"description": "Family accounts are read-only"},
    404: {"description": "No such alert in your scope"},
    409: {"model": ConflictOut, "description": "Someone else acted first, or already done"},
}


# --- routes -----------------------------------------------------------------------------


@router.post("/alerts/{alert_id}/ack", response_model=AlertDetailOut, tags=["alerts"],
             responses=_ACTION_RESPONSES)
async def acknowledge_alert(alert_id: IdPath, scope: ActingScope, conn: ConnDep,
                            request: Request,
                            note: Annotated[AuditNote, audited(Action.ALERT_ACK, "alert",
                                                               id_param="alert_id")],
                            body: AckIn | None = None) -> AlertDetailOut | JSONResponse:
    """Claim an open alert: exactly one of concurrent callers gets 200, the others 409."""
    before = await require_alert(conn, scope, alert_id)
    try:
        result = await lifecycle.acknowledge(conn, alert_id, scope.user.id, datetime.now(UTC),
                                             body.note if body else None)
    except AlertNotFound:
        raise not_found(N_("Alert")) from None
    _note_change(note, alert_id, before, result, note=body.note if body else None)
    return await _answer(conn, scope, result, "acknowledge", api_language(request))


@router.post("/alerts/{alert_id}/resolve", response_model=AlertDetailOut, tags=["alerts"],
             responses=_ACTION_RESPONSES)
async def resolve_alert(alert_id: IdPath, body: ResolveIn, scope: ActingScope, conn: ConnDep,
                        request: Request,
                        note: Annotated[AuditNote, audited(Action.ALERT_RESOLVE, "alert",
                                                           id_param="alert_id")]
                        ) -> AlertDetailOut | JSONResponse:
    """Close an open or acknowledged alert with an outcome (409 when already finished)."""
    before = await require_alert(conn, scope, alert_id)
    try:
        result = await lifecycle.resolve(conn, alert_id, scope.user.id, body.outcome,
                                         body.note, datetime.now(UTC))
    except AlertNotFound:
        raise not_found(N_("Alert")) from None
    _note_change(note, alert_id, before, result, outcome=body.outcome, note=body.note)
    return await _answer(conn, scope, result, "resolve", api_language(request))


@router.get("/me/duty", response_model=DutyOut, tags=["auth"])
async def get_duty(user: CurrentUser, conn: ConnDep) -> DutyOut:
    """Whether you are on duty now: your manual override, else the roster (kernel.roster)."""
    return DutyOut(on_duty=await is_on_duty(conn, user.id, datetime.now(UTC)))


@router.put("/me/duty", response_model=DutyOut, tags=["auth"],
            responses={403: {"description": "Only care workers and duty officers"}})
async def set_duty(body: DutyIn, user: CurrentUser, conn: ConnDep,
                   note: Annotated[AuditNote, audited(Action.DUTY_CHANGE, "user")]) -> DutyOut:
    """Go on duty (a manual override of the roster), or off: that hands the decision back
    to the roster (care workers and duty officers only). Answers the state now."""
    note.target = Target("user", user.id)
    if user.role not in SITE_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("Only care workers and duty officers go on or off duty"))
    cur = await conn.execute("UPDATE users SET on_duty = %s, duty_forced_off = false "
                             "WHERE id = %s RETURNING on_duty", (body.on_duty, user.id))
    row = await cur.fetchone()
    if row is None:  # deleted since the token check
        raise not_found(N_("User"))
    note.detail.update(after={"on_duty": bool(row[0])})
    logger.info("user %s is now %s", user.username,
                "on duty" if row[0] else "following the roster")
    return DutyOut(on_duty=await is_on_duty(conn, user.id, datetime.now(UTC)))


@router.get("/push/vapid-public-key", response_model=VapidKeyOut, tags=["push"])
async def vapid_public_key(_user: CurrentUser, conn: ConnDep) -> VapidKeyOut:
    """The Web Push application server key (any logged-in user); made on first use."""
    return VapidKeyOut(public_key=await public_key_b64url_async(conn))

"""The audit trail in the web app: the one-line dependency that records a route's use, and
the admin's search and CSV export (GET /api/v1/audit, /api/v1/audit/export).

Instrumenting a route takes one line (docs/dashboard.md, "Audit trail"):

    @router.get("/residents/{resident_id}/visits",
                dependencies=[audited(Action.VISIT_READ, "resident", resident="resident_id")])

The dependency runs with `scope="function"`: its closing half runs when the route function
has returned or raised, before the response is sent, and appends the record on the
request's connection (one statement, committed). So a response that reports success always
has its durable record, and a failed audit write turns the answer into an error instead of
an unrecorded success. A route that knows more (the resident of an alert, a before/after)
takes the `AuditNote` as a parameter and fills it in.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from psycopg import sql
from psycopg.rows import class_row
from pydantic import Field

from dashboard.auth import CurrentSession, CurrentUser
from dashboard.deps import AsyncConn, ConnDep
from dashboard.errors import FieldRefusal
from dashboard.models import BoundedTime, UserOut, _Out
from dashboard.params import MAX_ID
from dashboard.scope import Where
from kernel import audit
from kernel.accounts import MAX_USERNAME, Role
from kernel.audit import Action, Actor, Event, Outcome, Target
from kernel.i18n import N_
from kernel.sites import site_time

logger = logging.getLogger(__name__)

router = APIRouter(tags=["audit"])

EXPORT_LIMIT = 100_000


def client_address(request: Request) -> str | None:
    """The client's address as the app determines it (uvicorn applies X-Forwarded-For only
    from `web_trusted_proxies`, dashboard.app.server_config)."""
    return request.client.host if request.client is not None else None


def actor_of(user: UserOut, request: Request) -> Actor:
    """A logged-in user as an audit actor: id, username at the time, address."""
    return Actor(user.username, user.id, client_address(request))


def outcome_of(status_code: int) -> Outcome:
    """401/403/404 (404: out of scope looks like missing, scope.py) are denials; the rest
    of the 4xx/5xx are errors."""
    if status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN,
                       status.HTTP_404_NOT_FOUND):
        return Outcome.DENIED
    return Outcome.OK if status_code < 400 else Outcome.ERROR


async def record(conn: AsyncConn, actor: Actor, action: Action | str, target: Target,
                 outcome: Outcome = Outcome.OK, detail: dict[str, Any] | None = None) -> None:
    """Append one record now (for code outside a route's dependency, e.g. login)."""
    await audit.append_async(conn, Event(datetime.now(UTC), actor, action, outcome, target,
                                         detail or {}))


@dataclass
class AuditNote:
    """The record a route is about to make; the route may fill in target and detail."""

    action: str
    target: Target
    detail: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome | None = None  # set when the route answers a refusal without raising
    also: list[audit.Entry] = field(default_factory=list)
    """More records of a success, written before this one (one per device an import made)."""


def _int(text: object) -> int | None:
    try:
        value = int(str(text))
    except ValueError:
        return None
    return value if 1 <= value <= MAX_ID else None


def audited(action: Action | str, target_type: str | None = None, *, id_param: str | None = None,
            resident: str | None = None) -> Any:
    """A dependency recording every use of the route by a logged-in user: `target_type` and
    the path parameters naming the target's id (`id_param`) and its resident (`resident`;
    with target type "resident", the id too)."""

    async def dependency(request: Request, session: CurrentSession, conn: ConnDep
                         ) -> AsyncIterator[AuditNote]:
        params = request.path_params
        resident_id = _int(params[resident]) if resident and resident in params else None
        target_id = params.get(id_param) if id_param else (
            resident_id if target_type == "resident" else None)
        note = AuditNote(str(action), Target(target_type, target_id, resident_id))
        actor = actor_of(session.user, request)
        try:
            yield note
        except HTTPException as exc:
            await _close(conn, actor, note, outcome_of(exc.status_code),
                         {"status": exc.status_code})
            raise
        except RequestValidationError:
            await _close(conn, actor, note, Outcome.ERROR, {"status": 422})
            raise
        except FieldRefusal as exc:  # answered by its handler with its own 400/409/422
            await _close(conn, actor, note, outcome_of(exc.status_code),
                         {"status": exc.status_code})
            raise
        except Exception:
            try:
                await _close(conn, actor, note, Outcome.ERROR, {"status": 500})
            except Exception:  # the database may be why the route failed
                logger.exception("audit record of a failed %s could not be written", action)
            raise
        else:
            await _close(conn, actor, note, note.outcome or Outcome.OK, {})

    return Depends(dependency, scope="function")


async def _close(conn: AsyncConn, actor: Actor, note: AuditNote, outcome: Outcome,
                 extra: dict[str, Any]) -> None:
    if outcome is Outcome.OK:
        for entry in note.also:
            await record(conn, actor, entry.action, entry.target, outcome, entry.detail)
    await record(conn, actor, note.action, note.target, outcome, {**note.detail, **extra})


# ---- search and export (admin only) -----------------------------------------------------

class AuditEntryOut(_Out):
    """One audit record."""

    id: int
    at: datetime
    actor_id: int | None
    actor: str = Field(description='Username at the time, or "cli:<os user>".')
    address: str | None
    action: str
    target_type: str | None
    target_id: str | None
    resident_id: int | None
    outcome: str
    detail: dict[str, Any]
    hash: str
    timezone: str = Field(description="IANA zone to show `at` in: the resident's site's, "
                                      "else the actor's site's, else the one zone all sites "
                                      "share, else UTC.")


# The zone a record's time is shown in (issue 14's rule: the site's zone, never the
# browser's): the record's resident's site, else its actor's site, else the platform's one
# zone when every site shares it, else UTC.
_ZONE = """
COALESCE(
    (SELECT s.timezone FROM residents r JOIN sites s ON s.id = r.site_id
     WHERE r.id = audit_log.resident_id),
    (SELECT s.timezone FROM users u JOIN sites s ON s.id = u.site_id
     WHERE u.id = audit_log.actor_id),
    (SELECT min(timezone) FROM sites HAVING count(DISTINCT timezone) = 1),
    'UTC')"""

_SEARCH = """
SELECT id, at, actor_id, actor, address, action, target_type, target_id, resident_id,
       outcome, detail, hash,""" + _ZONE + """ AS timezone
FROM audit_log {where}
ORDER BY id DESC
LIMIT %(limit)s
"""


def invalid_query(name: str, message: str) -> RequestValidationError:
    """A field-level 422 for a query parameter (as dashboard.api's)."""
    return RequestValidationError([{"loc": ("query", name), "msg": message,
                                    "type": "value_error"}])


def require_admin(user: CurrentUser) -> UserOut:
    """Only administrators read the audit trail."""
    if user.role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Only administrators can read the "
                                                          "audit trail"))
    return user


AdminUser = Annotated[UserOut, Depends(require_admin)]


@dataclass(frozen=True)
class AuditFilters:
    """The search's filters, from the query string."""

    actor: str | None
    resident: int | None
    action: list[str] | None
    outcome: list[Outcome] | None
    since: datetime | None
    until: datetime | None

    def where(self, before: int | None = None) -> Where:
        """The WHERE of the search (newest first, keyset on id)."""
        where = Where()
        if self.actor is not None:
            where.add("lower(actor) = lower(%(actor)s)", actor=self.actor)
        if self.resident is not None:
            where.add("resident_id = %(resident)s", resident=self.resident)
        if self.action:
            where.add("action = ANY(%(actions)s)", actions=self.action)
        if self.outcome:
            where.add("outcome = ANY(%(outcomes)s)", outcomes=[str(o) for o in self.outcome])
        if self.since is not None:
            where.add("at >= %(since)s", since=self.since)
        if self.until is not None:
            where.add("at < %(until)s", until=self.until)
        if before is not None:
            where.add("id < %(before)s", before=before)
        return where


def audit_filters(
    actor: Annotated[str | None, Query(min_length=1, max_length=MAX_USERNAME + 8,
                                       pattern=r"^[^\x00-\x1f]+$",
                                       description="Username (any case) or cli:<os user>.")
                     ] = None,
    resident: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Resident id.")] = None,
    action: Annotated[list[str] | None, Query(
        description="Repeat to match several actions (vocabulary `audit_actions`).")] = None,
    outcome: Annotated[list[Outcome] | None, Query(description="ok, denied, error.")] = None,
    since: Annotated[BoundedTime | None, Query(description="At or after (ISO 8601).")] = None,
    until: Annotated[BoundedTime | None, Query(description="Before (ISO 8601).")] = None,
) -> AuditFilters:
    """Validated filters: unknown actions are a 422 naming the field."""
    known = {a.value for a in Action}
    for value in action or ():
        if value not in known:
            raise invalid_query("action", f"unknown action {value[:40]!r}")
    if since is not None and until is not None and since >= until:
        raise invalid_query("until", "must be later than 'since'")
    return AuditFilters(actor, resident, action, outcome, since, until)


FiltersDep = Annotated[AuditFilters, Depends(audit_filters)]


async def _search(conn: AsyncConn, filters: AuditFilters, before: int | None, limit: int
                  ) -> list[AuditEntryOut]:
    where = filters.where(before)
    query = sql.SQL(_SEARCH).format(where=where.clause())
    async with conn.cursor(row_factory=class_row(AuditEntryOut)) as cur:
        await cur.execute(query, {**where.params, "limit": limit})
        return await cur.fetchall()


@router.get("/audit", response_model=list[AuditEntryOut], responses={200: {
    "description": "One page, newest first; a `Link: <...>; rel=\"next\"` header names the "
                   "next page when more records match."}},
    dependencies=[audited(Action.AUDIT_READ, "audit")])
async def search_audit(request: Request, response: Response, _admin: AdminUser,
                       conn: ConnDep, filters: FiltersDep,
                       cursor: Annotated[int | None, Query(
                           ge=1, le=MAX_ID, description="From the previous page's Link.")
                       ] = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       ) -> list[AuditEntryOut]:
    """Search the audit trail (administrators)."""
    rows = await _search(conn, filters, cursor, limit + 1)
    if len(rows) > limit:
        rows = rows[:limit]
        url = request.url.include_query_params(cursor=rows[-1].id)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return rows


_CSV_COLUMNS = ("id", "at", "actor_id", "actor", "address", "action", "target_type",
                "target_id", "resident_id", "outcome", "detail", "hash")
# Appended (older readers keep their columns): `at` in the record's site zone, 24 h, as
# people read it (issue 14), and that zone; `at` itself stays ISO 8601 UTC for machines.
_CSV_LOCAL = ("site_time", "timezone")


def _site_time(row: AuditEntryOut) -> str:
    """"2026-03-02 07:30": the record's time in its zone (kernel.sites.site_time)."""
    return site_time(row.at, row.timezone)


def _csv_cell(value: object) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/audit/export", response_class=Response, responses={200: {
    "content": {"text/csv": {}}, "description": f"CSV, newest first, at most {EXPORT_LIMIT} "
                                                "rows."}})
async def export_audit(note: Annotated[AuditNote, audited(Action.AUDIT_EXPORT, "audit")],
                       _admin: AdminUser, conn: ConnDep, filters: FiltersDep) -> Response:
    """The matching records as CSV (the export is itself recorded, with its filters; `note`
    comes first so that a refused export is recorded too)."""
    rows = await _search(conn, filters, None, EXPORT_LIMIT)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS + _CSV_LOCAL)
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow([_csv_cell(data[c]) for c in _CSV_COLUMNS]
                        + [_site_time(row), _csv_cell(row.timezone)])
    note.detail.update(rows=len(rows), filters={
        k: v for k, v in filters.__dict__.items() if v is not None})
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="audit.csv"'})

"""Read API for alerts: the scoped, filtered, paged listing and one alert with its history;
every route is scoped through `ScopeDep` (residents: `dashboard.residents`, vital signs:
`dashboard.vitals`)."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from psycopg import sql
from psycopg.rows import class_row

from alerts.model import AlertStatus, AlertType, Severity
from dashboard.alert_rows import ALERT_COLUMNS, ALERT_FROM
from dashboard.audit import AuditNote, audited
from dashboard.deps import AsyncConn, ConnDep
from dashboard.language import api_language
from dashboard.models import (
    ALERT_TYPE_PATTERN,
    AlertDetailOut,
    AlertHistoryOut,
    AlertOut,
    BoundedTime,
    FamilyAlertDetailOut,
    FamilyAlertOut,
    family_alert,
    family_history,
    routine_changes,
)
from dashboard.params import MAX_ID, IdPath, SiteQuery
from dashboard.scope import Scope, ScopeDep, Where, not_found
from kernel.accounts import Role
from kernel.audit import Action, Target
from kernel.i18n import N_

logger = logging.getLogger(__name__)

router = APIRouter()


_ALERTS = f"""
SELECT {ALERT_COLUMNS}
{ALERT_FROM}
{{where}}
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s + 1
"""

_ALERT = f"""
SELECT {ALERT_COLUMNS}, a.details
{ALERT_FROM}
{{where}}
"""

_HISTORY = """
SELECT id, at, action, actor_id, actor, status, note
FROM alert_history WHERE alert_id = %s ORDER BY at, id
"""


class _AlertWithDetails(AlertOut):
    """An alert row including its jsonb details (history is fetched separately)."""

    details: dict[str, object]


AlertList = list[AlertOut] | list[FamilyAlertOut]
AlertDetail = AlertDetailOut | FamilyAlertDetailOut
MAX_CURSOR = 200


@dataclass(frozen=True)
class AlertCursor:
    """Where a page of alerts ended: the last alert's (created_at, id), the listing's order.

    Keyset paging: the next page starts strictly after this key, so alerts stored while a
    client pages (they are newer) neither shift nor repeat the pages it has not read yet.
    """

    created_at: datetime
    id: int

    def encode(self) -> str:
        """Opaque to clients: base64url of the key."""
        raw = f"{self.created_at.astimezone(UTC).isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> AlertCursor:
        """The key of a cursor this API made; 422 (field `cursor`) for anything else."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            at, _, alert_id = raw.partition("|")
            created = datetime.fromisoformat(at)
            cursor = cls(created, int(alert_id))
            if created.tzinfo is None or not 1 <= cursor.id <= MAX_ID:
                raise ValueError(raw)
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
            raise invalid_query("cursor", "not a cursor from this API (follow the "
                                "rel=\"next\" URL of the previous page's Link header)") from None
        return cursor


def invalid_query(name: str, message: str) -> RequestValidationError:
    """A field-level 422 for a query parameter, shaped like FastAPI's own."""
    return RequestValidationError([{"loc": ("query", name), "msg": message,
                                    "type": "value_error"}])


def _next_link(request: Request, cursor: AlertCursor) -> str:
    """RFC 8288 Link to the next page: the same query with the new cursor (relative URL)."""
    url = request.url.include_query_params(cursor=cursor.encode())
    return f'<{url.path}?{url.query}>; rel="next"'


@router.get("/alerts", response_model=AlertList, tags=["alerts"], responses={200: {
    "description": "One page, newest first. When more alerts match, a `Link: <...>; "
                   "rel=\"next\"` header names the next page."}})
async def list_alerts(
    request: Request,
    response: Response,
    scope: ScopeDep,
    conn: ConnDep,
    note: Annotated[AuditNote, audited(Action.ALERT_LIST, "alert")],
    status: Annotated[list[AlertStatus] | None,
                      Query(description="Repeat to match several statuses.")] = None,
    site: SiteQuery = None,
    alert_type: Annotated[str | None, Query(alias="type", pattern=ALERT_TYPE_PATTERN,
                                            description="Alert type, e.g. sos, fall.")] = None,
    severity: Annotated[list[Severity] | None,
                        Query(description="Repeat to match several severities.")] = None,
    resident: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Resident id.")] = None,
    since: Annotated[BoundedTime | None, Query(
        description="Only alerts opened at or after this time (ISO 8601; naive = UTC).")
    ] = None,
    until: Annotated[BoundedTime | None, Query(
        description="Only alerts opened before this time.")] = None,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR, description=(
        "The next page: the cursor from the previous page's Link header."))] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 100,
) -> AlertList:
    """Alerts in the caller's scope, newest first, a page at a time (family: family view)."""
    note.target = Target("alert", None, resident)
    scope.check_site(site)
    if since is not None and until is not None and since >= until:
        raise invalid_query("until", "must be later than 'since'")
    after = AlertCursor.decode(cursor) if cursor is not None else None
    if resident is not None:
        await scope.require_resident(conn, resident)
    where = _alert_filters(scope, status, site, alert_type, severity, resident)
    _page_filters(where, since, until, after)
    query = sql.SQL(_ALERTS).format(where=where.clause())
    async with conn.cursor(row_factory=class_row(AlertOut)) as cur:
        await cur.execute(query, {**where.params, "limit": limit})
        alerts = await cur.fetchall()
    note.detail.update(site=site, alerts=[a.id for a in alerts[:limit]])
    if len(alerts) > limit:
        alerts = alerts[:limit]
        response.headers["Link"] = _next_link(
            request, AlertCursor(alerts[-1].created_at, alerts[-1].id))
    if scope.user.role is Role.FAMILY:
        lang = api_language(request)
        return [family_alert(alert, lang) for alert in alerts]
    return alerts


def _page_filters(where: Where, since: datetime | None, until: datetime | None,
                  after: AlertCursor | None) -> None:
    """The time window (on opened_at, the event time) and the keyset of the page."""
    if since is not None:
        where.add("a.opened_at >= %(since)s", since=since)
    if until is not None:
        where.add("a.opened_at < %(until)s", until=until)
    if after is not None:
        where.add("(a.created_at, a.id) < (%(after_at)s, %(after_id)s)",
                  after_at=after.created_at, after_id=after.id)


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


async def alert_detail(conn: AsyncConn, scope: Scope, alert_id: int) -> AlertDetailOut:
    """The staff view of one alert with its history (404 when missing or out of scope)."""
    where = Where()
    where.add("a.id = %(alert_id)s", alert_id=alert_id)
    scope.restrict_alerts(where)
    async with conn.cursor(row_factory=class_row(_AlertWithDetails)) as cur:
        await cur.execute(sql.SQL(_ALERT).format(where=where.clause()), where.params)
        alert = await cur.fetchone()
    if alert is None:
        raise not_found(N_("Alert"))
    async with conn.cursor(row_factory=class_row(AlertHistoryOut)) as cur:
        await cur.execute(_HISTORY, (alert_id,))
        history = await cur.fetchall()
    return AlertDetailOut(**alert.model_dump(), history=history)


@router.get("/alerts/{alert_id}", response_model=AlertDetail, tags=["alerts"])
async def get_alert(alert_id: IdPath, scope: ScopeDep, conn: ConnDep, request: Request,
                    note: Annotated[AuditNote, audited(Action.ALERT_READ, "alert",
                                                       id_param="alert_id")]) -> AlertDetail:
    """One alert with its history (family members: the family view, no staff internals)."""
    detail = await alert_detail(conn, scope, alert_id)
    note.target = Target("alert", alert_id, detail.resident_id)
    lang = api_language(request)
    if scope.user.role is not Role.FAMILY:
        if detail.type != AlertType.ROUTINE_CHANGE:
            return detail
        return detail.model_copy(update={
            "routine_changes": routine_changes(detail.details, lang)})
    return FamilyAlertDetailOut(**family_alert(detail, lang).model_dump(),
                                history=family_history(detail, detail.history, lang))

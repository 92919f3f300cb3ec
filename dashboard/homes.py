"""The district at a glance (GET /homes/state): every home in scope with ONE state for its
tile on the wall screen, and the count per state.

A home is one resident. Its state is decided here, server-side, from what the platform
already stores, so the wall screen, a phone and a test all agree:

- `alert`: an alert of the resident is open or acknowledged (not yet resolved);
- `offline`: an active device reports itself offline, or the bed sensor has sent readings
  but none for `STALE_AFTER` (the family view's rule, dashboard.family.state);
- `visit_overdue`: the regular visit is past its due date (kernel.visits.next_due, the same
  computation as GET /visits/due);
- `away`: the bed is empty and nobody has been in it for `AWAY_AFTER` (no door sensor: out
  of the home is inferred from the bed, as in the family view);
- `up`: the bed is empty, but was occupied within `AWAY_AFTER`;
- `in_bed`: the latest reading says occupied;
- `no_data`: no bed sensor, or no reading in the last 48 hours.

When several hold, the FIRST in that list wins (`HomeState` is declared in that order): what
needs someone now comes before what is merely information. An open alert already says more
than "offline"; a sensor that is offline makes "in bed"/"up"/"away" a guess; an overdue visit
is a task; the bed states are information only.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from psycopg import sql
from pydantic import BaseModel, Field

from alerts.model import Severity
from dashboard.audit import audited
from dashboard.deps import AsyncConn, ConnDep
from dashboard.family.state import AWAY_AFTER, STALE_AFTER
from dashboard.params import SiteQuery
from dashboard.scope import Scope, ScopeDep, Where
from dashboard.visit_plans import plan_rows
from kernel.accounts import Role
from kernel.audit import Action
from kernel.i18n import N_
from kernel.ledger import Risk

logger = logging.getLogger(__name__)

router = APIRouter(tags=["residents"])


def wall_scope(scope: ScopeDep) -> Scope:
    """Dependency: staff and wall displays (the tiles are on the wall screen; a display may
    call nothing else of this kind, dashboard.auth.DISPLAY_ROUTES); family members: 403."""
    if scope.user.role is Role.FAMILY:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("Family accounts see their relative's page only"))
    return scope


WallScope = Annotated[Scope, Depends(wall_scope)]

LOOKBACK = timedelta(hours=48)  # older readings say nothing about now: "no data"


class HomeState(StrEnum):
    """A home's state on its tile; declared in order of precedence (first wins)."""

    ALERT = "alert"
    OFFLINE = "offline"
    VISIT_OVERDUE = "visit_overdue"
    AWAY = "away"
    UP = "up"
    IN_BED = "in_bed"
    NO_DATA = "no_data"


HOME_STATE_LABELS: dict[str, str] = {
    HomeState.ALERT: N_("Open alert"),
    HomeState.OFFLINE: N_("Device offline"),
    HomeState.VISIT_OVERDUE: N_("Visit overdue"),
    HomeState.AWAY: N_("Away"),
    HomeState.UP: N_("Up"),
    HomeState.IN_BED: N_("In bed"),
    HomeState.NO_DATA: N_("No data"),
}


@dataclass(frozen=True, slots=True)
class HomeFacts:
    """What is known about one home now. `latest`/`occupied`: the newest bed reading in the
    lookback; `occupied_recently`: someone was in bed within AWAY_AFTER."""

    active_alerts: int = 0
    devices_offline: int = 0
    latest: datetime | None = None
    occupied: bool | None = None
    occupied_recently: bool = False
    visit_overdue: bool = False


def home_state(facts: HomeFacts, now: datetime, *,
               stale_after: timedelta = STALE_AFTER) -> HomeState:
    """The one state of a home (the module docstring gives the rules and the precedence)."""
    if facts.active_alerts > 0:
        return HomeState.ALERT
    silent = facts.latest is not None and now - facts.latest > stale_after
    if facts.devices_offline > 0 or silent:
        return HomeState.OFFLINE
    if facts.visit_overdue:
        return HomeState.VISIT_OVERDUE
    if facts.latest is None or facts.occupied is None:
        return HomeState.NO_DATA
    if facts.occupied:
        return HomeState.IN_BED
    return HomeState.UP if facts.occupied_recently else HomeState.AWAY


class HomeOut(BaseModel):
    """One home (resident) and its state."""

    resident_id: int
    full_name: str
    site_id: str
    site_timezone: str = Field(description="The site's IANA zone: times are shown in it.")
    address: str | None
    risks: list[Risk]
    state: HomeState
    active_alerts: int = Field(description="Alerts open or acknowledged, not yet resolved.")
    top_severity: Severity | None = Field(description="The loudest of those alerts.")
    devices_offline: int
    last_reading_at: datetime | None = Field(description="The newest bed reading (48 h).")
    visit_overdue: bool


class HomesOut(BaseModel):
    """Every home in scope (by site, then name) and how many are in each state."""

    at: datetime
    counts: dict[HomeState, int] = Field(description="Every state, zero included.")
    homes: list[HomeOut]


# Occupancy history: the per-minute rollup (vitals_1m; a minute is "in bed" at >= half
# occupied, as in the daily summaries) and, for the minutes the rollup has not reached yet,
# the raw readings of the last STALE_AFTER. Only asked when the latest reading is "empty".
_HOMES = """
SELECT r.id, r.full_name, r.site_id, s.timezone, r.address, r.risks,
       al.n, al.severities, dv.offline, bt.time, bt.occupied,
       CASE WHEN bt.occupied IS FALSE THEN
           EXISTS (SELECT 1 FROM vitals_1m v
                   WHERE v.resident_id = r.id AND v.bucket > %(away_since)s
                     AND v.bucket <= %(now)s AND v.occupied_fraction >= 0.5)
           OR EXISTS (SELECT 1 FROM bed_telemetry t
                      WHERE t.resident_id = r.id AND t.time > %(raw_since)s
                        AND t.time > %(away_since)s AND t.time <= %(now)s AND t.occupied)
       END AS occupied_recently
FROM residents r
JOIN sites s ON s.id = r.site_id
LEFT JOIN LATERAL (SELECT count(*) AS n, array_agg(a.severity) AS severities FROM alerts a
                   WHERE a.resident_id = r.id AND a.status IN ('open', 'acknowledged')) al
       ON true
LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE d.online IS FALSE) AS offline FROM devices d
                   WHERE d.resident_id = r.id AND d.active) dv ON true
LEFT JOIN LATERAL (SELECT t.time, t.occupied FROM bed_telemetry t
                   WHERE t.resident_id = r.id AND t.time <= %(now)s AND t.time > %(since)s
                   ORDER BY t.time DESC LIMIT 1) bt ON true
{where}
ORDER BY r.site_id, r.full_name, r.id
"""


def _loudest(severities: list[str] | None) -> Severity | None:
    known = [Severity(s) for s in severities or [] if s in Severity.__members__.values()]
    return max(known, key=lambda s: s.rank) if known else None


async def homes(conn: AsyncConn, where: Where, now: datetime) -> list[HomeOut]:
    """Every active resident matching `where` (alias r) with their state at `now`."""
    overdue = {d.resident_id for d in await plan_rows(conn, where, now) if d.overdue}
    query = sql.SQL(_HOMES).format(where=where.clause())
    cur = await conn.execute(query, {**where.params, "now": now, "since": now - LOOKBACK,
                                     "away_since": now - AWAY_AFTER,
                                     "raw_since": now - STALE_AFTER})
    out = []
    for (rid, name, site, tz, address, risks, n_alerts, severities, offline, latest,
         occupied, recently) in await cur.fetchall():
        facts = HomeFacts(active_alerts=int(n_alerts or 0), devices_offline=int(offline or 0),
                          latest=latest, occupied=occupied, occupied_recently=bool(recently),
                          visit_overdue=rid in overdue)
        out.append(HomeOut(resident_id=rid, full_name=name, site_id=site, site_timezone=tz,
                           address=address, risks=risks, state=home_state(facts, now),
                           active_alerts=facts.active_alerts, top_severity=_loudest(severities),
                           devices_offline=facts.devices_offline, last_reading_at=latest,
                           visit_overdue=facts.visit_overdue))
    return out


RiskQuery = Annotated[list[Risk] | None, Query(description="Only homes whose resident carries "
                                                           "any of these risk categories.")]


@router.get("/homes/state", response_model=HomesOut,
            dependencies=[audited(Action.RESIDENT_LIST, "resident")])
async def homes_state(scope: WallScope, conn: ConnDep, site: SiteQuery = None,
                      risk: RiskQuery = None) -> HomesOut:
    """The district at a glance: every active resident in scope with the state of their
    home (open alert, device offline, visit overdue, away, up, in bed, no data; the first
    that holds wins) and the count per state. Staff only; a worker sees their own site."""
    where = scope.active_residents(site)
    if risk:
        where.add("r.risks && %(risk)s::text[]", risk=[str(r) for r in risk])
    now = datetime.now(UTC)
    rows = await homes(conn, where, now)
    counts = Counter(row.state for row in rows)
    return HomesOut(at=now, counts={s: counts.get(s, 0) for s in HomeState}, homes=rows)

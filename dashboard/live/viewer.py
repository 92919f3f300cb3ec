"""Who receives what on the live feed: a subscriber's scope, reduced to what fan-out checks.

Named `Viewer`, not audience: `alerts.model.Audience` is whom an escalation step notifies
(assigned worker, site workers, family...), a different thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from dashboard.deps import AsyncConn
from dashboard.scope import SITE_ROLES, Scope, Where
from kernel.accounts import Role


@dataclass(frozen=True)
class Viewer:
    """Which alerts one subscriber may receive: `dashboard.scope`'s rules on (site, resident).

    Fan-out checks every message against every open stream, so the scope is resolved once
    (a family member's residents included) instead of asking the database per message.
    """

    role: Role
    site_id: str | None
    residents: frozenset[int] = frozenset()

    def admits(self, site: str, resident_id: int) -> bool:
        """Whether an alert of this site and resident is in scope."""
        if self.role is Role.ADMIN:
            return True
        if self.role in SITE_ROLES:
            return site == self.site_id
        if self.role is Role.FAMILY:
            return resident_id in self.residents
        return False  # deny by default, like Scope


async def load_viewer(conn: AsyncConn, scope: Scope) -> Viewer:
    """The viewer of a scope; family members' residents come from the scope's own SQL."""
    residents: frozenset[int] = frozenset()
    if scope.user.role is Role.FAMILY:
        where = Where()
        scope.restrict_residents(where)
        query = sql.SQL("SELECT r.id FROM residents r {}").format(where.clause())
        cur = await conn.execute(query, where.params)
        residents = frozenset(int(row[0]) for row in await cur.fetchall())
    return Viewer(scope.user.role, scope.user.site_id, residents)

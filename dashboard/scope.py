"""Who may see what: the one place where a user's role becomes SQL filters and access errors.

Rules:
- admin: every site.
- duty_officer, care_worker (and a wall display): residents and alerts of their own site
  only.
- family: only the residents linked to them in family_contacts (and those residents' alerts).

A specific resident or alert outside the caller's scope answers 404, exactly like one that
does not exist, so ids cannot be probed. Asking to filter by another site answers 403,
because the caller's own site is no secret to them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, status
from psycopg import sql

from dashboard.auth import CurrentUser
from dashboard.deps import AsyncConn
from dashboard.models import UserOut
from kernel.accounts import Role
from kernel.i18n import N_, Said

logger = logging.getLogger(__name__)

# Roles that see one site. A wall display (Role.DISPLAY) sees its site too; what it may call
# at all is dashboard.auth.DISPLAY_ROUTES.
SITE_ROLES = frozenset({Role.DUTY_OFFICER, Role.CARE_WORKER, Role.DISPLAY})


@dataclass
class Where:
    """AND-ed SQL conditions with their named parameters."""

    conditions: list[sql.Composable] = field(default_factory=list)
    params: dict[str, object] = field(default_factory=dict)

    def add(self, condition: str | sql.Composable, **params: object) -> None:
        """Add a condition using `%(name)s` placeholders, and their values."""
        self.conditions.append(sql.SQL(condition) if isinstance(condition, str) else condition)
        self.params.update(params)

    def clause(self) -> sql.Composable:
        """`WHERE a AND b ...`, or nothing when there are no conditions."""
        if not self.conditions:
            return sql.SQL("")
        return sql.SQL("WHERE ") + sql.SQL(" AND ").join(self.conditions)


def not_found(what: str) -> HTTPException:
    """The 404 for a missing or out-of-scope object (the two are indistinguishable); `what`
    is a word marked with N_ ("Alert"), said in the reader's language with the sentence."""
    return HTTPException(status.HTTP_404_NOT_FOUND, Said(N_("{what} not found"), what=Said(what)))


@dataclass(frozen=True)
class Scope:
    """What the current user may see, as SQL filters."""

    user: UserOut

    @classmethod
    def for_user(cls, user: UserOut) -> Scope:
        """The scope of a user; deny roles without a usable scope."""
        if user.role in SITE_ROLES and not user.site_id:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                N_("Your account has no site; ask an administrator"))
        return cls(user)

    def check_site(self, site: str | None) -> None:
        """Refuse (403) a site filter outside the user's own site."""
        if site is None or self.user.role not in SITE_ROLES or site == self.user.site_id:
            return
        logger.info("user %s denied site %r", self.user.username, site)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"You can only see site '{self.user.site_id}'; site '{site}' is outside your access",
        )

    def restrict_residents(self, where: Where, alias: str = "r") -> None:
        """Limit a query over residents (table alias `alias`) to this scope."""
        self._restrict(where, alias, "id")

    def active_residents(self, site: str | None) -> Where:
        """The active residents (alias `r`) in this scope, of `site` if given (another site
        than a site-bound user's own: 403): what the overdue-visit list and the district
        tiles start from."""
        self.check_site(site)
        where = Where()
        where.add("r.active")
        self.restrict_residents(where)
        if site is not None:
            where.add("r.site_id = %(site)s", site=site)
        return where

    def restrict_alerts(self, where: Where, alias: str = "a") -> None:
        """Limit a query over alerts (table alias `alias`) to this scope."""
        self._restrict(where, alias, "resident_id")

    def _restrict(self, where: Where, alias: str, resident_column: str) -> None:
        role = self.user.role
        if role is Role.ADMIN:
            return
        if role in SITE_ROLES:
            where.add(sql.SQL("{} = %(scope_site)s").format(sql.Identifier(alias, "site_id")),
                      scope_site=self.user.site_id)
            return
        if role is Role.FAMILY:
            where.add(sql.SQL("{} IN (SELECT resident_id FROM family_contacts "
                              "WHERE user_id = %(scope_user)s)").format(
                                  sql.Identifier(alias, resident_column)),
                      scope_user=self.user.id)
            return
        where.add("false")  # deny by default: a role this code does not know sees nothing

    async def require_resident(self, conn: AsyncConn, resident_id: int) -> None:
        """404 unless the resident exists and is in scope."""
        where = Where()
        where.add("r.id = %(resident_id)s", resident_id=resident_id)
        self.restrict_residents(where)
        query = sql.SQL("SELECT 1 FROM residents r {}").format(where.clause())
        cur = await conn.execute(query, where.params)
        if await cur.fetchone() is None:
            raise not_found(N_("Resident"))


def get_scope(user: CurrentUser) -> Scope:
    """Dependency: the current user's scope (implies authentication)."""
    return Scope.for_user(user)


ScopeDep = Annotated[Scope, Depends(get_scope)]

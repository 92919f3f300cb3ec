"""Per-site and per-resident threshold overrides (table `alert_overrides`)."""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql
from pydantic import ValidationError

from alerts.config import AlertSettings, deep_merge, effective_settings
from kernel.db import Conn


class OverrideError(ValueError):
    """An override that would not produce valid settings; the message says why."""


def validate_override(base: AlertSettings, override: dict[str, Any]) -> AlertSettings:
    """The settings `override` would give on top of `base`; raise OverrideError if invalid."""
    try:
        return effective_settings(base, override)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise OverrideError(problems) from None


def set_override(conn: Conn, base: AlertSettings, override: dict[str, Any], *,
                 site: str | None = None, resident: int | None = None,
                 replace: bool = False) -> dict[str, Any]:
    """Merge (or replace) the stored override of a site or resident; returns what is stored."""
    if (site is None) == (resident is None):
        raise OverrideError("give exactly one of a site or a resident")
    column, key = ("site_id", site) if site is not None else ("resident_id", resident)
    current = get_override(conn, site=site, resident=resident)
    stored = override if replace or current is None else deep_merge(current, override)
    validate_override(base, stored)
    conn.execute(
        sql.SQL("INSERT INTO alert_overrides ({col}, settings) VALUES (%s, %s) "
                "ON CONFLICT ({col}) DO UPDATE SET settings = EXCLUDED.settings, "
                "updated_at = now()").format(col=sql.Identifier(column)),
        (key, json.dumps(stored)))
    return stored


def get_override(conn: Conn, *, site: str | None = None, resident: int | None = None
                 ) -> dict[str, Any] | None:
    """The stored override of a site or a resident, if any."""
    if site is not None:
        row = conn.execute("SELECT settings FROM alert_overrides WHERE site_id = %s",
                           (site,)).fetchone()
    else:
        row = conn.execute("SELECT settings FROM alert_overrides WHERE resident_id = %s",
                           (resident,)).fetchone()
    return dict(row[0]) if row else None


def clear_override(conn: Conn, *, site: str | None = None, resident: int | None = None
                   ) -> bool:
    """Remove a site's or resident's override; True if there was one."""
    if site is not None:
        cur = conn.execute("DELETE FROM alert_overrides WHERE site_id = %s", (site,))
    else:
        cur = conn.execute("DELETE FROM alert_overrides WHERE resident_id = %s", (resident,))
    return cur.rowcount > 0


def resident_settings(conn: Conn, base: AlertSettings, resident: int) -> AlertSettings:
    """Effective settings of one resident: defaults, then site, then resident override."""
    row = conn.execute(
        "SELECT so.settings, ro.settings FROM residents r "
        "LEFT JOIN alert_overrides so ON so.site_id = r.site_id "
        "LEFT JOIN alert_overrides ro ON ro.resident_id = r.id WHERE r.id = %s",
        (resident,)).fetchone()
    if row is None:
        raise OverrideError(f"no resident {resident}")
    return effective_settings(base, row[0], row[1])

"""Sites and residents: the site id syntax, IANA time zones, creating sites and residents.

Part of the shared kernel. The site id is also a level of the MQTT topic, so the device
contract (gateway.schema) takes its syntax from here.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from kernel.accounts import RegistryError
from kernel.i18n import DEFAULT_LANGUAGE, LANGUAGES

SITE_PATTERN = r"[a-z0-9-]{1,32}"
# \A...\Z, not ^...$: "$" also matches before a trailing newline ("north\n").
SITE_RE = re.compile(rf"\A{SITE_PATTERN}\Z")


def is_valid_site(site: str) -> bool:
    """True when `site` is a valid site slug."""
    return bool(SITE_RE.match(site))


_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1024)  # bounded: names come from HTTP requests too
def is_valid_timezone(name: str) -> bool:
    """True for an IANA time zone this machine knows (night and morning rules use it); not
    the tz database's helper files (`localtime` is this server's zone, not the resident's)."""
    if name in _NOT_ZONES or name.startswith(("posix/", "right/")):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def site_zone(name: str | None) -> ZoneInfo:
    """The zone `name` (a site's), or UTC when it is unset or unknown here: a time is then
    still shown, in a zone that is said (`site_time`), never the server's own."""
    return ZoneInfo(name if name and is_valid_timezone(name) else "UTC")


def site_time(at: datetime, zone: str | None, today_of: datetime | None = None, *,
              seconds: bool = False) -> str:
    """"2026-03-02 07:30": `at` as people at the site read it (issue 14's rule: the site's
    zone, 24-hour, ISO-like; the pages' static/time.js `siteTime`). With `today_of` (now),
    only "07:30" when `at` falls on the same day there; with `seconds`, "07:30:15" (event
    times in an alert's history, where seconds tell triggers apart). Server texts people read
    (409s, alert history notes, exports) use this; JSON fields stay ISO 8601 UTC."""
    tz = site_zone(zone)
    local = at.astimezone(tz)
    same_day = today_of is not None and local.date() == today_of.astimezone(tz).date()
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    text = clock if same_day else f"{local:%Y-%m-%d} {clock}"
    return text if tz.key == (zone or "UTC") else f"{text} UTC"


def add_site(conn: psycopg.Connection[Any], site_id: str, name: str, timezone: str = "UTC",
             language: str = DEFAULT_LANGUAGE) -> None:
    """Create a site (idempotent)."""
    check_site_fields(site_id, timezone, language)
    conn.execute("INSERT INTO sites (id, name, timezone, language) VALUES (%s, %s, %s, %s) "
                 "ON CONFLICT (id) DO NOTHING", (site_id, name, timezone, language))


def site_timezones(conn: psycopg.Connection[Any]) -> dict[str, ZoneInfo]:
    """Every site's time zone (a zone this machine does not know is left out): simulated
    residents live on their site's clock, as real ones do."""
    rows = conn.execute("SELECT id, timezone FROM sites").fetchall()
    return {str(site): ZoneInfo(str(tz)) for site, tz in rows if is_valid_timezone(str(tz))}


def add_resident(conn: psycopg.Connection[Any], site_id: str, full_name: str,
                 address: str | None = None, birth_year: int | None = None) -> int:
    """Create a resident at a site; return the new id."""
    if conn.execute("SELECT 1 FROM sites WHERE id = %s", (site_id,)).fetchone() is None:
        raise RegistryError(f"no site {site_id!r}; create it first")
    row = conn.execute(
        "INSERT INTO residents (site_id, full_name, address, birth_year) "
        "VALUES (%s, %s, %s, %s) RETURNING id", (site_id, full_name, address, birth_year),
    ).fetchone()
    assert row is not None
    return int(row[0])




def check_site_fields(site_id: str, timezone: str | None, language: str | None = None
                      ) -> None:
    """Raise RegistryError for a bad site id, an unknown time zone or a language the
    platform does not speak (a site's group channels are written to in it, so a tag without
    a catalog would silently mean English)."""
    if not is_valid_site(site_id):
        raise RegistryError(f"site id {site_id!r} must be 1-32 of a-z, 0-9 and '-'")
    if timezone is not None and not is_valid_timezone(timezone):
        raise RegistryError(f"unknown time zone {timezone!r}: use an IANA name such as "
                            "'Asia/Shanghai' or 'Europe/Berlin'")
    if language is not None and language not in LANGUAGES:
        raise RegistryError(f"unknown language {language!r}: use one of "
                            f"{', '.join(LANGUAGES)}")


def create_site(conn: psycopg.Connection[Any], site_id: str, name: str, timezone: str = "UTC",
                address: str | None = None, language: str = DEFAULT_LANGUAGE) -> None:
    """Create a new site; an existing one is an error (not silently left unchanged), since
    whoever asked expects the name, time zone and language they gave to hold afterwards.
    `language` is the one its group channels are written to in (kernel.i18n.LANGUAGES)."""
    check_site_fields(site_id, timezone, language)
    row = conn.execute("INSERT INTO sites (id, name, timezone, address, language) "
                       "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
                       (site_id, name, timezone, address, language)).fetchone()
    if row is None:
        raise RegistryError(f"site {site_id!r} already exists; change it with "
                            f"`eldercare site update {site_id}`")


def update_site(conn: psycopg.Connection[Any], site_id: str, *, name: str | None = None,
                timezone: str | None = None, address: str | None = None,
                set_address: bool = False, language: str | None = None) -> None:
    """Change a site's name, time zone, address or language (None leaves a field as it is)."""
    check_site_fields(site_id, timezone, language)
    row = conn.execute("UPDATE sites SET name = COALESCE(%s, name), "
                       "timezone = COALESCE(%s, timezone), "
                       "language = COALESCE(%s, language), "
                       "address = CASE WHEN %s THEN %s ELSE address END "
                       "WHERE id = %s RETURNING id",
                       (name, timezone, language, set_address, address, site_id)).fetchone()
    if row is None:
        raise RegistryError(f"no site {site_id!r}")

"""The one output format of the administration commands' `list` and `show`.

A person reads an aligned table (`list`) or `key: value` lines (`show`); a script adds
`--json` and reads exactly one machine format: a JSON array of objects for `list`, one JSON
object for `show`, with the same keys as the API's items where the API has them. Every
command module prints through here, so the formats cannot drift apart again (the issue 13
trial found tables, JSON lines and JSON arrays side by side).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, tzinfo
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

Column = tuple[str, str]
"""(key in the row, heading of the table's column)."""

NONE = "-"
MAX_CELL = 40


def add_json_flag(parser: argparse.ArgumentParser, what: str = "") -> None:
    """The `--json` flag of a `list`/`show` command."""
    parser.add_argument("--json", action="store_true",
                        help=what or "print JSON for scripts (list: an array of objects; "
                                     "show: one object)")


def to_json(value: object) -> str:
    """JSON text: dates and times as ISO 8601 with their offset, enums as their values."""
    def default(o: object) -> object:
        if isinstance(o, datetime | date):
            return o.isoformat()
        if isinstance(o, Enum):
            return o.value
        return str(o)
    return json.dumps(value, indent=2, default=default, ensure_ascii=False)


def cell(value: object, zone: tzinfo | None = None) -> str:
    """One value as a person reads it: times as `YYYY-MM-DD HH:MM` in `zone` (the site's,
    issue 14's rule), lists comma-separated, nothing as '-', long text cut."""
    if value is None or value == [] or value == "":
        return NONE
    if isinstance(value, datetime):
        shown = value.astimezone(zone) if zone is not None and value.tzinfo else value
        return shown.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list | tuple):
        return ", ".join(cell(v, zone) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v, zone)}" for k, v in value.items())
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column],
          zones: Mapping[str, tzinfo] | None = None) -> str:
    """An aligned text table with a heading line; `zones` maps a row's `site_id` to the
    zone its times are shown in. No rows: a line saying so (an empty table reads as broken)."""
    if not rows:
        return "(none)"
    cells = [[cell(r.get(key), (zones or {}).get(str(r.get("site_id")))) for key, _ in columns]
             for r in rows]
    heads = [head for _, head in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines)


def record(obj: Mapping[str, Any], zone: tzinfo | None = None, skip: Sequence[str] = ()
           ) -> str:
    """`key: value` lines of one object, aligned; nested lists of objects (history,
    contacts) as indented tables under their key."""
    keys = [k for k in obj if k not in skip]
    width = max((len(k) for k in keys), default=0)
    lines: list[str] = []
    for key in keys:
        value = obj[key]
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            lines.append(f"{key}:")
            sub = table(value, [(k, k) for k in value[0]], None if zone is None
                        else {str(v.get("site_id")): zone for v in value})
            lines += ["  " + line for line in sub.splitlines()]
            continue
        lines.append(f"{key.ljust(width)}  {cell(value, zone) if key != 'id' else value}")
    return "\n".join(lines)


def zone_of(name: str | None) -> tzinfo | None:
    """The site's time zone by IANA name (None if unknown)."""
    try:
        return ZoneInfo(name) if name else None
    except (ValueError, KeyError):
        return None


def print_list(args: argparse.Namespace, rows: Sequence[Mapping[str, Any]],
               columns: Sequence[Column], zones: Mapping[str, tzinfo] | None = None) -> None:
    """A `list` command's result: the table, or with --json the array of objects."""
    _write(to_json(list(rows)) if getattr(args, "json", False)
           else table(rows, columns, zones))


def print_one(args: argparse.Namespace, obj: Mapping[str, Any], zone: tzinfo | None = None,
              skip: Sequence[str] = ()) -> None:
    """A `show` command's result: `key: value` lines, or with --json the object."""
    _write(to_json(dict(obj)) if getattr(args, "json", False) else record(obj, zone, skip))


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")


def site_zones(conn: Any) -> dict[str, tzinfo]:
    """Every site's time zone, for showing a list's times where each row's site is."""
    zones = {}
    for site, name in conn.execute("SELECT id, timezone FROM sites").fetchall():
        zone = zone_of(str(name))
        if zone is not None:
            zones[str(site)] = zone
    return zones

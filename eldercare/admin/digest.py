"""`eldercare alerts digest`: write the daily outlier digest now, as the scheduled job does
(alerts/learning/outliers.py, docs/alerts.md "Daily digest"), and print it: after a
restore, after changing a resident's settings (`--force` recomputes a day already
written), or to see what the duty screen will show."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from alerts.config import AlertSettings
from alerts.learning import outliers
from alerts.learning.features import BY_NAME
from dashboard.digest import reason_text
from eldercare.admin import output
from eldercare.admin.audited import audited, note
from kernel import db
from kernel.audit import Action, Target

Runtime = Callable[[argparse.Namespace], Any]  # resolves args to an object with database_url
Settings = Callable[[argparse.Namespace], Any]  # the platform settings (`.alerts`)
Add = Callable[..., argparse.ArgumentParser]


def run_digests(database_url: str, base: AlertSettings, now: datetime, site: str | None,
                day: date | None, force: bool) -> list[dict[str, Any]]:
    """The digests written (or found) for `site` (default: every site) and `day` (default:
    each site's due day), as plain data with the reasons in words."""
    with db.connect(database_url, autocommit=True) as conn:
        if day is None:
            runs = [r for r in outliers.run_digest(conn, now, base, force=force)
                    if site is None or r.site_id == site]
        else:
            sites = [site] if site else [str(r[0]) for r in conn.execute(
                "SELECT id FROM sites ORDER BY id").fetchall()]
            runs = [outliers.run_site(conn, base, s, day, now, force=force) for s in sites]
        out = []
        for run in runs:
            row = conn.execute("SELECT scored, skipped, entries FROM outlier_digests WHERE "
                               "site_id = %s AND day = %s", (run.site_id, run.day)).fetchone()
            raw: Any = row[2] if row else []
            entries = [dict(e) for e in raw]
            out.append({"site_id": run.site_id, "day": run.day.isoformat(),
                        "written_now": run.written, "fitted": run.fitted,
                        "scored": row[0] if row else 0, "skipped": row[1] if row else 0,
                        "residents": [_words(e) for e in entries]})
    return out


def _words(entry: dict[str, Any]) -> dict[str, Any]:
    reasons = [reason_text(BY_NAME[r["feature"]], r["recent"], r["usual"], "en")
               for r in entry["reasons"] if r["feature"] in BY_NAME]
    return {"resident_id": entry["resident_id"], "score": entry["score"],
            "nights": entry["nights"], "reasons": reasons}


def register(alerts: Any, add: Add, runtime: Runtime, settings: Settings) -> None:
    """Add `digest` to the `alerts` sub-command group."""

    @audited(Action.DIGEST_READ, lambda args: Target("site", args.site))
    def cmd_digest(args: argparse.Namespace) -> int:
        found = run_digests(runtime(args).database_url, settings(args).alerts,
                            datetime.now(UTC), args.site, args.day, args.force)
        note().detail.update(site=args.site, day=args.day, force=bool(args.force))
        output._write(output.to_json(found))
        return 0

    sp = add("digest", cmd_digest, "write the daily outlier digest now (as the scheduled job "
             "does) and print it (docs/alerts.md, Daily digest)", alerts)
    sp.add_argument("--site", help="one site (default: every site)")
    sp.add_argument("--day", type=date.fromisoformat,
                    help="the site's local date, YYYY-MM-DD (default: the day that is due)")
    sp.add_argument("--force", action="store_true", help="recompute a day already written")

"""Builders for the visits tests (tests/dashboard/test_visits*.py): a visit that took place
some days ago, inserted straight into the real database."""

from __future__ import annotations

import json
from datetime import timedelta

from kernel import db
from kernel.visits import VISIT_CHECKLIST

ALL_TICKED = dict.fromkeys(VISIT_CHECKLIST, True)


def completed_visit(database_url: str, resident_id: int, site: str, days_ago: int,
                    *, findings: str = "Fine", follow_up: bool = False) -> int:
    """A visit that ended `days_ago` days before the database's now (all items ticked)."""
    with db.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO visits (resident_id, site_id, status, due_on, arrived_at, left_at, "
            "findings, checklist, follow_up, follow_up_note) "
            "VALUES (%(r)s, %(s)s, 'completed', (now() - %(ago)s)::date, "
            "now() - %(ago)s - interval '30 minutes', now() - %(ago)s, %(f)s, %(c)s, %(fu)s, "
            "CASE WHEN %(fu)s THEN 'call the GP' END) RETURNING id",
            {"r": resident_id, "s": site, "ago": timedelta(days=days_ago), "f": findings,
             "c": json.dumps(ALL_TICKED), "fu": follow_up}).fetchone()
    assert row is not None
    return int(row[0])

"""Alert persistence: open an alert (or attach a repeat to the open one) with its history."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import psycopg

from alerts.model import AlertTrigger

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """Result of storing a trigger."""

    alert_id: int
    created: bool


_UPSERT = """
INSERT INTO alerts (resident_id, site_id, device_id, type, severity, opened_at, last_seen,
                    source_seq, details)
VALUES (%(resident_id)s, %(site)s, %(device_id)s, %(type)s, %(severity)s, %(at)s, %(at)s,
        %(source_seq)s, %(details)s)
ON CONFLICT (resident_id, type) WHERE status IN ('open', 'acknowledged')
DO UPDATE SET count = alerts.count + (EXCLUDED.last_seen > alerts.last_seen)::int,
              last_seen = GREATEST(alerts.last_seen, EXCLUDED.last_seen)
RETURNING id, (xmax = 0) AS created
"""

_HISTORY = """
INSERT INTO alert_history (alert_id, action, status, note) VALUES (%s, %s, 'open', %s)
"""


def store_trigger(conn: psycopg.Connection[Any], trig: AlertTrigger) -> StoredAlert | None:
    """Open an alert or attach a repeat; None when this exact trigger was stored before."""
    params = {
        "resident_id": trig.resident_id, "site": trig.site, "device_id": trig.device_id,
        "type": trig.type, "severity": trig.severity, "at": trig.at,
        "source_seq": trig.source_seq, "details": json.dumps(trig.details or {}),
    }
    try:
        with conn.transaction():
            row = conn.execute(_UPSERT, params).fetchone()
            assert row is not None
            alert_id, created = int(row[0]), bool(row[1])
            action = "opened" if created else "repeated"
            conn.execute(_HISTORY, (alert_id, action, f"{trig.type} at {trig.at.isoformat()}"))
    except psycopg.errors.UniqueViolation:
        logger.info("duplicate trigger %s/%s seq %s ignored", trig.device_id, trig.type,
                    trig.source_seq)
        return None
    return StoredAlert(alert_id, created)

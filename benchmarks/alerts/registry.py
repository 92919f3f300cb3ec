"""The bench site in the registry: homes with a bed sensor and a call button (provisioned
once, reused), the admin account of the stream login, and the alerts the presses opened."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.alerts.buttons import Press
from benchmarks.alerts.common import ADMIN_USERNAME, BENCH_SITE
from benchmarks.ingest import create_residents
from eldercare.runtime import Runtime
from gateway.provisioning import DeviceCredentials
from gateway.schema import DeviceType
from kernel import accounts
from kernel.db import connect

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Home:
    """A bench resident's bed sensor and call button."""

    bed: DeviceCredentials
    button: DeviceCredentials


def provision(rt: Runtime, count: int) -> list[Home]:
    """`count` homes with a bed sensor and a call button (created once, reused)."""
    path = rt.data_dir / f"bench-alerts-homes-{count}.json"
    if path.exists():
        homes = [Home(DeviceCredentials(**h["bed"]), DeviceCredentials(**h["button"]))
                 for h in json.loads(path.read_text())]
        if _registered(rt, homes):
            return homes
        logger.warning("cached bench devices in %s are not registered; provisioning anew", path)
    homes = _create_homes(rt, count)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"bed": h.bed.as_dict(), "button": h.button.as_dict()}
                                for h in homes]))
    return homes


def _registered(rt: Runtime, homes: list[Home]) -> bool:
    ids = [d.device_id for h in homes for d in (h.bed, h.button)]
    with connect(rt.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM devices WHERE id = ANY(%s) AND active",
                           (ids,)).fetchone()
    return row is not None and int(str(row[0])) == len(ids)


def _create_homes(rt: Runtime, count: int) -> list[Home]:
    devices = create_residents(rt, BENCH_SITE, "Alert", count,
                               (DeviceType.BED_SENSOR, DeviceType.CALL_BUTTON))
    return [Home(bed, button) for bed, button in devices]


def resolve_open_alerts(rt: Runtime) -> int:
    """Resolve the bench site's open alerts (one open alert per resident and type)."""
    with connect(rt.database_url) as conn:
        ids = [int(str(r[0])) for r in conn.execute(
            "UPDATE alerts SET status = 'resolved', outcome = 'other', resolved_at = now(), "
            "note = 'closed by python -m benchmarks alerts' "
            "WHERE site_id = %s AND status IN ('open', 'acknowledged') RETURNING id",
            (BENCH_SITE,)).fetchall()]
        conn.execute("UPDATE alert_escalations SET done_at = now(), skipped = true "
                     "WHERE done_at IS NULL AND alert_id = ANY(%s)", (ids,))
        conn.commit()
    return len(ids)


def ensure_admin(rt: Runtime) -> str:
    """The bench's admin account with a fresh password (returned) for the SSE login."""
    password = secrets.token_urlsafe(18)
    with connect(rt.database_url) as conn:
        row = conn.execute(
            "UPDATE users SET password_hash = %s, active = true WHERE username = %s "
            "AND role = 'admin' RETURNING id",
            (accounts.hash_password(password), ADMIN_USERNAME)).fetchone()
        if row is None:
            accounts.add_user(conn, ADMIN_USERNAME, password, accounts.Role.ADMIN.value,
                              full_name="Alert benchmark")
        conn.commit()
    return password


def alert_rows(rt: Runtime, presses: Sequence[Press]) -> dict[tuple[str, int], int]:
    """Alert id of each press that opened an alert, keyed by (device_id, seq)."""
    if not presses:
        return {}
    with connect(rt.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT device_id, source_seq, id FROM alerts WHERE site_id = %s AND type = 'sos' "
            "AND device_id = ANY(%s) AND source_seq = ANY(%s)",
            (BENCH_SITE, [p.device_id for p in presses], [p.seq for p in presses])).fetchall()
    return {(str(r[0]), int(str(r[1]))): int(str(r[2])) for r in rows}

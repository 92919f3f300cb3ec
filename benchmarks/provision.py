"""Bulk provisioning benchmark: N homes (resident + bed sensor + call button) imported through
the same path as `eldercare import` (validate, one transaction, broker account files,
reload), then a sample of the new devices logs in to the broker (record 0006).

Target (issue 13): 10,000 homes, 20,000 devices with broker accounts, in <= 60 s.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from eldercare.runtime import Runtime
from gateway import bulk_import
from gateway.mqttclient import login_accepted
from gateway.provisioning import DeviceCredentials
from kernel.db import connect
from kernel.sites import add_site

logger = logging.getLogger(__name__)

TARGET_S = 60.0
HOMES_PER_SITE = 500
LOGIN_SAMPLE = 20


def sheet(homes: int, site_prefix: str) -> list[list[str]]:
    """The spreadsheet an administrator would upload, as rows of cells."""
    rows = [["site", "full_name", "address", "birth_year", "bed_sensor", "call_button"]]
    rows += [[f"{site_prefix}-{i // HOMES_PER_SITE + 1}", f"Bench resident {i + 1}",
              f"{i + 1} Bench Road", str(1930 + i % 30), "yes", "yes"] for i in range(homes)]
    return rows


def _login(cred: DeviceCredentials, timeout: float = 10.0) -> bool:
    return login_accepted(cred.mqtt_host, cred.mqtt_port, cred.username, cred.password,
                          client_id=cred.device_id, timeout=timeout)


def run(rt: Runtime, homes: int, site_prefix: str = "bench-prov") -> dict[str, Any]:
    """Import `homes` homes; return the figures."""
    table = sheet(homes, site_prefix)
    accounts = rt.device_accounts()
    with connect(rt.database_url) as conn:
        for n in range((homes - 1) // HOMES_PER_SITE + 1):
            add_site(conn, f"{site_prefix}-{n + 1}", f"Benchmark site {n + 1}")
        conn.commit()
        t0 = time.perf_counter()
        report = bulk_import.check(conn, table)  # validation and the duplicate check
        t1 = time.perf_counter()
        bulk_import.apply(conn, accounts, rt.mqtt, report, actor="benchmark")
        t2 = time.perf_counter()
        total_accounts = accounts.sync(conn)  # a plain re-sync: render + reload alone
        t3 = time.perf_counter()
    creds = report.credentials
    step = max(1, len(creds) // LOGIN_SAMPLE)
    sample = creds[::step][:LOGIN_SAMPLE]
    logins = sum(_login(c) for c in sample)
    return {"homes": homes, "devices": len(creds), "broker_accounts": total_accounts,
            "validate_s": round(t1 - t0, 2), "import_s": round(t2 - t1, 2),
            "total_s": round(t2 - t0, 2), "resync_s": round(t3 - t2, 2),
            "login_sample": len(sample), "logins_ok": logins, "target_s": TARGET_S}


def report(f: dict[str, Any]) -> str:
    """Human-readable figures."""
    verdict = "OK" if exit_code(f) == 0 else "MISSED"
    return (f"provision: {f['homes']} homes, {f['devices']} devices "
            f"({f['broker_accounts']} broker accounts in the files)\n"
            f"  validate {f['validate_s']} s, import (rows + accounts + reload) "
            f"{f['import_s']} s, total {f['total_s']} s (target <= {f['target_s']} s: "
            f"{verdict})\n"
            f"  re-sync alone (render both files + SIGHUP): {f['resync_s']} s\n"
            f"  logins: {f['logins_ok']}/{f['login_sample']} sampled devices connected")


def exit_code(f: dict[str, Any]) -> int:
    """0 target held; 1 a sampled device could not log in; 2 too slow."""
    if f["logins_ok"] != f["login_sample"]:
        return 1
    return 0 if f["total_s"] <= f["target_s"] else 2

"""Entry points for the `eldercare simulate` command (the CLI wiring lives in eldercare.cli)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import psycopg
from pydantic import TypeAdapter, ValidationError

from gateway.device_accounts import DeviceAccounts
from gateway.provisioning import DeviceCredentials
from kernel import db
from kernel.endpoint import MqttEndpoint
from kernel.sites import site_timezones
from simulators.devices import DEFAULT_HEARTBEAT_S
from simulators.fleet import FleetStats, group_by_resident, run_fleet
from simulators.provision import provision_homes, write_credentials
from simulators.simulate import Mode, SimulationSummary, simulate

logger = logging.getLogger(__name__)

_CREDS_LIST = TypeAdapter(list[DeviceCredentials])


def load_credentials(path: Path) -> list[DeviceCredentials]:
    """Read a JSON list of `DeviceCredentials.as_dict()` objects; ValueError says what's wrong."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read device credentials {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    try:
        creds = _CREDS_LIST.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise ValueError(f"{path}: entry {loc}: {first.get('msg', 'invalid')} "
                         f"({exc.error_count()} problem(s)); expected a list of device "
                         "credentials as written at demo seeding") from None
    if not creds:
        raise ValueError(f"{path} lists no devices")
    return creds


def site_zones(database_url: str) -> dict[str, tzinfo]:
    """The sites' time zones, so simulated residents sleep at night on their site's clock;
    empty (each falls back to this machine's zone, with a warning) if the database cannot
    be read."""
    try:
        with db.connect(database_url, autocommit=True) as conn:
            return dict(site_timezones(conn))
    except psycopg.Error as exc:
        logger.warning("site time zones not read (%s); simulated residents follow this "
                       "machine's time zone", exc)
        return {}


def simulate_demo(creds_file: Path, host: str, port: int, stop: threading.Event, *,
                  telemetry_period_s: float = 5.0, sos_mean_interval_s: float | None = 180.0,
                  heartbeat_s: int = DEFAULT_HEARTBEAT_S, cancel_probability: float = 0.3,
                  seed: int = 1, resident_tz: tzinfo | None = None,
                  connect_timeout_s: float = 10.0,
                  site_tz: Mapping[str, tzinfo] | None = None) -> FleetStats:
    """Simulate the demo homes listed in `creds_file` until `stop` is set; log a summary."""
    creds = load_credentials(creds_file)
    logger.info("simulating %d homes (%d devices) against %s:%d; telemetry every %gs, "
                "an SOS every ~%ss across the fleet", len(group_by_resident(creds)),
                len(creds), host, port, telemetry_period_s, sos_mean_interval_s or "never")
    stats = run_fleet(creds, host, port, stop, telemetry_period_s=telemetry_period_s,
                      sos_mean_interval_s=sos_mean_interval_s, seed=seed,
                      heartbeat_s=heartbeat_s, cancel_probability=cancel_probability,
                      resident_tz=resident_tz, connect_timeout_s=connect_timeout_s,
                      site_tz=site_tz)
    logger.info("simulation stopped: %s", stats.summary())
    return stats


def default_truth_path(data_dir: Path, mode: str, now: datetime | None = None) -> Path:
    """Where a run's ground truth goes by default: `<data_dir>/ground-truth/<mode>-<UTC>.jsonl`."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return data_dir / "ground-truth" / f"{mode}-{stamp}.jsonl"


def simulate_from_file(mode: Mode, creds_file: Path, host: str, port: int,
                       stop: threading.Event, **options: Any) -> SimulationSummary:
    """`simulate()` on the devices listed in `creds_file` (options as for `simulate`)."""
    creds = load_credentials(creds_file)
    logger.info("simulating %d homes (%d devices) in %s mode against %s:%d",
                len(group_by_resident(creds)), len(creds), mode, host, port)
    return simulate(mode, creds, host, port, stop, **options)


def provision_to_file(database_url: str, accounts: DeviceAccounts, broker: MqttEndpoint,
                      homes: int, path: Path, **options: Any) -> list[DeviceCredentials]:
    """Provision `homes` simulated homes (see `provision_homes`); write their credentials."""
    with db.connect(database_url) as conn:
        creds = provision_homes(conn, accounts, broker, homes, **options)
    write_credentials(creds, path)
    logger.info("wrote %d device credentials to %s", len(creds), path)
    return creds

"""Entry points for the `eldercare simulate` command (the CLI wiring lives in eldercare.cli)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import tzinfo
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from eldercare.accounts import DeviceCredentials
from simulators.devices import DEFAULT_HEARTBEAT_S
from simulators.fleet import FleetStats, group_by_resident, run_fleet

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


def simulate_demo(creds_file: Path, host: str, port: int, stop: threading.Event, *,
                  telemetry_period_s: float = 5.0, sos_mean_interval_s: float | None = 180.0,
                  heartbeat_s: int = DEFAULT_HEARTBEAT_S, cancel_probability: float = 0.3,
                  seed: int = 1, resident_tz: tzinfo | None = None,
                  connect_timeout_s: float = 10.0) -> FleetStats:
    """Simulate the demo homes listed in `creds_file` until `stop` is set; log a summary."""
    creds = load_credentials(creds_file)
    logger.info("simulating %d homes (%d devices) against %s:%d; telemetry every %gs, "
                "an SOS every ~%ss across the fleet", len(group_by_resident(creds)),
                len(creds), host, port, telemetry_period_s, sos_mean_interval_s or "never")
    stats = run_fleet(creds, host, port, stop, telemetry_period_s=telemetry_period_s,
                      sos_mean_interval_s=sos_mean_interval_s, seed=seed,
                      heartbeat_s=heartbeat_s, cancel_probability=cancel_probability,
                      resident_tz=resident_tz, connect_timeout_s=connect_timeout_s)
    logger.info("simulation stopped: %s", stats.summary())
    return stats

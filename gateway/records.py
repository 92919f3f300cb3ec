"""Internal records the gateway hands to ingest and alerts (validated, enriched, immutable).

The three record types are made once per message and then read by every detector, so they
are made fast: frozen dataclasses whose `__init__` sets the instance's attributes in one go
(`_set_all`) instead of one `object.__setattr__` per field, which the generated `__init__`
of a frozen dataclass does (three times slower). They stay frozen, compare, hash, print and
`dataclasses.replace` as dataclasses do; tests/gateway/test_records.py checks that each
`__init__` sets exactly its fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.schema import DeviceType, EventType

_SET = object.__setattr__


def _set_all(record: object, values: dict[str, Any]) -> None:
    """Give a frozen record all its attributes at once (its `__dict__`)."""
    _SET(record, "__dict__", values)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the registry knows about a device."""

    device_id: str
    site: str
    resident_id: int
    type: DeviceType


@dataclass(frozen=True, init=False)
class TelemetryRecord:
    """One bed-sensor reading, ready for the bed_telemetry table."""

    time: datetime
    device_id: str
    resident_id: int
    seq: int
    occupied: bool
    heart_rate: float | None
    respiration_rate: float | None
    movement: int
    device_time: datetime | None
    received_at: datetime

    def __init__(self, time: datetime, device_id: str, resident_id: int, seq: int,
                 occupied: bool, heart_rate: float | None, respiration_rate: float | None,
                 movement: int, device_time: datetime | None, received_at: datetime) -> None:
        _set_all(self, {"time": time, "device_id": device_id, "resident_id": resident_id,
                        "seq": seq, "occupied": occupied, "heart_rate": heart_rate,
                        "respiration_rate": respiration_rate, "movement": movement,
                        "device_time": device_time, "received_at": received_at})


@dataclass(frozen=True, init=False)
class EventRecord:
    """One device event, ready for the device_events table and the alert engine."""

    time: datetime
    device_id: str
    resident_id: int
    site: str
    seq: int
    type: EventType
    detail: str | None
    device_time: datetime | None
    received_at: datetime
    # Set only on an alarm rescued from a malformed message (gateway.Gateway.process): the
    # device's `ts` as sent, unusable as a time (`time` is the receive time), but the same
    # on every repeat of the alarm, so the detector can tell a repeat from a new press.
    rescued_ts: str | None = None

    def __init__(self, time: datetime, device_id: str, resident_id: int, site: str, seq: int,
                 type: EventType, detail: str | None, device_time: datetime | None,
                 received_at: datetime, rescued_ts: str | None = None) -> None:
        _set_all(self, {"time": time, "device_id": device_id, "resident_id": resident_id,
                        "site": site, "seq": seq, "type": type, "detail": detail,
                        "device_time": device_time, "received_at": received_at,
                        "rescued_ts": rescued_ts})


@dataclass(frozen=True, init=False)
class StatusRecord:
    """One device status report (heartbeat or Last Will)."""

    time: datetime
    device_id: str
    resident_id: int
    seq: int | None
    online: bool
    battery: int | None
    rssi: int | None
    fw: str | None
    heartbeat_s: int | None
    device_time: datetime | None
    received_at: datetime

    def __init__(self, time: datetime, device_id: str, resident_id: int, seq: int | None,
                 online: bool, battery: int | None, rssi: int | None, fw: str | None,
                 heartbeat_s: int | None, device_time: datetime | None,
                 received_at: datetime) -> None:
        _set_all(self, {"time": time, "device_id": device_id, "resident_id": resident_id,
                        "seq": seq, "online": online, "battery": battery, "rssi": rssi,
                        "fw": fw, "heartbeat_s": heartbeat_s, "device_time": device_time,
                        "received_at": received_at})


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that failed validation, with the reason."""

    received_at: datetime
    topic: str
    payload: bytes
    payload_size: int
    reason: str


Record = TelemetryRecord | EventRecord | StatusRecord

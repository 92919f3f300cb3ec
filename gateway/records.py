"""Internal records the gateway hands to ingest and alerts (validated, enriched, immutable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.schema import DeviceType, EventType


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the registry knows about a device."""

    device_id: str
    site: str
    resident_id: int
    type: DeviceType


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that failed validation, with the reason."""

    received_at: datetime
    topic: str
    payload: bytes
    payload_size: int
    reason: str


Record = TelemetryRecord | EventRecord | StatusRecord

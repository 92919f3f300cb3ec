"""Validate and enrich device messages: topic + payload + registry -> records or a dead letter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway import schema
from gateway.records import (
    DeadLetter,
    DeviceInfo,
    EventRecord,
    Record,
    StatusRecord,
    TelemetryRecord,
)
from gateway.schema import Channel, DeviceType
from gateway.text import printable

DEAD_LETTER_KEEP_BYTES = 4096
MAX_TOPIC_CHARS = 300
MAX_CLOCK_AHEAD = timedelta(minutes=5)
DEFAULT_RAW_RETENTION = timedelta(days=90)  # settings raw_retention_days
EARLIEST_PLAUSIBLE = datetime(2020, 1, 1, tzinfo=UTC)
RESCUED_DETAIL_CHARS = 512  # the longest event detail the contract allows

Lookup = Callable[[str], DeviceInfo | None]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid message: the records it produced."""

    records: tuple[Record, ...]
    # A malformed message whose alarm was rescued: the alarm is in `records`, and the
    # original is still dead-lettered with its reason for the integrator.
    dead_letter: DeadLetter | None = None


def event_time(device_ts: datetime, received_at: datetime) -> tuple[datetime, datetime | None]:
    """Pick the row time: device time, or receive time when the device clock is implausible.

    Returns (time, device_time) where device_time is set only when the clock was flagged.
    """
    if device_ts > received_at + MAX_CLOCK_AHEAD or device_ts < EARLIEST_PLAUSIBLE:
        return received_at, device_ts
    return device_ts, None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Gateway:
    """Turns raw MQTT messages into records; never raises on bad input.

    `raw_retention` (settings `raw_retention_days`) is the oldest data the platform keeps:
    older samples, events and status would be dropped by the retention job anyway, and each
    old day would cost a new hypertable chunk, so they are dead-lettered instead. The age is
    judged against the message's receive time, the gateway's only clock.
    """

    def __init__(self, lookup: Lookup, *, raw_retention: timedelta) -> None:
        self._lookup = lookup
        self._retention = raw_retention
        self._days = raw_retention / timedelta(days=1)

    def process(self, topic: str, payload: bytes, received_at: datetime
                ) -> Accepted | DeadLetter:
        """Validate one message; return its records or a dead letter with the reason."""
        try:
            return Accepted(self._process(topic, payload, received_at))
        except (schema.TopicError, RejectedError) as exc:
            return dead_letter(topic, payload, received_at, str(exc))
        except schema.PayloadError as exc:
            letter = dead_letter(topic, payload, received_at, str(exc))
            rescued = self._rescue(topic, payload, received_at, letter.reason)
            return letter if rescued is None else Accepted((rescued,), letter)

    def _rescue(self, topic: str, payload: bytes, received_at: datetime, reason: str
                ) -> EventRecord | None:
        """An alarm in a malformed event, raised anyway: an alarm must never vanish silently.

        Only a payload fault gets here (the topic, device and site were already accepted).
        The device's `ts` is not trusted: the row time is the receive time, as for a flagged
        clock, and the detail tells staff the device needs attention.
        """
        parsed = schema.parse_topic(topic)
        info = self._lookup(parsed.device_id)
        if parsed.channel is not Channel.EVENT or info is None:
            return None
        alarm = schema.rescue_alarm(payload)
        if alarm is None or not schema.may_send(info.type, alarm.type):
            return None
        detail = printable(f"rescued from a malformed message: {reason}", RESCUED_DETAIL_CHARS)
        return EventRecord(received_at, info.device_id, info.resident_id, info.site, alarm.seq,
                           alarm.type, detail, None, received_at, rescued_ts=alarm.ts_sent)

    def _process(self, topic: str, payload: bytes, received_at: datetime) -> tuple[Record, ...]:
        parsed = schema.parse_topic(topic)
        if parsed.channel is Channel.CMD:
            raise RejectedError("devices may not publish on the cmd channel")
        info = self._lookup(parsed.device_id)
        if info is None:
            raise RejectedError(f"unknown device {parsed.device_id!r} (not registered or revoked)")
        if info.site != parsed.site:
            raise RejectedError(
                f"device {parsed.device_id!r} is registered to site {info.site!r}, "
                f"not {parsed.site!r}"
            )
        if parsed.channel is Channel.TELEMETRY:
            return self._telemetry(info, payload, received_at)
        if parsed.channel is Channel.EVENT:
            return (self._event(info, payload, received_at),)
        return (self._status(info, payload, received_at),)

    def _telemetry(self, info: DeviceInfo, payload: bytes, received_at: datetime
                   ) -> tuple[Record, ...]:
        if info.type is not DeviceType.BED_SENSOR:
            raise RejectedError(f"a {info.type.value} does not send telemetry")
        msg = schema.decode_telemetry(payload)
        readings = msg.samples if isinstance(msg, schema.BedTelemetryBatch) else (msg,)
        out: list[Record] = []
        batch = isinstance(msg, schema.BedTelemetryBatch)
        for i, r in enumerate(readings):
            time, device_time = self._row_time(r.ts, received_at, f"samples.{i}: " if batch
                                               else "")
            out.append(TelemetryRecord(
                time, info.device_id, info.resident_id, r.seq, r.occupied, r.heart_rate,
                r.respiration_rate, r.movement, device_time, received_at,
            ))
        return tuple(out)

    def _row_time(self, device_ts: datetime, received_at: datetime, where: str = ""
                  ) -> tuple[datetime, datetime | None]:
        """`event_time`, refusing a row older than the raw retention window."""
        time, device_time = event_time(device_ts, received_at)
        if time < received_at - self._retention:
            days = f"{self._days:g}"
            raise RejectedError(
                f"{where}ts {_iso(time)} is older than the {days}-day retention window "
                f"(received {_iso(received_at)}); not stored")
        return time, device_time

    def _event(self, info: DeviceInfo, payload: bytes, received_at: datetime) -> EventRecord:
        msg = schema.decode_event(payload)
        if not schema.may_send(info.type, msg.type):
            allowed = ", ".join(sorted(schema.EVENT_TYPES_BY_DEVICE[info.type]))
            raise RejectedError(f"a {info.type.value} does not send {msg.type.value!r} events "
                                f"(it may send: {allowed})")
        time, device_time = self._row_time(msg.ts, received_at)
        return EventRecord(time, info.device_id, info.resident_id, info.site, msg.seq, msg.type,
                           msg.detail, device_time, received_at)

    def _status(self, info: DeviceInfo, payload: bytes, received_at: datetime) -> StatusRecord:
        msg = schema.decode_status(payload)
        if msg.ts is None:
            time, device_time = received_at, None
        else:
            time, device_time = self._row_time(msg.ts, received_at)
        return StatusRecord(time, info.device_id, info.resident_id, msg.seq, msg.online,
                            msg.battery, msg.rssi, msg.fw, msg.heartbeat_s, device_time,
                            received_at)


class RejectedError(ValueError):
    """A well-formed message the platform refuses (unknown device, wrong site...)."""


def dead_letter(topic: str, payload: bytes, received_at: datetime, reason: str) -> DeadLetter:
    """Build a dead letter, keeping at most DEAD_LETTER_KEEP_BYTES of the payload.

    Topic and reason may carry device input (a key name, a value): both are made printable
    and bounded here, so no caller can forge a log line or store a NUL that PostgreSQL
    refuses. The payload keeps its raw bytes (bytea).
    """
    return DeadLetter(received_at, printable(topic, MAX_TOPIC_CHARS),
                      payload[:DEAD_LETTER_KEEP_BYTES], len(payload), printable(reason))

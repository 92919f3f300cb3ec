"""Device contract v1: MQTT topics and JSON payloads, the single source of truth.

Simulators, ingest, alerts and the dashboard import this module; nobody else
defines what a device may send or receive. See docs/protocol.md.
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)

from kernel.sites import SITE_PATTERN, is_valid_site

PROTOCOL_VERSION = "v1"
TOPIC_ROOT = "eldercare"
MAX_PAYLOAD_BYTES = 16 * 1024
MAX_SAMPLES = 500
DEVICE_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"

# \A...\Z, not ^...$: "$" also matches before a trailing newline ("north\n").
_DEVICE_RE = re.compile(rf"\A{DEVICE_ID_PATTERN}\Z")


class Channel(StrEnum):
    """Last topic level: what kind of message travels on the topic."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"
    CMD = "cmd"


DEVICE_CHANNELS = frozenset({Channel.TELEMETRY, Channel.EVENT, Channel.STATUS})


class DeviceType(StrEnum):
    """Kinds of device the platform supports."""

    BED_SENSOR = "bed_sensor"
    CALL_BUTTON = "call_button"


class EventType(StrEnum):
    """Discrete device events (channel `event`)."""

    SOS = "sos"
    SOS_CANCEL = "sos_cancel"
    FALL = "fall"
    BED_EXIT = "bed_exit"
    BED_ENTRY = "bed_entry"
    LOW_BATTERY = "low_battery"
    TAMPER = "tamper"
    TEST = "test"


# Which event types each device type may send (docs/protocol.md, "Device types"). A bed
# sensor sending `sos` would otherwise raise a critical alert no button was pressed for.
EVENT_TYPES_BY_DEVICE: dict[DeviceType, frozenset[EventType]] = {
    DeviceType.BED_SENSOR: frozenset({
        EventType.BED_ENTRY, EventType.BED_EXIT, EventType.LOW_BATTERY, EventType.TAMPER,
        EventType.TEST}),
    DeviceType.CALL_BUTTON: frozenset({
        EventType.SOS, EventType.SOS_CANCEL, EventType.FALL, EventType.LOW_BATTERY,
        EventType.TAMPER, EventType.TEST}),
}


def may_send(device_type: DeviceType, event_type: EventType) -> bool:
    """True when a device of `device_type` may send events of `event_type`."""
    return event_type in EVENT_TYPES_BY_DEVICE[device_type]


class TopicError(ValueError):
    """A topic that is not a valid contract-v1 topic."""


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic `eldercare/v1/{site}/{device_id}/{channel}`."""

    site: str
    device_id: str
    channel: Channel

    def __str__(self) -> str:
        return topic_for(self.site, self.device_id, self.channel)


def topic_for(site: str, device_id: str, channel: Channel | str) -> str:
    """Build the topic string for a device channel."""
    return f"{TOPIC_ROOT}/{PROTOCOL_VERSION}/{site}/{device_id}/{Channel(channel).value}"


def device_topic_prefix(site: str, device_id: str) -> str:
    """Topic prefix under which a device's channels live (no trailing slash)."""
    return f"{TOPIC_ROOT}/{PROTOCOL_VERSION}/{site}/{device_id}"


def site_filter(site: str) -> str:
    """MQTT subscription filter for every device-to-platform message of a site."""
    return f"{TOPIC_ROOT}/{PROTOCOL_VERSION}/{site}/+/+"


ALL_SITES_FILTER = f"{TOPIC_ROOT}/{PROTOCOL_VERSION}/+/+/+"


def channel_filter(site: str | None, channel: Channel) -> str:
    """Filter for one channel of every device of a site (None: of every site)."""
    return f"{TOPIC_ROOT}/{PROTOCOL_VERSION}/{site or '+'}/+/{Channel(channel).value}"

# Platform-internal topics (e.g. the live alert bus). Devices can never reach them: their
# accounts are confined to their own device topics.
INTERNAL_TOPIC_ROOT = f"{TOPIC_ROOT}/internal"
INTERNAL_FILTER = f"{INTERNAL_TOPIC_ROOT}/#"


def parse_topic(topic: str) -> Topic:
    """Parse and validate a topic; raise TopicError with a readable reason."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != TOPIC_ROOT or parts[1] != PROTOCOL_VERSION:
        raise TopicError(f"topic {topic!r} is not eldercare/v1/<site>/<device_id>/<channel>")
    _, _, site, device_id, channel = parts
    if not is_valid_site(site):
        raise TopicError(f"site {site!r} must match {SITE_PATTERN}")
    if not _DEVICE_RE.match(device_id):
        raise TopicError(f"device id {device_id!r} must match {DEVICE_ID_PATTERN}")
    try:
        chan = Channel(channel)
    except ValueError:
        raise TopicError(f"unknown channel {channel!r}") from None
    return Topic(site, device_id, chan)


def is_valid_device_id(device_id: str) -> bool:
    """True when `device_id` is a valid device id."""
    return bool(_DEVICE_RE.match(device_id))


# --- timestamps -----------------------------------------------------------

_EPOCH_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


# RFC 3339 section 5.6 date-time, exactly: full date, "T", hh:mm:ss, an optional fraction and a
# mandatory "Z" or +hh:mm offset (T and Z may be lower case, as the RFC allows). ASCII digits
# only. Python's fromisoformat alone is far more lenient (week dates, basic format, no seconds).
RFC3339_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                   r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
_RFC3339_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?:\.(?P<frac>[0-9]+))?(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))")
_TS_HINT = "RFC 3339, e.g. 2026-01-31T22:15:00+08:00 or 2026-01-31T14:15:00.250Z"


def _parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 date-time with an offset, refusing every other ISO 8601 form."""
    match = _RFC3339_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"ts string must be {_TS_HINT}")
    g = match.groupdict()
    try:
        if g["z"] is None and (int(g["oh"]) > 23 or int(g["om"]) > 59):
            raise ValueError("offset out of range")
        minutes = 0 if g["z"] else (int(g["oh"]) * 60 + int(g["om"])) * (
            -1 if g["sign"] == "-" else 1)
        micro = int((g["frac"] or "0")[:6].ljust(6, "0"))
        local = datetime.fromisoformat(f"{g['date']}T{g['h']}:{g['m']}:{g['s']}")
        return (local.replace(microsecond=micro, tzinfo=timezone(timedelta(minutes=minutes)))
                .astimezone(UTC))
    except (ValueError, OverflowError):  # month 13, 23:60, leap second, beyond year 9999
        raise ValueError(f"ts {text!r} is not a valid RFC 3339 time ({_TS_HINT})") from None


def _parse_ts(value: Any) -> datetime:
    """Accept integer Unix epoch milliseconds or an RFC 3339 string with an offset."""
    if isinstance(value, bool):
        raise ValueError("ts must be epoch milliseconds or an RFC 3339 string")
    if isinstance(value, int):
        if not 0 <= value <= _EPOCH_MS_MAX:
            raise ValueError("ts epoch milliseconds out of range")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        return _parse_rfc3339(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("ts datetime needs a timezone")
        return value.astimezone(UTC)
    raise ValueError("ts must be epoch milliseconds (integer) or an RFC 3339 string")


def to_epoch_ms(ts: datetime) -> int:
    """Convert an aware datetime into integer Unix epoch milliseconds."""
    return round(ts.timestamp() * 1000)


Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_ts),
    PlainSerializer(to_epoch_ms, return_type=int, when_used="json"),
    WithJsonSchema(
        {
            "description": "Device time: integer Unix epoch milliseconds, "
            "or an RFC 3339 string with a UTC offset.",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN},
            ],
        }
    ),
]
def _no_control_nul(value: str) -> str:
    """Reject NUL characters: PostgreSQL text cannot store them."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_control_nul)]
Seq = Annotated[int, Field(ge=0, le=2**63 - 1, description="Per-device counter, increasing.")]


class _Message(BaseModel):
    """Base for every payload: strict keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class BedReading(_Message):
    """One bed-sensor reading (channel `telemetry`)."""

    ts: Timestamp
    seq: Seq
    occupied: bool = Field(description="Someone is lying on the mat.")
    heart_rate: float | None = Field(
        default=None, ge=0, le=300, description="Beats per minute; null when not measurable."
    )
    respiration_rate: float | None = Field(
        default=None, ge=0, le=120, description="Breaths per minute; null when not measurable."
    )
    movement: int = Field(ge=0, le=100, description="Movement intensity 0-100.")


class BedTelemetryBatch(_Message):
    """Store-and-forward batch of readings sent after a device was offline."""

    ts: Timestamp
    seq: Seq
    samples: list[BedReading] = Field(min_length=1, max_length=MAX_SAMPLES)


class DeviceEvent(_Message):
    """A discrete event (channel `event`)."""

    ts: Timestamp
    seq: Seq
    type: EventType
    detail: Text | None = Field(default=None, max_length=512, description="Free text, optional.")


class DeviceStatus(_Message):
    """Device health (channel `status`). The retained Last Will is `{"online": false}`."""

    ts: Timestamp | None = Field(default=None, description="Omitted only in the Last Will.")
    seq: Seq | None = Field(default=None, description="Omitted only in the Last Will.")
    online: bool
    battery: int | None = Field(default=None, ge=0, le=100, description="Percent.")
    rssi: int | None = Field(default=None, ge=-150, le=0, description="Signal strength in dBm.")
    fw: Text | None = Field(default=None, max_length=64, description="Firmware version.")
    heartbeat_s: int | None = Field(
        default=None, ge=1, le=86_400, description="Seconds between status heartbeats."
    )


class _Command(BaseModel):
    """Base for platform-to-device commands: devices ignore fields they do not know."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class SosAckCommand(_Command):
    """Platform to device (channel `cmd`): help is coming for this alert."""

    type: Literal["sos_ack"] = "sos_ack"
    ts: Timestamp
    alert_id: int = Field(ge=1)
    message: Text | None = Field(default=None, max_length=256)


class AlarmReceivedCommand(_Command):
    """Platform to device (channel `cmd`): the alarm with this `seq` is stored; stop repeating.

    The end-to-end acknowledgement of an alarm (SCAIP, CLC/TS 50134-9): a broker's PUBACK
    only proves the broker took the message, which a broker crash can still lose. The
    platform sends this only after the alarm's event row and its alert are committed, and
    answers every repeat of the alarm with it again (docs/protocol.md, "alarm_received").
    """

    type: Literal["alarm_received"] = "alarm_received"
    ts: Timestamp
    seq: Seq = Field(description="The `seq` of the alarm (an sos or fall event) now stored.")
    alert_id: int | None = Field(
        default=None, ge=1,
        description="The alert the alarm opened or joined, when the platform knows it.")


Command = SosAckCommand | AlarmReceivedCommand
COMMAND_MODELS: dict[str, type[SosAckCommand] | type[AlarmReceivedCommand]] = {
    "sos_ack": SosAckCommand,
    "alarm_received": AlarmReceivedCommand,
}

LAST_WILL_PAYLOAD = b'{"online":false}'


class PayloadError(ValueError):
    """A payload that does not satisfy the contract; `str()` is the reason."""


def _check_size(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")


def decode_telemetry(payload: bytes) -> BedReading | BedTelemetryBatch:
    """Decode a telemetry payload: a single reading or a `samples` batch."""
    _check_size(payload)
    if b'"samples"' in payload:
        return _validate(BedTelemetryBatch, payload)
    return _validate(BedReading, payload)


def decode_event(payload: bytes) -> DeviceEvent:
    """Decode an event payload."""
    _check_size(payload)
    return _validate(DeviceEvent, payload)


def decode_status(payload: bytes) -> DeviceStatus:
    """Decode a status payload (heartbeat or Last Will)."""
    _check_size(payload)
    return _validate(DeviceStatus, payload)


def decode_command(payload: bytes) -> Command:
    """Decode a platform-to-device command of any known type (no `type`: `sos_ack`)."""
    _check_size(payload)
    return _validate(COMMAND_MODELS.get(_command_type(payload), SosAckCommand), payload)


def _command_type(payload: bytes) -> str:
    """The `type` of a command object, or "" (invalid JSON is reported by `_validate`)."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        return ""
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else ""


_M = TypeVar("_M", bound=BaseModel)


def _validate(model: type[_M], payload: bytes) -> _M:
    try:
        message = model.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadError(_summarise(exc)) from None
    if _key_count(payload) != _fields_given(message):
        _reject_duplicate_keys(payload)
    return message


# A key is a JSON string followed by optional whitespace and ":". Counting these bytes finds
# every key (and, rarely, a string value that starts with ":" or holds an escaped quote
# before one, which only sends the message to the exact check below).
_KEY_END = re.compile(rb'"[ \t\r\n]*:')
_JSON_SPACE = b" \t\r\n"


def _key_count(payload: bytes) -> int:
    """At least the number of keys in `payload` (all objects); exact for compact JSON."""
    if len(payload.translate(None, _JSON_SPACE)) != len(payload):  # whitespace: slower count
        return len(_KEY_END.findall(payload))
    return payload.count(b'":')


def _fields_given(message: BaseModel) -> int:
    """Keys the validated message was built from, nested samples included.

    pydantic keeps the last of duplicate keys, so a payload with duplicates has more keys
    than this; with `extra="forbid"` every key is a field, so equal counts prove none.
    """
    count = len(message.model_fields_set)
    if isinstance(message, BedTelemetryBatch):
        count += sum(map(len, map(_FIELDS_SET, message.samples)))
    return count


_FIELDS_SET = operator.attrgetter("model_fields_set")


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as parsed: its key-value pairs in order, duplicates kept."""


def _reject_duplicate_keys(payload: bytes) -> None:
    """The exact (slower) check, run only when the cheap count cannot rule duplicates out."""
    try:
        tree = json.loads(payload, object_pairs_hook=_Pairs)
    except ValueError:
        return  # pydantic accepted it, so this cannot happen; nothing to add
    _check_pairs(tree, "")


def _check_pairs(node: Any, path: str) -> None:
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, value in node:
            if key in seen:
                where = f"{path}: " if path else ""
                raise PayloadError(f"{where}duplicate key {key!r} (each key at most once)")
            seen.add(key)
            _check_pairs(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _check_pairs(item, f"{path}.{i}")


# Alarms that are rescued from a malformed event (docs/protocol.md, "Invalid messages").
ALARM_TYPES = frozenset({EventType.SOS, EventType.FALL})
_SEQ_MAX = 2**63 - 1
_TS_SENT_KEEP = 64


@dataclass(frozen=True, slots=True)
class RescuedAlarm:
    """The parts of a malformed event that still prove it is an alarm.

    `ts_sent` is the device's `ts` exactly as sent (compact JSON text, "" when absent): it
    cannot be trusted as a time, but a repeat of the same alarm carries the same text, so
    with `seq` it tells the device's copies of one press apart from a new press.
    """

    seq: int
    type: EventType
    ts_sent: str


def rescue_alarm(payload: bytes) -> RescuedAlarm | None:
    """The alarm in an event payload that failed validation, when it is unambiguous.

    A missed SOS can cost a life, so an `sos` or `fall` whose only faults lie elsewhere (a
    `ts` that is not strict RFC 3339, an unknown extra field...) is still raised. It must be
    a JSON object with no duplicate key (the same exact check as `_validate`, so
    `{"type":"test","type":"sos"}` never opens an alarm), `type` exactly "sos" or "fall"
    and `seq` a valid integer. Anything else is None: only dead-lettered. Only called on
    the failure path, so valid messages pay nothing for it.
    """
    try:
        tree = json.loads(payload, object_pairs_hook=_Pairs)
        if not isinstance(tree, _Pairs):
            return None
        _check_pairs(tree, "")
    except (ValueError, RecursionError):  # invalid JSON, undecodable bytes, a duplicate key
        return None
    body = dict(tree)
    kind, seq = body.get("type"), body.get("seq")
    if (not isinstance(kind, str) or kind not in ALARM_TYPES or type(seq) is not int
            or not 0 <= seq <= _SEQ_MAX):
        return None
    ts_sent = json.dumps(body["ts"], separators=(",", ":")) if "ts" in body else ""
    if len(ts_sent) > _TS_SENT_KEEP:  # kept in detector state: bounded, still one per value
        ts_sent = "sha256:" + hashlib.sha256(ts_sent.encode()).hexdigest()
    return RescuedAlarm(seq, EventType(kind), ts_sent)


def _summarise(exc: ValidationError) -> str:
    """Turn a pydantic ValidationError into one readable line."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "payload"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"(+{more} more)")
    return "; ".join(parts)


def encode(message: BaseModel) -> bytes:
    """Serialise a contract message to its wire form (compact JSON, ts as epoch ms)."""
    return message.model_dump_json(exclude_none=True).encode()


CHANNEL_MODELS: dict[str, type[BaseModel]] = {
    "telemetry-reading": BedReading,
    "telemetry-batch": BedTelemetryBatch,
    "event": DeviceEvent,
    "status": DeviceStatus,
    "cmd-sos_ack": SosAckCommand,
    "cmd-alarm_received": AlarmReceivedCommand,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema documents for every payload, keyed by file stem."""
    return {name: model.model_json_schema() for name, model in CHANNEL_MODELS.items()}

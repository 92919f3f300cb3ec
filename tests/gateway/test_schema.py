"""Unit tests of the device contract v1 (gateway/schema.py): topics, payloads, wire form."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from gateway import export_schemas, schema
from gateway.schema import (
    LAST_WILL_PAYLOAD,
    MAX_PAYLOAD_BYTES,
    MAX_SAMPLES,
    AlarmReceivedCommand,
    BedReading,
    BedTelemetryBatch,
    Channel,
    DeviceEvent,
    DeviceStatus,
    EventType,
    PayloadError,
    SosAckCommand,
    Topic,
    TopicError,
    decode_command,
    decode_event,
    decode_status,
    decode_telemetry,
    encode,
    parse_topic,
    topic_for,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T0_MS = 1_767_225_600_000  # T0 as Unix epoch milliseconds

Decoder = Callable[[bytes], BaseModel]
DECODERS: list[Decoder] = [decode_telemetry, decode_event, decode_status, decode_command]


_DROP = object()  # sentinel: remove this key from the payload


def reading(**overrides: Any) -> dict[str, Any]:
    """A valid bed reading as a dict, with overrides (None values remove the key)."""
    base: dict[str, Any] = {"ts": T0_MS, "seq": 1, "occupied": True, "heart_rate": 62.5,
                            "respiration_rate": 14, "movement": 3}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


def event(**overrides: Any) -> dict[str, Any]:
    """A valid event as a dict, with overrides."""
    base: dict[str, Any] = {"ts": T0_MS, "seq": 7, "type": "sos"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


def status(**overrides: Any) -> dict[str, Any]:
    """A valid status heartbeat as a dict, with overrides."""
    base: dict[str, Any] = {"ts": T0_MS, "seq": 3, "online": True, "battery": 80, "rssi": -60,
                            "fw": "1.2.3", "heartbeat_s": 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


def command(**overrides: Any) -> dict[str, Any]:
    """A valid sos_ack command as a dict, with overrides."""
    base: dict[str, Any] = {"type": "sos_ack", "ts": T0_MS, "alert_id": 42,
                            "message": "Help is on the way"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


def dumps(obj: dict[str, Any]) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(obj).encode()


# --- topics ---------------------------------------------------------------

@pytest.mark.parametrize(("topic", "expected"), [
    ("eldercare/v1/north/bed-1/telemetry", Topic("north", "bed-1", Channel.TELEMETRY)),
    ("eldercare/v1/north/btn_2/event", Topic("north", "btn_2", Channel.EVENT)),
    ("eldercare/v1/site-9/Dev_X-1/status", Topic("site-9", "Dev_X-1", Channel.STATUS)),
    ("eldercare/v1/north/bed-1/cmd", Topic("north", "bed-1", Channel.CMD)),
    ("eldercare/v1/" + "s" * 32 + "/bed/event", Topic("s" * 32, "bed", Channel.EVENT)),
    ("eldercare/v1/n/" + "d" * 64 + "/event", Topic("n", "d" * 64, Channel.EVENT)),
    ("eldercare/v1/0/0/status", Topic("0", "0", Channel.STATUS)),
])
def test_parse_valid_topic(topic: str, expected: Topic) -> None:
    parsed = parse_topic(topic)
    assert parsed == expected
    assert str(parsed) == topic


@pytest.mark.parametrize(("topic", "reason"), [
    pytest.param("elder/v1/north/bed-1/telemetry", "is not eldercare/v1", id="wrong-root"),
    pytest.param("Eldercare/v1/north/bed-1/telemetry", "is not eldercare/v1", id="root-case"),
    pytest.param("eldercare/v2/north/bed-1/telemetry", "is not eldercare/v1", id="wrong-version"),
    pytest.param("eldercare/V1/north/bed-1/telemetry", "is not eldercare/v1", id="version-case"),
    pytest.param("eldercare/v1/north/telemetry", "is not eldercare/v1", id="4-levels"),
    pytest.param("eldercare/v1/north/bed-1/telemetry/x", "is not eldercare/v1", id="6-levels"),
    pytest.param("/eldercare/v1/north/bed-1/telemetry", "is not eldercare/v1",
                 id="leading-slash"),
    pytest.param("eldercare/v1/north/bed-1/telemetry/", "is not eldercare/v1",
                 id="trailing-slash"),
    pytest.param("", "is not eldercare/v1", id="empty"),
    pytest.param("eldercare/v1//bed-1/telemetry", "site", id="empty-site"),
    pytest.param("eldercare/v1/North/bed-1/telemetry", "site", id="site-uppercase"),
    pytest.param("eldercare/v1/no_rth/bed-1/telemetry", "site", id="site-underscore"),
    pytest.param("eldercare/v1/no rth/bed-1/telemetry", "site", id="site-space"),
    pytest.param("eldercare/v1/+/bed-1/telemetry", "site", id="site-wildcard"),
    pytest.param("eldercare/v1/" + "s" * 33 + "/bed-1/telemetry", "site", id="site-33-chars"),
    pytest.param("eldercare/v1/north\n/bed-1/telemetry", "site", id="site-trailing-newline"),
    pytest.param("eldercare/v1/north//telemetry", "device id", id="empty-device"),
    pytest.param("eldercare/v1/north/bed.1/telemetry", "device id", id="device-dot"),
    pytest.param("eldercare/v1/north/bed 1/telemetry", "device id", id="device-space"),
    pytest.param("eldercare/v1/north/#/telemetry", "device id", id="device-wildcard"),
    pytest.param("eldercare/v1/north/bed\u00e9/telemetry", "device id", id="device-non-ascii"),
    pytest.param("eldercare/v1/north/" + "d" * 65 + "/telemetry", "device id",
                 id="device-65-chars"),
    pytest.param("eldercare/v1/north/bed-1\n/telemetry", "device id",
                 id="device-trailing-newline"),
    pytest.param("eldercare/v1/north/bed-1/telemetri", "unknown channel", id="channel-typo"),
    pytest.param("eldercare/v1/north/bed-1/Telemetry", "unknown channel", id="channel-case"),
    pytest.param("eldercare/v1/north/bed-1/", "unknown channel", id="channel-empty"),
    pytest.param("eldercare/v1/north/bed-1/alerts", "unknown channel", id="channel-unknown"),
])
def test_parse_invalid_topic(topic: str, reason: str) -> None:
    with pytest.raises(TopicError, match=reason):
        parse_topic(topic)


def test_topic_helpers_agree_with_parser() -> None:
    for channel in Channel:
        topic = topic_for("north", "bed-1", channel)
        assert topic.startswith(schema.device_topic_prefix("north", "bed-1") + "/")
        assert parse_topic(topic) == Topic("north", "bed-1", channel)
    assert schema.site_filter("north") == "eldercare/v1/north/+/+"
    assert schema.ALL_SITES_FILTER == "eldercare/v1/+/+/+"
    assert {Channel.TELEMETRY, Channel.EVENT, Channel.STATUS} == schema.DEVICE_CHANNELS


@pytest.mark.parametrize(("value", "ok"), [
    ("north", True), ("a", True), ("s" * 32, True), ("s" * 33, False), ("", False),
    ("North", False), ("north\n", False), ("nor/th", False),
])
def test_is_valid_site(value: str, ok: bool) -> None:
    assert schema.is_valid_site(value) is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("bed-1", True), ("BTN_9", True), ("d" * 64, True), ("d" * 65, False), ("", False),
    ("bed-1\n", False), ("bed/1", False), ("bed+1", False),
])
def test_is_valid_device_id(value: str, ok: bool) -> None:
    assert schema.is_valid_device_id(value) is ok


# --- ts ---------------------------------------------------------------------

@pytest.mark.parametrize(("ts", "expected"), [
    pytest.param(T0_MS, T0, id="epoch-ms"),
    pytest.param(T0_MS + 123, T0 + timedelta(milliseconds=123), id="epoch-ms-fraction"),
    pytest.param(0, datetime(1970, 1, 1, tzinfo=UTC), id="epoch-zero"),
    pytest.param("2026-01-01T00:00:00Z", T0, id="rfc3339-Z"),
    pytest.param("2026-01-01T08:00:00+08:00", T0, id="rfc3339-plus-0800"),
    pytest.param("2025-12-31T19:00:00-05:00", T0, id="rfc3339-minus-0500"),
    pytest.param("2026-01-01T00:00:00+00:00", T0, id="rfc3339-plus-0000"),
    pytest.param("2026-01-01T00:00:00.123Z", T0 + timedelta(milliseconds=123),
                 id="rfc3339-millis"),
])
def test_ts_forms_accepted(ts: Any, expected: datetime) -> None:
    msg = decode_event(dumps(event(ts=ts)))
    assert msg.ts == expected
    assert msg.ts.tzinfo is not None
    assert msg.ts.utcoffset() == timedelta(0)  # always normalised to UTC


@pytest.mark.parametrize("ts", [
    pytest.param("2026-01-01T00:00:00", id="naive-string"),
    pytest.param("2026-01-01 00:00:00Z", id="space-separator"),
    pytest.param("2026-01-01", id="date-only"),
    pytest.param("yesterday", id="words"),
    pytest.param("", id="empty-string"),
    pytest.param("2026-13-01T00:00:00Z", id="month-13"),
    pytest.param("9999-12-31T23:59:59-01:00", id="overflows-utc"),
    pytest.param("0001-01-01T00:30:00+01:00", id="underflows-utc"),
    pytest.param(True, id="bool-true"),
    pytest.param(False, id="bool-false"),
    pytest.param(-1, id="negative"),
    pytest.param(253_402_300_800_000, id="after-year-9999"),
    pytest.param(1.7e12, id="float"),
    pytest.param(None, id="null"),
    pytest.param([T0_MS], id="list"),
    pytest.param({"ms": T0_MS}, id="object"),
    pytest.param(_DROP, id="missing"),
])
def test_ts_forms_rejected(ts: Any) -> None:
    with pytest.raises(PayloadError, match=r"^ts: "):
        decode_event(dumps(event(ts=ts)))


@pytest.mark.parametrize("seq", [0, 1, 2**63 - 1])
def test_seq_accepted(seq: int) -> None:
    assert decode_event(dumps(event(seq=seq))).seq == seq


@pytest.mark.parametrize("seq", [
    pytest.param(-1, id="negative"),
    pytest.param(1.5, id="fraction"),
    pytest.param("x", id="string"),
    pytest.param(None, id="null"),
    pytest.param([1], id="list"),
    pytest.param(2**63, id="over-int64"),
    pytest.param(_DROP, id="missing"),
])
def test_seq_rejected(seq: Any) -> None:
    with pytest.raises(PayloadError, match=r"^seq: "):
        decode_event(dumps(event(seq=seq)))


# --- telemetry ----------------------------------------------------------------

@pytest.mark.parametrize("overrides", [
    pytest.param({}, id="full"),
    pytest.param({"heart_rate": _DROP, "respiration_rate": _DROP}, id="minimal"),
    pytest.param({"heart_rate": None, "respiration_rate": None}, id="null-vitals"),
    pytest.param({"occupied": False, "movement": 0}, id="empty-bed"),
    pytest.param({"heart_rate": 0, "respiration_rate": 0, "movement": 0}, id="lower-bounds"),
    pytest.param({"heart_rate": 300, "respiration_rate": 120, "movement": 100},
                 id="upper-bounds"),
    pytest.param({"heart_rate": 61}, id="integer-heart-rate"),
])
def test_bed_reading_valid(overrides: dict[str, Any]) -> None:
    payload = reading(**overrides)
    msg = decode_telemetry(dumps(payload))
    assert isinstance(msg, BedReading)
    assert msg.occupied is payload["occupied"]
    assert msg.movement == payload["movement"]
    assert msg.heart_rate == payload.get("heart_rate")


@pytest.mark.parametrize(("overrides", "loc"), [
    pytest.param({"heart_rate": 300.5}, "heart_rate", id="heart-rate-over-300"),
    pytest.param({"heart_rate": -1}, "heart_rate", id="heart-rate-negative"),
    pytest.param({"heart_rate": "fast"}, "heart_rate", id="heart-rate-string"),
    pytest.param({"respiration_rate": 121}, "respiration_rate", id="respiration-over-120"),
    pytest.param({"respiration_rate": -0.1}, "respiration_rate", id="respiration-negative"),
    pytest.param({"movement": 101}, "movement", id="movement-over-100"),
    pytest.param({"movement": -1}, "movement", id="movement-negative"),
    pytest.param({"movement": 2.5}, "movement", id="movement-fraction"),
    pytest.param({"movement": "lots"}, "movement", id="movement-string"),
    pytest.param({"movement": None}, "movement", id="movement-null"),
    pytest.param({"movement": _DROP}, "movement", id="movement-missing"),
    pytest.param({"occupied": "maybe"}, "occupied", id="occupied-string"),
    pytest.param({"occupied": None}, "occupied", id="occupied-null"),
    pytest.param({"occupied": _DROP}, "occupied", id="occupied-missing"),
    pytest.param({"temperature": 36.6}, "temperature", id="unknown-field"),
    pytest.param({"type": "sos"}, "type", id="event-field-in-telemetry"),
])
def test_bed_reading_invalid(overrides: dict[str, Any], loc: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode_telemetry(dumps(reading(**overrides)))
    assert str(err.value).startswith(f"{loc}: ")


def test_unknown_field_is_rejected_not_ignored() -> None:
    with pytest.raises(PayloadError, match="firmware_build: Extra inputs are not permitted"):
        decode_telemetry(dumps(reading(firmware_build="abc")))


def batch(n: int, **overrides: Any) -> dict[str, Any]:
    """A batch of n readings one second apart, each with its own ts and seq."""
    samples = [reading(ts=T0_MS + i * 1000, seq=100 + i) for i in range(n)]
    return {"ts": T0_MS + n * 1000, "seq": 100 + n, "samples": samples, **overrides}


def minimal_samples(n: int) -> list[dict[str, Any]]:
    """n smallest valid readings."""
    return [{"ts": T0_MS + i, "seq": i, "occupied": True, "movement": 0} for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 100])
def test_batch_accepted(n: int) -> None:
    msg = decode_telemetry(dumps(batch(n)))
    assert isinstance(msg, BedTelemetryBatch)
    assert [s.seq for s in msg.samples] == [100 + i for i in range(n)]


@pytest.mark.parametrize("n", [1, MAX_SAMPLES])
def test_batch_sample_count_limits_accepted(n: int) -> None:
    # Checked on the model: 500 samples never fit in 16 KiB (see the next test).
    msg = BedTelemetryBatch.model_validate_json(
        dumps({"ts": T0_MS, "seq": n, "samples": minimal_samples(n)}))
    assert len(msg.samples) == n


@pytest.mark.parametrize("n", [0, MAX_SAMPLES + 1])
def test_batch_sample_count_limits_rejected(n: int) -> None:
    body = dumps({"ts": T0_MS, "seq": 1, "samples": minimal_samples(n)})
    with pytest.raises(ValidationError, match="samples"):
        BedTelemetryBatch.model_validate_json(body)
    with pytest.raises(PayloadError, match=r"^samples: |bytes; the limit is"):
        decode_telemetry(body)


def test_batch_is_also_bound_by_the_byte_limit() -> None:
    """Both limits apply: a batch must have at most 500 samples AND fit in 16 KiB."""
    fits = 1
    while len(encode(_minimal_batch(fits + 1))) <= MAX_PAYLOAD_BYTES:
        fits += 1
    assert 200 < fits < MAX_SAMPLES  # compact minimal readings: ~280 per message
    assert isinstance(decode_telemetry(encode(_minimal_batch(fits))), BedTelemetryBatch)
    with pytest.raises(PayloadError, match="bytes; the limit is 16384"):
        decode_telemetry(encode(_minimal_batch(fits + 1)))


def _minimal_batch(n: int) -> BedTelemetryBatch:
    return BedTelemetryBatch.model_validate({"ts": T0_MS, "seq": n,
                                             "samples": minimal_samples(n)})


def test_batch_samples_keep_their_own_time_and_seq() -> None:
    msg = decode_telemetry(dumps(batch(3)))
    assert isinstance(msg, BedTelemetryBatch)
    assert [s.ts for s in msg.samples] == [T0 + timedelta(seconds=i) for i in range(3)]
    assert [s.seq for s in msg.samples] == [100, 101, 102]
    assert msg.seq == 103


@pytest.mark.parametrize(("mutate", "loc"), [
    pytest.param(lambda b: b["samples"][1].update(movement=101), "samples.1.movement",
                 id="bad-sample"),
    pytest.param(lambda b: b["samples"][0].pop("ts"), "samples.0.ts", id="sample-without-ts"),
    pytest.param(lambda b: b["samples"][2].pop("seq"), "samples.2.seq",
                 id="sample-without-seq"),
    pytest.param(lambda b: b["samples"][0].update(extra=1), "samples.0.extra",
                 id="sample-unknown-field"),
    pytest.param(lambda b: b.update(site="north"), "site", id="batch-unknown-field"),
    pytest.param(lambda b: b.pop("ts"), "ts", id="batch-without-ts"),
    pytest.param(lambda b: b.update(samples={"0": {}}), "samples", id="samples-not-list"),
])
def test_batch_invalid(mutate: Callable[[dict[str, Any]], object], loc: str) -> None:
    body = batch(3)
    mutate(body)
    with pytest.raises(PayloadError) as err:
        decode_telemetry(dumps(body))
    assert f"{loc}: " in str(err.value)


# --- events -----------------------------------------------------------------

@pytest.mark.parametrize("etype", list(EventType))
def test_every_event_type_accepted(etype: EventType) -> None:
    msg = decode_event(dumps(event(type=etype.value, detail="pressed twice")))
    assert msg.type is etype
    assert msg.detail == "pressed twice"


@pytest.mark.parametrize(("overrides", "loc"), [
    pytest.param({"type": "explosion"}, "type", id="unknown-type"),
    pytest.param({"type": "SOS"}, "type", id="type-case"),
    pytest.param({"type": 1}, "type", id="type-number"),
    pytest.param({"type": _DROP}, "type", id="type-missing"),
    pytest.param({"detail": "x" * 513}, "detail", id="detail-too-long"),
    pytest.param({"detail": 5}, "detail", id="detail-number"),
    pytest.param({"resident": 1}, "resident", id="unknown-field"),
])
def test_event_invalid(overrides: dict[str, Any], loc: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode_event(dumps(event(**overrides)))
    assert str(err.value).startswith(f"{loc}: ")


def test_event_detail_at_limit() -> None:
    assert decode_event(dumps(event(detail="x" * 512))).detail == "x" * 512


# --- status -----------------------------------------------------------------

@pytest.mark.parametrize("overrides", [
    pytest.param({}, id="full"),
    pytest.param({"battery": _DROP, "rssi": _DROP, "fw": _DROP, "heartbeat_s": _DROP},
                 id="minimal"),
    pytest.param({"battery": 0, "rssi": -150, "heartbeat_s": 1}, id="lower-bounds"),
    pytest.param({"battery": 100, "rssi": 0, "heartbeat_s": 86_400, "fw": "v" * 64},
                 id="upper-bounds"),
    pytest.param({"online": False}, id="going-offline"),
])
def test_status_valid(overrides: dict[str, Any]) -> None:
    payload = status(**overrides)
    msg = decode_status(dumps(payload))
    assert msg.online is payload["online"]
    assert msg.battery == payload.get("battery")


@pytest.mark.parametrize(("overrides", "loc"), [
    pytest.param({"battery": 101}, "battery", id="battery-over-100"),
    pytest.param({"battery": -1}, "battery", id="battery-negative"),
    pytest.param({"battery": "full"}, "battery", id="battery-string"),
    pytest.param({"rssi": 1}, "rssi", id="rssi-positive"),
    pytest.param({"rssi": -151}, "rssi", id="rssi-too-low"),
    pytest.param({"heartbeat_s": 0}, "heartbeat_s", id="heartbeat-zero"),
    pytest.param({"heartbeat_s": 86_401}, "heartbeat_s", id="heartbeat-over-a-day"),
    pytest.param({"fw": "v" * 65}, "fw", id="fw-too-long"),
    pytest.param({"online": _DROP}, "online", id="online-missing"),
    pytest.param({"online": "yes please"}, "online", id="online-string"),
    pytest.param({"uptime": 5}, "uptime", id="unknown-field"),
])
def test_status_invalid(overrides: dict[str, Any], loc: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode_status(dumps(status(**overrides)))
    assert str(err.value).startswith(f"{loc}: ")


def test_last_will_payload_is_offline_status() -> None:
    assert decode_status(LAST_WILL_PAYLOAD) == DeviceStatus(online=False)
    assert decode_status(b'{"online": false}') == DeviceStatus(online=False)
    assert encode(DeviceStatus(online=False)) == LAST_WILL_PAYLOAD


# --- commands -----------------------------------------------------------------

def test_sos_ack_round_trip() -> None:
    cmd = SosAckCommand(ts=T0, alert_id=42, message="Help is on the way")
    wire = encode(cmd)
    assert json.loads(wire) == {"type": "sos_ack", "ts": T0_MS, "alert_id": 42,
                                "message": "Help is on the way"}
    assert decode_command(wire) == cmd


def test_sos_ack_type_defaults_and_is_sent() -> None:
    cmd = decode_command(dumps(command(type=_DROP, message=_DROP)))
    assert cmd.type == "sos_ack"
    assert json.loads(encode(cmd))["type"] == "sos_ack"


def test_alarm_received_round_trip() -> None:
    cmd = AlarmReceivedCommand(ts=T0, seq=17, alert_id=42)
    wire = encode(cmd)
    assert json.loads(wire) == {"type": "alarm_received", "ts": T0_MS, "seq": 17,
                                "alert_id": 42}
    assert decode_command(wire) == cmd


def test_alarm_received_alert_id_is_optional_and_unknown_fields_ignored() -> None:
    cmd = decode_command(b'{"type":"alarm_received","ts":1,"seq":5,"later":true}')
    assert cmd == AlarmReceivedCommand(ts=datetime.fromtimestamp(0.001, UTC), seq=5)
    assert json.loads(encode(cmd)) == {"type": "alarm_received", "ts": 1, "seq": 5}


@pytest.mark.parametrize(("body", "loc"), [
    pytest.param({"type": "alarm_received", "ts": T0_MS}, "seq", id="seq-missing"),
    pytest.param({"type": "alarm_received", "ts": T0_MS, "seq": -1}, "seq", id="seq-negative"),
    pytest.param({"type": "alarm_received", "ts": T0_MS, "seq": 1, "alert_id": 0}, "alert_id",
                 id="alert-id-zero"),
    pytest.param({"type": "alarm_received", "seq": 1}, "ts", id="ts-missing"),
])
def test_alarm_received_invalid(body: dict[str, Any], loc: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode_command(dumps(body))
    assert str(err.value).startswith(f"{loc}: ")


@pytest.mark.parametrize(("overrides", "loc"), [
    pytest.param({"type": "reboot"}, "type", id="unknown-command"),
    pytest.param({"alert_id": 0}, "alert_id", id="alert-id-zero"),
    pytest.param({"alert_id": _DROP}, "alert_id", id="alert-id-missing"),
    pytest.param({"message": "m" * 257}, "message", id="message-too-long"),
    pytest.param({"ts": _DROP}, "ts", id="ts-missing"),
])
def test_command_invalid(overrides: dict[str, Any], loc: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode_command(dumps(command(**overrides)))
    assert str(err.value).startswith(f"{loc}: ")


# --- framing: size, JSON, object --------------------------------------------

@pytest.mark.parametrize("decode", DECODERS)
def test_oversize_payload_rejected_with_its_size(decode: Decoder) -> None:
    payload = b'{"pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    with pytest.raises(PayloadError) as err:
        decode(payload)
    assert str(len(payload)) in str(err.value)
    assert str(MAX_PAYLOAD_BYTES) in str(err.value)


def test_payload_exactly_at_the_limit_is_accepted() -> None:
    body = dumps(reading())
    padded = body[:-1] + b" " * (MAX_PAYLOAD_BYTES - len(body)) + b"}"
    assert len(padded) == MAX_PAYLOAD_BYTES
    assert isinstance(decode_telemetry(padded), BedReading)
    with pytest.raises(PayloadError, match="16385 bytes"):
        decode_telemetry(padded[:-1] + b" }")


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("payload", [
    b"", b"not json", b"{", b"{'ts': 1}", b'{"ts": 1,}', b"\xff\xfe\x00", b"[" * 5000,
    b'{"ts": NaN}',
], ids=["empty", "text", "truncated", "single-quotes", "trailing-comma", "binary",
        "deep-nesting", "nan"])
def test_not_json_rejected(decode: Decoder, payload: bytes) -> None:
    with pytest.raises(PayloadError, match=r"JSON|ts: "):
        decode(payload)


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("payload", [b"[]", b"[{}]", b"1", b'"online"', b"null", b"true"])
def test_non_object_json_rejected(decode: Decoder, payload: bytes) -> None:
    with pytest.raises(PayloadError, match="object"):
        decode(payload)


def test_error_message_is_one_readable_line() -> None:
    bad = {"ts": "soon", "seq": -1, "occupied": "maybe", "movement": 500, "a": 1, "b": 2}
    with pytest.raises(PayloadError) as err:
        decode_telemetry(dumps(bad))
    text = str(err.value)
    assert "\n" not in text
    assert "pydantic" not in text
    assert text.endswith("(+1 more)")  # 6 problems: the first five, then a count
    assert text.count(";") == 5


# --- wire form ----------------------------------------------------------------

ROUND_TRIP: list[BaseModel] = [
    BedReading(ts=T0, seq=1, occupied=True, heart_rate=61.5, respiration_rate=13,
               movement=4),
    BedReading(ts=T0, seq=0, occupied=False, movement=0),
    BedTelemetryBatch(ts=T0, seq=10, samples=[
        BedReading(ts=T0 + timedelta(seconds=i), seq=i, occupied=True, movement=i)
        for i in range(5)]),
    DeviceEvent(ts=T0 + timedelta(milliseconds=999), seq=2, type=EventType.FALL,
                detail="hallway"),
    DeviceStatus(ts=T0, seq=3, online=True, battery=55, rssi=-70, fw="2.0", heartbeat_s=60),
    DeviceStatus(online=False),
    SosAckCommand(ts=T0, alert_id=9),
    AlarmReceivedCommand(ts=T0, seq=2, alert_id=9),
    AlarmReceivedCommand(ts=T0, seq=0),
]
DECODER_FOR: dict[type[BaseModel], Decoder] = {
    BedReading: decode_telemetry, BedTelemetryBatch: decode_telemetry,
    DeviceEvent: decode_event, DeviceStatus: decode_status, SosAckCommand: decode_command,
    AlarmReceivedCommand: decode_command,
}


@pytest.mark.parametrize("message", ROUND_TRIP, ids=lambda m: type(m).__name__)
def test_encode_decode_round_trip(message: BaseModel) -> None:
    wire = encode(message)
    assert DECODER_FOR[type(message)](wire) == message
    body = json.loads(wire)
    assert None not in body.values()  # optional fields are omitted, not null
    if "ts" in body:
        assert isinstance(body["ts"], int)  # ts goes out as epoch milliseconds
    assert b" " not in wire.replace(b'"hallway"', b"")  # compact


def test_encode_normalises_offset_timestamps_to_epoch_ms() -> None:
    plus8 = timezone(timedelta(hours=8))
    msg = DeviceEvent(ts=datetime(2026, 1, 1, 8, tzinfo=plus8), seq=1, type=EventType.SOS)
    assert json.loads(encode(msg))["ts"] == T0_MS


def test_telemetry_decoder_picks_reading_or_batch() -> None:
    assert isinstance(decode_telemetry(dumps(reading())), BedReading)
    assert isinstance(decode_telemetry(dumps(batch(2))), BedTelemetryBatch)


def test_messages_are_immutable() -> None:
    msg = decode_event(dumps(event()))
    with pytest.raises(ValueError, match="frozen"):
        msg.seq = 8  # type: ignore[misc]


# --- JSON Schema files ------------------------------------------------------------

def test_json_schemas_cover_every_payload_and_forbid_unknown_fields() -> None:
    docs = schema.json_schemas()
    assert set(docs) == set(schema.CHANNEL_MODELS)
    for name, doc in docs.items():
        # Device-to-platform payloads are closed; commands may grow fields devices ignore.
        assert doc.get("additionalProperties") is (None if name.startswith("cmd-") else False)
        assert doc["type"] == "object", name


def test_committed_schema_files_match_the_code() -> None:
    committed_dir = export_schemas.DEFAULT_DIR
    expected = export_schemas.rendered_schemas()
    committed = {p.name: p.read_text(encoding="utf-8")
                 for p in committed_dir.glob(f"*{export_schemas.SUFFIX}")}
    assert sorted(committed) == sorted(expected), (
        "gateway/schemas/ is out of date: run `python -m gateway.export_schemas`")
    for name, text in expected.items():
        assert committed[name] == text, (
            f"gateway/schemas/{name} is out of date: run `python -m gateway.export_schemas`")


def test_write_schemas_writes_valid_json_schema_documents(tmp_path: Path) -> None:
    written = export_schemas.write_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        f"{name}.schema.json" for name in schema.json_schemas())
    for path in written:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["$id"] == "urn:eldercare:v1:" + path.name.removesuffix(".schema.json")
        assert doc.get("additionalProperties") is (None if path.name.startswith("cmd-") else False)


def test_export_main_writes_to_the_given_dir(tmp_path: Path) -> None:
    assert export_schemas.main([str(tmp_path)]) == 0
    assert (tmp_path / "event.schema.json").is_file()
    assert export_schemas.main([str(tmp_path), "extra"]) == 2


# --- docs/protocol.md stays true ---------------------------------------------------

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
_DOC_EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```json\n(.*?)\n```", re.DOTALL)


def test_protocol_doc_examples_decode() -> None:
    decoders: dict[str, Decoder] = {"telemetry": decode_telemetry, "event": decode_event,
                                    "status": decode_status, "cmd": decode_command}
    examples = _DOC_EXAMPLE.findall(PROTOCOL_DOC.read_text(encoding="utf-8"))
    assert {channel for channel, _ in examples} == set(decoders)
    for channel, body in examples:
        decoders[channel](body.encode())


def test_protocol_doc_covers_the_contract() -> None:
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    for file_name in export_schemas.rendered_schemas():
        assert f"(../gateway/schemas/{file_name})" in text, file_name
    for etype in EventType:
        assert f"| `{etype.value}` |" in text, etype
    for channel in Channel:
        assert f"| `{channel.value}` |" in text, channel
    for dtype in schema.DeviceType:
        assert f"| `{dtype.value}`" in text, dtype
    assert MAX_PAYLOAD_BYTES == 16 * 1024 and "16 KiB" in text
    assert f"**1 … {MAX_SAMPLES}** items" in text
    assert "Unknown fields are rejected in v1" in text


@pytest.mark.parametrize("field,value", [("seq", "5"), ("seq", True), ("occupied", "true"),
                                         ("movement", "3"), ("heart_rate", "60")])
def test_wire_types_are_strict(field, value):
    body = {"ts": 1_760_000_000_000, "seq": 1, "occupied": True, "movement": 3, field: value}
    with pytest.raises(schema.PayloadError):
        schema.decode_telemetry(json.dumps(body).encode())


def test_command_unknown_fields_are_ignored_by_devices():
    cmd = schema.decode_command(b'{"type":"sos_ack","ts":1760000000000,"alert_id":4,"priority":1}')
    assert cmd.alert_id == 4


def test_nul_characters_in_text_are_rejected():
    with pytest.raises(schema.PayloadError, match="NUL"):
        schema.decode_event(b'{"ts":1760000000000,"seq":1,"type":"test","detail":"a\\u0000b"}')


# --- duplicate keys ---------------------------------------------------------------

DUPLICATES = [
    pytest.param(decode_event, b'{"ts":1767225600000,"seq":1,"type":"test","type":"sos"}',
                 "'type'", id="event-type"),
    pytest.param(decode_event, b'{"ts":1767225600000,"seq":1,"type":"test" ,"type" : "sos"}',
                 "'type'", id="event-whitespace"),
    pytest.param(decode_event, b'{"ts":1767225600000,"seq":1,"type":"test","typ\\u0065":"sos"}',
                 "'type'", id="event-escaped-key"),
    pytest.param(decode_event, b'{"ts":1,"seq":1,"type":"sos","detail":"a","detail":null}',
                 "'detail'", id="event-detail-null"),
    pytest.param(decode_status, b'{"online":true,"online":false}', "'online'",
                 id="status-last-will"),
    pytest.param(decode_telemetry,
                 b'{"ts":1,"seq":2,"samples":[{"ts":1,"seq":1,"occupied":true,"movement":1,'
                 b'"movement":2}]}', "samples.0: duplicate key 'movement'", id="batch-sample"),
    pytest.param(decode_telemetry,
                 b'{"ts":1,"seq":2,"seq":3,"samples":[{"ts":1,"seq":1,"occupied":true,'
                 b'"movement":1}]}', "'seq'", id="batch-top"),
    pytest.param(decode_telemetry, b'{"ts":1,"seq":1,"occupied":true,"occupied":false,'
                 b'"movement":0}', "'occupied'", id="reading"),
    pytest.param(decode_command, b'{"type":"sos_ack","ts":1,"alert_id":1,"alert_id":2}',
                 "'alert_id'", id="command"),
]


@pytest.mark.parametrize(("decode", "payload", "reason"), DUPLICATES)
def test_duplicate_keys_are_rejected(decode: Decoder, payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match="duplicate key") as info:
        decode(payload)
    assert reason in str(info.value)


@pytest.mark.parametrize("detail", ['a":"b', '"type":"sos"', "x\\\":", ":)", "\"seq\": 1"])
def test_key_like_text_inside_values_is_not_a_duplicate(detail: str) -> None:
    msg = decode_event(json.dumps(event(detail=detail), indent=1).encode())
    assert msg.detail == detail


def test_same_key_in_different_samples_is_not_a_duplicate() -> None:
    batch = {"ts": T0_MS, "seq": 9, "samples": [reading(seq=i) for i in range(3)]}
    assert len(decode_telemetry(dumps(batch)).samples) == 3  # type: ignore[union-attr]


# --- strict RFC 3339 ----------------------------------------------------------------

RFC3339_ACCEPTED = [
    ("2026-01-01T00:00:00Z", T0),
    ("2026-01-01t00:00:00z", T0),  # RFC 3339 5.6: T and Z may be lower case
    ("2026-01-01T00:00:00+00:00", T0),
    ("2026-01-01T00:00:00-00:00", T0),  # RFC 3339 4.3: UTC, local offset unknown
    ("2026-01-01T05:30:00+05:30", T0),
    ("2025-12-31T14:00:00-10:00", T0),
    ("2026-01-01T00:00:00.5Z", T0 + timedelta(milliseconds=500)),
    ("2026-01-01T00:00:00.250Z", T0 + timedelta(milliseconds=250)),
    ("2026-01-01T00:00:00.123456Z", T0 + timedelta(microseconds=123456)),
    ("2026-01-01T00:00:00.123456789Z", T0 + timedelta(microseconds=123456)),  # cut to µs
    ("2024-02-29T12:00:00Z", datetime(2024, 2, 29, 12, tzinfo=UTC)),
]

RFC3339_REFUSED = [
    "2026-W01-1T00:00:00Z",  # ISO week date
    "20260101T000000Z",  # ISO basic format
    "2026-001T00:00:00Z",  # ordinal date
    "2026-01-01T00:00Z",  # no seconds
    "2026-01-01T00Z",
    "2026-01-01T00:00:00",  # no offset
    "2026-01-01 00:00:00Z",  # space
    "2026-01-01_00:00:00Z",
    " 2026-01-01T00:00:00Z",  # surrounding space
    "2026-01-01T00:00:00Z ",
    "2026-01-01T00:00:00Z\n",
    "2026-01-01T00:00:00.Z",  # empty fraction
    "2026-01-01T00:00:00,5Z",  # comma fraction
    "2026-01-01T00:00:00+0000",  # offset without colon
    "2026-01-01T00:00:00+00",
    "2026-01-01T00:00:00+24:00",
    "2026-01-01T00:00:00+05:60",
    "2026-01-01T00:00:00UTC",
    "2026-01-01T24:00:00Z",
    "2026-01-01T23:60:00Z",
    "2026-12-31T23:59:60Z",  # leap second: not representable
    "2026-02-29T00:00:00Z",
    "2026-00-10T00:00:00Z",
    "+2026-01-01T00:00:00Z",
    "026-01-01T00:00:00Z",
    "2026-1-1T0:0:0Z",
    "２０２６-01-01T00:00:00Z",  # non-ASCII digits
    "2026-01-01T00:00:00.١Z",
]


@pytest.mark.parametrize(("ts", "expected"), RFC3339_ACCEPTED)
def test_rfc3339_forms_accepted(ts: str, expected: datetime) -> None:
    assert decode_event(dumps(event(ts=ts))).ts == expected


@pytest.mark.parametrize("ts", RFC3339_REFUSED)
def test_non_rfc3339_forms_refused(ts: str) -> None:
    with pytest.raises(PayloadError, match=r"^ts: "):
        decode_event(dumps(event(ts=ts)))


def test_json_schema_pattern_agrees_with_the_parser() -> None:
    pattern = DeviceEvent.model_json_schema()["properties"]["ts"]["anyOf"][1]["pattern"]
    for ts, _ in RFC3339_ACCEPTED:
        assert re.fullmatch(pattern, ts), ts
    for ts in ["2026-W01-1T00:00:00Z", "20260101T000000Z", "2026-01-01T00:00Z",
               "2026-01-01T00:00:00", "2026-01-01T00:00:00+0000"]:
        assert not re.fullmatch(pattern, ts), ts

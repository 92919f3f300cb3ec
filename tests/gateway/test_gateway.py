"""Pure tests of Gateway.process: validation, enrichment, clock plausibility, dead letters."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.gateway import (
    DEAD_LETTER_KEEP_BYTES,
    EARLIEST_PLAUSIBLE,
    MAX_CLOCK_AHEAD,
    Accepted,
    Gateway,
    event_time,
)
from gateway.records import (
    DeadLetter,
    DeviceInfo,
    EventRecord,
    StatusRecord,
    TelemetryRecord,
)
from gateway.schema import (
    EVENT_TYPES_BY_DEVICE,
    LAST_WILL_PAYLOAD,
    MAX_PAYLOAD_BYTES,
    Channel,
    DeviceType,
    EventType,
    topic_for,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # received_at in every test
RETENTION = timedelta(days=90)


def ms(t: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return round(t.timestamp() * 1000)


DEVICES = {
    "bed-1": DeviceInfo("bed-1", "north", 11, DeviceType.BED_SENSOR),
    "btn-1": DeviceInfo("btn-1", "north", 11, DeviceType.CALL_BUTTON),
    "bed-9": DeviceInfo("bed-9", "south", 99, DeviceType.BED_SENSOR),
}
BED_TELEMETRY = topic_for("north", "bed-1", Channel.TELEMETRY)
BED_STATUS = topic_for("north", "bed-1", Channel.STATUS)
BTN_EVENT = topic_for("north", "btn-1", Channel.EVENT)


@pytest.fixture
def gw() -> Gateway:
    """A gateway over an in-memory registry, keeping 90 days of raw data."""
    return Gateway(DEVICES.get, raw_retention=RETENTION)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(obj).encode()


def reading(t: datetime = NOW, seq: int = 1, **extra: Any) -> dict[str, Any]:
    """A valid bed reading."""
    return {"ts": ms(t), "seq": seq, "occupied": True, "heart_rate": 60.5,
            "respiration_rate": 15, "movement": 4, **extra}


def accepted(result: Accepted | DeadLetter) -> Accepted:
    """Assert the message was accepted and return it."""
    assert isinstance(result, Accepted), f"dead-lettered: {getattr(result, 'reason', '')}"
    return result


def rejected(result: Accepted | DeadLetter) -> DeadLetter:
    """Assert the message was dead-lettered and return the dead letter."""
    assert isinstance(result, DeadLetter), f"unexpectedly accepted: {result}"
    return result


# --- accepted messages ----------------------------------------------------------

def test_telemetry_becomes_one_enriched_record(gw: Gateway) -> None:
    t = NOW - timedelta(seconds=2)
    result = accepted(gw.process(BED_TELEMETRY, dumps(reading(t, seq=5)), NOW))
    assert result.records == (
        TelemetryRecord(time=t, device_id="bed-1", resident_id=11, seq=5, occupied=True,
                        heart_rate=60.5, respiration_rate=15, movement=4, device_time=None,
                        received_at=NOW),
    )


def test_telemetry_without_vitals(gw: Gateway) -> None:
    body = {"ts": ms(NOW), "seq": 1, "occupied": False, "movement": 0}
    (rec,) = accepted(gw.process(BED_TELEMETRY, dumps(body), NOW)).records
    assert isinstance(rec, TelemetryRecord)
    assert (rec.heart_rate, rec.respiration_rate, rec.occupied) == (None, None, False)


@pytest.mark.parametrize("n", [1, 3, 120])
def test_batch_becomes_one_record_per_sample(gw: Gateway, n: int) -> None:
    start = NOW - timedelta(hours=1)
    samples = [{"ts": ms(start + timedelta(seconds=10 * i)), "seq": 1000 + i,
                "occupied": True, "movement": i % 101} for i in range(n)]
    body = {"ts": ms(NOW), "seq": 1000 + n, "samples": samples}
    records = accepted(gw.process(BED_TELEMETRY, dumps(body), NOW)).records
    assert len(records) == n
    assert all(isinstance(r, TelemetryRecord) for r in records)
    assert [r.seq for r in records] == [1000 + i for i in range(n)]
    assert [r.time for r in records] == [start + timedelta(seconds=10 * i) for i in range(n)]
    assert {(r.device_id, r.resident_id, r.received_at) for r in records} == {
        ("bed-1", 11, NOW)}


def test_event_becomes_record_with_site(gw: Gateway) -> None:
    t = NOW - timedelta(milliseconds=250)
    body = {"ts": ms(t), "seq": 8, "type": "sos", "detail": "long press"}
    result = accepted(gw.process(BTN_EVENT, dumps(body), NOW))
    assert result.records == (
        EventRecord(time=t, device_id="btn-1", resident_id=11, site="north", seq=8,
                    type=EventType.SOS, detail="long press", device_time=None,
                    received_at=NOW),
    )


def test_bed_sensor_events_are_accepted(gw: Gateway) -> None:
    body = {"ts": ms(NOW), "seq": 2, "type": "bed_exit"}
    topic = topic_for("north", "bed-1", Channel.EVENT)
    (rec,) = accepted(gw.process(topic, dumps(body), NOW)).records
    assert isinstance(rec, EventRecord)
    assert rec.type is EventType.BED_EXIT


def test_status_becomes_record(gw: Gateway) -> None:
    body = {"ts": ms(NOW), "seq": 4, "online": True, "battery": 77, "rssi": -61,
            "fw": "1.4.0", "heartbeat_s": 300}
    result = accepted(gw.process(BED_STATUS, dumps(body), NOW))
    assert result.records == (
        StatusRecord(time=NOW, device_id="bed-1", resident_id=11, seq=4, online=True,
                     battery=77, rssi=-61, fw="1.4.0", heartbeat_s=300, device_time=None,
                     received_at=NOW),
    )


def test_last_will_without_ts_is_stored_at_receive_time(gw: Gateway) -> None:
    (rec,) = accepted(gw.process(BED_STATUS, LAST_WILL_PAYLOAD, NOW)).records
    assert rec == StatusRecord(time=NOW, device_id="bed-1", resident_id=11, seq=None,
                               online=False, battery=None, rssi=None, fw=None,
                               heartbeat_s=None, device_time=None, received_at=NOW)


# --- refused messages -------------------------------------------------------------

def test_unknown_device_is_dead_lettered_with_a_readable_reason(gw: Gateway) -> None:
    topic = topic_for("north", "ghost-7", Channel.TELEMETRY)
    payload = dumps(reading())
    dl = rejected(gw.process(topic, payload, NOW))
    assert dl.reason == "unknown device 'ghost-7' (not registered or revoked)"
    assert (dl.topic, dl.payload, dl.payload_size, dl.received_at) == (
        topic, payload, len(payload), NOW)


def test_device_registered_to_another_site_is_dead_lettered(gw: Gateway) -> None:
    dl = rejected(gw.process(topic_for("south", "bed-1", Channel.TELEMETRY),
                             dumps(reading()), NOW))
    assert "'bed-1'" in dl.reason
    assert "registered to site 'north'" in dl.reason
    assert "not 'south'" in dl.reason


def test_call_button_sending_telemetry_is_dead_lettered(gw: Gateway) -> None:
    dl = rejected(gw.process(topic_for("north", "btn-1", Channel.TELEMETRY),
                             dumps(reading()), NOW))
    assert dl.reason == "a call_button does not send telemetry"


@pytest.mark.parametrize("device", ["bed-1", "ghost-7"])
def test_publishing_on_cmd_is_dead_lettered(gw: Gateway, device: str) -> None:
    body = dumps({"type": "sos_ack", "ts": ms(NOW), "alert_id": 1})
    dl = rejected(gw.process(topic_for("north", device, Channel.CMD), body, NOW))
    assert dl.reason == "devices may not publish on the cmd channel"


@pytest.mark.parametrize(("topic", "reason"), [
    ("eldercare/v2/north/bed-1/telemetry", "is not eldercare/v1"),
    ("eldercare/v1/North/bed-1/telemetry", "site 'North'"),
    ("eldercare/v1/north/bed.1/telemetry", "device id 'bed.1'"),
    ("eldercare/v1/north/bed-1/vitals", "unknown channel 'vitals'"),
])
def test_invalid_topic_is_dead_lettered(gw: Gateway, topic: str, reason: str) -> None:
    assert reason in rejected(gw.process(topic, dumps(reading()), NOW)).reason


@pytest.mark.parametrize(("payload", "reason"), [
    (b"not json", "Invalid JSON"),
    (b"[]", "object"),
    (dumps(reading(movement=101)), "movement: "),
    (dumps(reading(temperature=36.6)), "temperature: Extra inputs are not permitted"),
    (dumps(reading(ts="2026-03-01T12:00:00")), "ts: "),
])
def test_invalid_payload_is_dead_lettered(gw: Gateway, payload: bytes, reason: str) -> None:
    dl = rejected(gw.process(BED_TELEMETRY, payload, NOW))
    assert reason in dl.reason
    assert dl.payload == payload


def test_one_bad_sample_dead_letters_the_whole_batch(gw: Gateway) -> None:
    samples = [reading(seq=i) for i in range(3)]
    samples[1]["heart_rate"] = 999
    dl = rejected(gw.process(BED_TELEMETRY, dumps({"ts": ms(NOW), "seq": 9,
                                                   "samples": samples}), NOW))
    assert "samples.1.heart_rate" in dl.reason


# --- clock plausibility ----------------------------------------------------------

FLAGGED = [
    pytest.param(NOW + MAX_CLOCK_AHEAD + timedelta(milliseconds=1), id="5min-1ms-ahead"),
    pytest.param(NOW + timedelta(days=400), id="a-year-ahead"),
    pytest.param(EARLIEST_PLAUSIBLE - timedelta(milliseconds=1), id="just-before-2020"),
    pytest.param(datetime(1970, 1, 1, tzinfo=UTC), id="epoch-zero"),
]
PLAUSIBLE = [
    pytest.param(NOW + MAX_CLOCK_AHEAD, id="exactly-5min-ahead"),
    pytest.param(NOW, id="now"),
    pytest.param(NOW - timedelta(days=30), id="a-month-old-backlog"),
    pytest.param(NOW - RETENTION, id="exactly-at-the-retention-limit"),
]


def test_clock_limits_are_the_documented_ones() -> None:
    assert timedelta(minutes=5) == MAX_CLOCK_AHEAD
    assert datetime(2020, 1, 1, tzinfo=UTC) == EARLIEST_PLAUSIBLE


@pytest.mark.parametrize("device_ts", FLAGGED)
def test_event_time_flags_implausible_clock(device_ts: datetime) -> None:
    assert event_time(device_ts, NOW) == (NOW, device_ts)


@pytest.mark.parametrize("device_ts", PLAUSIBLE)
def test_event_time_keeps_plausible_clock(device_ts: datetime) -> None:
    assert event_time(device_ts, NOW) == (device_ts, None)


@pytest.mark.parametrize("device_ts", FLAGGED)
@pytest.mark.parametrize(("topic", "body"), [
    (BED_TELEMETRY, {"seq": 1, "occupied": True, "movement": 0}),
    (BTN_EVENT, {"seq": 1, "type": "sos"}),
    (BED_STATUS, {"seq": 1, "online": True}),
], ids=["telemetry", "event", "status"])
def test_implausible_clock_stored_at_receive_time_keeping_device_time(
        gw: Gateway, topic: str, body: dict[str, Any], device_ts: datetime) -> None:
    (rec,) = accepted(gw.process(topic, dumps({**body, "ts": ms(device_ts)}), NOW)).records
    assert rec.time == NOW
    assert rec.device_time == device_ts
    assert rec.received_at == NOW


@pytest.mark.parametrize("device_ts", PLAUSIBLE)
@pytest.mark.parametrize(("topic", "body"), [
    (BED_TELEMETRY, {"seq": 1, "occupied": True, "movement": 0}),
    (BTN_EVENT, {"seq": 1, "type": "sos"}),
    (BED_STATUS, {"seq": 1, "online": True}),
], ids=["telemetry", "event", "status"])
def test_plausible_clock_is_the_row_time(
        gw: Gateway, topic: str, body: dict[str, Any], device_ts: datetime) -> None:
    (rec,) = accepted(gw.process(topic, dumps({**body, "ts": ms(device_ts)}), NOW)).records
    assert rec.time == device_ts
    assert rec.device_time is None


def test_clock_is_judged_per_sample_in_a_batch(gw: Gateway) -> None:
    good = NOW - timedelta(minutes=1)
    future = NOW + timedelta(hours=1)
    body = {"ts": ms(NOW), "seq": 9, "samples": [reading(good, 1), reading(future, 2)]}
    first, second = accepted(gw.process(BED_TELEMETRY, dumps(body), NOW)).records
    assert (first.time, first.device_time) == (good, None)
    assert (second.time, second.device_time) == (NOW, future)


def test_rfc3339_offset_time_is_stored_in_utc(gw: Gateway) -> None:
    body = {"ts": "2026-03-01T19:59:00+08:00", "seq": 1, "type": "fall"}
    (rec,) = accepted(gw.process(BTN_EVENT, dumps(body), NOW)).records
    assert rec.time == datetime(2026, 3, 1, 11, 59, tzinfo=UTC)


# --- dead letter payloads ------------------------------------------------------

def test_dead_letter_keeps_4096_bytes_but_the_real_size(gw: Gateway) -> None:
    payload = b'{"pad": "' + bytes(range(48, 58)) * 3000 + b'"}'
    assert len(payload) > MAX_PAYLOAD_BYTES
    dl = rejected(gw.process(BED_TELEMETRY, payload, NOW))
    assert DEAD_LETTER_KEEP_BYTES == 4096
    assert dl.payload == payload[:4096]
    assert dl.payload_size == len(payload)
    assert f"payload is {len(payload)} bytes" in dl.reason


def test_dead_letter_of_a_mid_size_payload_is_truncated_too(gw: Gateway) -> None:
    payload = dumps({**reading(), "note": "n" * 6000})  # under 16 KiB, fails validation
    dl = rejected(gw.process(BED_TELEMETRY, payload, NOW))
    assert len(dl.payload) == DEAD_LETTER_KEEP_BYTES
    assert dl.payload_size == len(payload)


def test_small_dead_letter_payload_is_kept_whole(gw: Gateway) -> None:
    dl = rejected(gw.process(BED_TELEMETRY, b"\x00\xffbinary", NOW))
    assert (dl.payload, dl.payload_size) == (b"\x00\xffbinary", 8)


# --- garbage never raises -----------------------------------------------------------

GARBAGE_TOPICS = [
    "", "/", "#", "+", "eldercare", "eldercare/v1", "eldercare/v1/+/+/+",
    "eldercare/v1/north/bed-1/telemetry/extra", "eldercare/v1/north/bed-1/\u00fcber",
    "eldercare/v1/north/bed-1\x00/telemetry", "eldercare/v1/n\u00f6rth/bed-1/event",
    "x" * 70_000, BED_TELEMETRY, BED_STATUS, BTN_EVENT,
    topic_for("north", "bed-1", Channel.EVENT), topic_for("north", "btn-1", Channel.STATUS),
    topic_for("south", "bed-9", Channel.TELEMETRY),
]
GARBAGE_PAYLOADS = [
    b"", b"\x00", b"\xff" * 100, b"null", b"0", b"-1", b"1e999", b'"', b"{}", b"[]",
    b"[" * 10_000, b'{"a":' * 3000, b"{" + b'"k":1,' * 3000 + b'"k":2}',
    b'{"ts": 1e400, "seq": 1e400, "occupied": 1e400, "movement": 1e400}',
    b'{"ts": 99999999999999999999999999999999, "seq": 1, "type": "sos"}',
    b'{"ts": "9999-12-31T23:59:59-23:59", "seq": 1, "type": "sos"}',
    b'{"ts": "0001-01-01T00:00:00+23:59", "seq": 1, "online": true}',
    b'{"ts": "\xed\xa0\x80", "seq": 1, "online": true}',  # lone surrogate, invalid UTF-8
    b'{"ts": "\\ud800", "seq": 1, "online": true}',
    b'{"ts": 1, "seq": 1, "samples": [' + b"{}," * 600 + b"{}]}",
    b'{"ts": 1, "seq": 1, "samples": {"$ref": "#"}}',
    b'{"online": false, "online": true, "battery": -0.0}',
    b'{"ts": NaN, "seq": Infinity, "occupied": true, "movement": -Infinity}',
    b"\xef\xbb\xbf" + LAST_WILL_PAYLOAD,  # UTF-8 BOM
    b"x" * (MAX_PAYLOAD_BYTES * 8),
    LAST_WILL_PAYLOAD, dumps(reading()), dumps({"ts": ms(NOW), "seq": 1, "type": "sos"}),
]


@pytest.mark.parametrize("payload", GARBAGE_PAYLOADS, ids=range(len(GARBAGE_PAYLOADS)))
def test_garbage_payloads_never_raise(gw: Gateway, payload: bytes) -> None:
    for topic in GARBAGE_TOPICS:
        result = gw.process(topic, payload, NOW)
        assert isinstance(result, Accepted | DeadLetter)
        if isinstance(result, DeadLetter):
            assert result.reason
            assert len(result.payload) <= DEAD_LETTER_KEEP_BYTES


def test_mutated_valid_payloads_never_raise(gw: Gateway) -> None:
    rng = random.Random(20260301)
    seeds = [dumps(reading()), dumps({"ts": ms(NOW), "seq": 1, "type": "sos"}),
             dumps({"ts": "2026-03-01T12:00:00+08:00", "seq": 1, "online": True,
                    "battery": 50}),
             dumps({"ts": ms(NOW), "seq": 1, "samples": [reading(seq=i) for i in range(4)]})]
    topics = [BED_TELEMETRY, BTN_EVENT, BED_STATUS, BED_TELEMETRY]
    outcomes = {Accepted: 0, DeadLetter: 0}
    for _ in range(3000):
        i = rng.randrange(len(seeds))
        data = bytearray(seeds[i])
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            op = rng.random()
            if op < 0.4:
                data[pos] = rng.randrange(256)
            elif op < 0.7:
                del data[pos]
            else:
                data.insert(pos, rng.choice(b'{}[]",:0123456789-+.eE \\tnulfase'))
        result = gw.process(topics[i], bytes(data), NOW)
        outcomes[type(result)] += 1
    assert outcomes[DeadLetter] > 0


# --- hostile text reaching a reason -------------------------------------------------

@pytest.mark.parametrize("key", ["x\n2026-01-01 ERROR pipeline exited", "nul\x00key",
                                 "cr\r", "\u2028ls", "\x1b[2J"])
def test_control_characters_in_a_key_never_reach_the_reason(gw: Gateway, key: str) -> None:
    dl = rejected(gw.process(BED_TELEMETRY, dumps(reading(**{key: 1})), NOW))
    assert "Extra inputs are not permitted" in dl.reason
    assert dl.reason.isprintable()
    assert dl.topic == BED_TELEMETRY


def test_a_huge_key_gives_a_bounded_reason(gw: Gateway) -> None:
    dl = rejected(gw.process(BED_TELEMETRY, dumps(reading(**{"k" * 9000: 1})), NOW))
    assert len(dl.reason) <= 512


def test_duplicate_keys_never_open_an_alert(gw: Gateway) -> None:
    payload = b'{"ts":%d,"seq":1,"type":"test","type":"sos"}' % ms(NOW)
    dl = rejected(gw.process(BTN_EVENT, payload, NOW))
    assert dl.reason == "duplicate key 'type' (each key at most once)"


def test_dead_letter_topic_is_printable(gw: Gateway) -> None:
    dl = rejected(gw.process("eldercare/v1/north/bed-1/x\n\x00y", b"{}", NOW))
    assert dl.topic.isprintable() and dl.reason.isprintable()


# --- event types per device type ------------------------------------------------------

@pytest.mark.parametrize("etype", ["sos", "sos_cancel", "fall"])
def test_a_bed_sensor_cannot_send_call_button_events(gw: Gateway, etype: str) -> None:
    topic = topic_for("north", "bed-1", Channel.EVENT)
    dl = rejected(gw.process(topic, dumps({"ts": ms(NOW), "seq": 2, "type": etype}), NOW))
    assert f"a bed_sensor does not send {etype!r} events" in dl.reason


@pytest.mark.parametrize("etype", ["bed_entry", "bed_exit"])
def test_a_call_button_cannot_send_bed_events(gw: Gateway, etype: str) -> None:
    dl = rejected(gw.process(BTN_EVENT, dumps({"ts": ms(NOW), "seq": 2, "type": etype}), NOW))
    assert f"a call_button does not send {etype!r} events" in dl.reason


@pytest.mark.parametrize(("device", "etype"), [
    (device, etype)
    for device, types in EVENT_TYPES_BY_DEVICE.items() for etype in sorted(types)])
def test_each_device_type_sends_its_own_event_types(gw: Gateway, device: DeviceType,
                                                    etype: EventType) -> None:
    device_id = "bed-1" if device is DeviceType.BED_SENSOR else "btn-1"
    topic = topic_for("north", device_id, Channel.EVENT)
    accepted(gw.process(topic, dumps({"ts": ms(NOW), "seq": 2, "type": etype.value}), NOW))


def test_every_event_type_has_a_sender() -> None:
    assert set().union(*EVENT_TYPES_BY_DEVICE.values()) == set(EventType)
    assert set(EVENT_TYPES_BY_DEVICE) == set(DeviceType)


# --- age limit (raw retention) -----------------------------------------------------------

TOO_OLD = NOW - RETENTION - timedelta(milliseconds=1)


@pytest.mark.parametrize(("topic", "body"), [
    (BED_TELEMETRY, {"seq": 1, "occupied": True, "movement": 0}),
    (BTN_EVENT, {"seq": 1, "type": "sos"}),
    (BTN_EVENT, {"seq": 1, "type": "test"}),
    (BED_STATUS, {"seq": 1, "online": True}),
], ids=["telemetry", "sos", "event", "status"])
def test_data_older_than_retention_is_dead_lettered(gw: Gateway, topic: str,
                                                    body: dict[str, Any]) -> None:
    dl = rejected(gw.process(topic, dumps({**body, "ts": ms(TOO_OLD)}), NOW))
    assert "older than the 90-day retention" in dl.reason
    assert "2025-12-01T11:59:59.999Z" in dl.reason


def test_one_sample_older_than_retention_dead_letters_the_batch(gw: Gateway) -> None:
    samples = [reading(NOW - timedelta(days=d), d) for d in (1, 30, 91)]
    dl = rejected(gw.process(BED_TELEMETRY, dumps({"ts": ms(NOW), "seq": 99,
                                                   "samples": samples}), NOW))
    assert dl.reason.startswith("samples.2: ts ")
    assert "older than the 90-day retention" in dl.reason


def test_a_batch_spanning_years_never_reaches_storage(gw: Gateway) -> None:
    samples = [reading(NOW - timedelta(days=7 * i), i) for i in range(200)]
    rejected(gw.process(BED_TELEMETRY, dumps({"ts": ms(NOW), "seq": 999, "samples": samples}),
                        NOW))


def test_retention_follows_the_injected_setting() -> None:
    short = Gateway(DEVICES.get, raw_retention=timedelta(days=7))
    old = {"ts": ms(NOW - timedelta(days=8)), "seq": 1, "type": "test"}
    assert "7-day retention" in rejected(short.process(BTN_EVENT, dumps(old), NOW)).reason
    long = Gateway(DEVICES.get, raw_retention=timedelta(days=30))
    accepted(long.process(BTN_EVENT, dumps(old), NOW))


def test_a_pre_2020_clock_is_still_flagged_not_refused(gw: Gateway) -> None:
    body = {"ts": ms(EARLIEST_PLAUSIBLE - timedelta(days=1)), "seq": 1, "type": "sos"}
    (rec,) = accepted(gw.process(BTN_EVENT, dumps(body), NOW)).records
    assert rec.time == NOW


# --- alarms rescued from malformed events -------------------------------------------------

# Ways a call button's firmware gets an alarm slightly wrong (docs/protocol.md, "Invalid
# messages"): each is dead-lettered, and its alarm is raised anyway.
MALFORMED_ALARMS = {
    "offset without colon": {"ts": "2026-03-01T20:00:00+0800", "seq": 7, "type": "sos"},
    "hour-only offset": {"ts": "2026-03-01T20:00:00+08", "seq": 7, "type": "sos"},
    "no seconds": {"ts": "2026-03-01T20:00+08:00", "seq": 7, "type": "sos"},
    "surrounding spaces": {"ts": " 2026-03-01T20:00:00+08:00 ", "seq": 7, "type": "sos"},
    "unknown field": {"ts": ms(NOW), "seq": 7, "type": "sos", "battery": 80},
    "fall without ts": {"seq": 7, "type": "fall"},
}


@pytest.mark.parametrize("body", MALFORMED_ALARMS.values(), ids=MALFORMED_ALARMS.keys())
def test_a_malformed_alarm_is_dead_lettered_and_raised_at_receive_time(
        gw: Gateway, body: dict[str, Any]) -> None:
    payload = dumps(body)
    result = accepted(gw.process(BTN_EVENT, payload, NOW))
    assert result.dead_letter is not None
    assert result.dead_letter.payload == payload and result.dead_letter.topic == BTN_EVENT
    (rec,) = result.records
    assert isinstance(rec, EventRecord)
    assert (rec.time, rec.received_at, rec.device_time) == (NOW, NOW, None)
    assert (rec.device_id, rec.resident_id, rec.site) == ("btn-1", 11, "north")
    assert (rec.seq, rec.type) == (7, EventType(body["type"]))
    assert rec.detail == f"rescued from a malformed message: {result.dead_letter.reason}"
    assert rec.rescued_ts == (json.dumps(body["ts"], separators=(",", ":"))
                              if "ts" in body else "")


def test_a_repeat_of_a_malformed_alarm_has_the_same_copy_key(gw: Gateway) -> None:
    payload = dumps(MALFORMED_ALARMS["hour-only offset"])
    first = accepted(gw.process(BTN_EVENT, payload, NOW)).records[0]
    again = accepted(gw.process(BTN_EVENT, payload, NOW + timedelta(seconds=2))).records[0]
    assert isinstance(first, EventRecord) and isinstance(again, EventRecord)
    assert (first.seq, first.rescued_ts) == (again.seq, again.rescued_ts)
    assert first.time != again.time


def test_valid_events_are_not_marked_rescued(gw: Gateway) -> None:
    result = accepted(gw.process(BTN_EVENT, dumps({"ts": ms(NOW), "seq": 1, "type": "sos"}),
                                 NOW))
    assert result.dead_letter is None
    (rec,) = result.records
    assert isinstance(rec, EventRecord) and rec.rescued_ts is None and rec.detail is None


@pytest.mark.parametrize(("topic", "payload"), [
    (BTN_EVENT, b'{"ts":"2026-03-01T20:00+08","seq":1,"type":"test","type":"sos"}'),
    (BTN_EVENT, b'{"ts":"x","seq":1,"type":"sos","type":"sos"}'),
    (BTN_EVENT, b'{"ts":"x","seq":1,"seq":2,"type":"sos"}'),
    (BTN_EVENT, dumps({"ts": "x", "seq": 1, "type": "test"})),
    (BTN_EVENT, dumps({"ts": "x", "seq": 1, "type": "low_battery"})),
    (BTN_EVENT, dumps({"ts": "x", "seq": 1, "type": "sos_cancel"})),
    (BTN_EVENT, dumps({"ts": "x", "seq": 1, "type": "SOS"})),
    (BTN_EVENT, dumps({"ts": "x", "seq": 1, "type": ["sos"]})),
    (BTN_EVENT, dumps({"ts": "x", "seq": "1", "type": "sos"})),
    (BTN_EVENT, dumps({"ts": "x", "seq": True, "type": "sos"})),
    (BTN_EVENT, dumps({"ts": "x", "seq": -1, "type": "sos"})),
    (BTN_EVENT, dumps({"ts": "x", "seq": 2**63, "type": "sos"})),
    (BTN_EVENT, dumps({"ts": "x", "seq": 1.0, "type": "sos"})),
    (BTN_EVENT, dumps({"ts": "x", "type": "sos"})),
    (BTN_EVENT, b'{"ts":"x","seq":1,"type":"sos"'),
    (BTN_EVENT, b'[{"ts":"x","seq":1,"type":"sos"}]'),
    (topic_for("north", "bed-1", Channel.EVENT), dumps({"ts": "x", "seq": 1, "type": "sos"})),
    (topic_for("north", "bed-1", Channel.EVENT), dumps({"ts": ms(NOW), "seq": 1,
                                                        "type": "sos"})),
    (topic_for("north", "btn-1", Channel.STATUS), dumps({"ts": "x", "seq": 1, "type": "sos",
                                                         "online": True})),
    (topic_for("north", "btn-9", Channel.EVENT), dumps({"ts": "x", "seq": 1, "type": "sos"})),
    (topic_for("south", "btn-1", Channel.EVENT), dumps({"ts": "x", "seq": 1, "type": "sos"})),
], ids=["duplicate type", "duplicate type, same value", "duplicate seq", "test",
        "low_battery", "sos_cancel", "upper case", "type list", "seq string", "seq bool",
        "seq negative", "seq too big", "seq float", "no seq", "invalid JSON", "array",
        "bed sensor sos, bad ts", "bed sensor sos", "status channel", "unknown device",
        "wrong site"])
def test_only_an_unambiguous_alarm_is_rescued(gw: Gateway, topic: str, payload: bytes
                                              ) -> None:
    rejected(gw.process(topic, payload, NOW))


def test_a_huge_ts_gives_a_bounded_copy_key(gw: Gateway) -> None:
    body = {"ts": "2026-03-01 20:00:00 " + "x" * 9000, "seq": 1, "type": "sos"}
    (rec,) = accepted(gw.process(BTN_EVENT, dumps(body), NOW)).records
    assert isinstance(rec, EventRecord) and rec.rescued_ts is not None
    assert rec.rescued_ts.startswith("sha256:") and len(rec.rescued_ts) == 71
    assert rec.detail is not None and len(rec.detail) <= 512 and rec.detail.isprintable()

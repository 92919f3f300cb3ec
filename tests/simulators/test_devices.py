"""Simulated devices on a real broker: contract payloads, Last Will, store-and-forward, acks."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from paho.mqtt.enums import MQTTProtocolVersion

from gateway.provisioning import DeviceCredentials
from gateway.schema import (
    LAST_WILL_PAYLOAD,
    MAX_PAYLOAD_BYTES,
    MAX_SAMPLES,
    AlarmReceivedCommand,
    BedReading,
    BedTelemetryBatch,
    Channel,
    DeviceEvent,
    EventType,
    SosAckCommand,
    decode_event,
    decode_status,
    decode_telemetry,
    encode,
    topic_for,
)
from simulators.alarms import AlarmOutbox
from simulators.clock import ManualClock
from simulators.devices import BedSensorSim, CallButtonSim
from simulators.resident import ResidentModel
from simulators.wire import DEVICE_RECONNECT_MAX_S, chunk_samples, device_client
from tests.simulators.tap import Tap
from tests.support.devices import forget_device
from tests.support.wait import wait_until

# 02:00 UTC: the resident models are in bed, mostly asleep.
NIGHT = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)


def seqs(tap: Tap, device_id: str) -> list[int]:
    """Seq of every live message of a device, in arrival order (Last Will has none)."""
    out = []
    for m in tap.of(device_id):
        if m.channel is Channel.TELEMETRY:
            out.append(decode_telemetry(m.payload).seq)
        elif m.channel is Channel.EVENT:
            out.append(decode_event(m.payload).seq)
        else:
            seq = decode_status(m.payload).seq
            if seq is not None:
                out.append(seq)
    return out


def statuses(tap: Tap, device_id: str) -> list[bytes]:
    return [m.payload for m in tap.of(device_id, Channel.STATUS)]


def test_bed_sends_valid_status_and_telemetry(home, broker, tap, sims):
    clock = ManualClock(NIGHT)
    bed = sims(BedSensorSim(home.bed, clock=clock, seed=1, bed_events=False))
    assert bed.connect(wait=10)
    wait_until(lambda: statuses(tap, bed.device_id), what="online status")
    status = decode_status(statuses(tap, bed.device_id)[0])
    assert status.online and status.fw and status.heartbeat_s == 60
    assert status.battery is not None and 0 <= status.battery <= 100
    assert status.rssi is not None and status.rssi < 0
    sent = []
    for _ in range(5):
        sent.append(bed.sample())
        clock.advance(5)
    assert bed.publish_status()
    wait_until(lambda: len(tap.of(bed.device_id, Channel.TELEMETRY)) == 5, what="5 readings")
    got = [decode_telemetry(m.payload) for m in tap.of(bed.device_id, Channel.TELEMETRY)]
    assert all(isinstance(r, BedReading) for r in got)
    assert got == sent
    assert [r.ts for r in got] == [NIGHT + timedelta(seconds=5 * i) for i in range(5)]
    wait_until(lambda: len(statuses(tap, bed.device_id)) == 2, what="heartbeat")
    s = seqs(tap, bed.device_id)
    assert s == sorted(s) and len(set(s)) == len(s) == 7
    assert bed.sent == {"status": 2, "telemetry": 5}


def test_last_will_fires_on_abrupt_drop_and_device_comes_back(home, broker, tap, sims):
    bed = sims(BedSensorSim(home.bed, seed=2))
    assert bed.connect(wait=10)
    wait_until(lambda: statuses(tap, bed.device_id), what="online status")
    assert bed.drop_connection()
    wait_until(lambda: LAST_WILL_PAYLOAD in statuses(tap, bed.device_id), what="Last Will")
    will = decode_status(LAST_WILL_PAYLOAD)
    assert not will.online and will.seq is None
    # paho reconnects by itself and the device announces itself online again.
    wait_until(lambda: decode_status(statuses(tap, bed.device_id)[-1]).online,
               what="back online")
    assert bed.connects == 2


def test_store_and_forward_sends_one_batch_after_reconnect(home, broker, tap, sims):
    clock = ManualClock(NIGHT)
    bed = sims(BedSensorSim(home.bed, clock=clock, seed=3, bed_events=False))
    assert bed.connect(wait=10)
    live = bed.sample()
    wait_until(lambda: tap.of(bed.device_id, Channel.TELEMETRY), what="live reading")

    bed.go_offline()  # the network goes away without a goodbye
    wait_until(lambda: LAST_WILL_PAYLOAD in statuses(tap, bed.device_id), what="Last Will")
    stored = []
    for _ in range(12):
        clock.advance(5)
        stored.append(bed.sample())
    assert bed.buffered == 12
    assert len(tap.of(bed.device_id, Channel.TELEMETRY)) == 1

    assert bed.go_online(wait=10)
    wait_until(lambda: len(tap.of(bed.device_id, Channel.TELEMETRY)) == 2, what="batch")
    msg = decode_telemetry(tap.of(bed.device_id, Channel.TELEMETRY)[1].payload)
    assert isinstance(msg, BedTelemetryBatch)
    assert list(msg.samples) == stored
    sample_seqs = [r.seq for r in msg.samples]
    assert sample_seqs == sorted(sample_seqs) and sample_seqs[0] > live.seq
    assert msg.seq > sample_seqs[-1]
    assert [r.ts for r in msg.samples] == [NIGHT + timedelta(seconds=5 * i)
                                          for i in range(1, 13)]
    assert bed.buffered == 0 and bed.sent["telemetry_batch"] == 1
    # Readings after the reconnect go out live again, with later seqs.
    clock.advance(5)
    after = bed.sample()
    wait_until(lambda: len(tap.of(bed.device_id, Channel.TELEMETRY)) == 3, what="live again")
    assert after.seq > msg.seq


def test_sos_ack_is_received_and_recorded(home, broker, tap, sims, caplog):
    caplog.set_level(logging.INFO, logger="simulators.devices")
    button = sims(CallButtonSim(home.button, seed=4))
    assert button.connect(wait=10)
    event = button.press_sos()
    wait_until(lambda: tap.of(button.device_id, Channel.EVENT), what="sos event")
    assert decode_event(tap.of(button.device_id, Channel.EVENT)[0].payload) == event
    ack = SosAckCommand(ts=datetime.now(UTC), alert_id=42, message="Anna is on her way")
    tap.publish(topic_for(button.site, button.device_id, Channel.CMD), encode(ack))
    wait_until(lambda: button.acks, what="ack recorded")
    assert [(a.alert_id, a.message) for a in button.acks] == [(42, "Anna is on her way")]
    assert "help is coming for alert 42" in caplog.text


def test_commands_are_read_leniently(home, broker, tap, sims):
    """Unknown fields are ignored and unknown command types skipped, as the contract asks."""
    button = sims(CallButtonSim(home.button, seed=4))
    assert button.connect(wait=10)
    cmd_topic = topic_for(button.site, button.device_id, Channel.CMD)
    ack = SosAckCommand(ts=datetime.now(UTC), alert_id=7)
    tap.publish(cmd_topic, json.dumps({"type": "reboot"}).encode())
    tap.publish(cmd_topic, b"not json")
    tap.publish(cmd_topic, json.dumps({**json.loads(encode(ack)), "eta_min": 4}).encode())
    wait_until(lambda: button.acks, what="ack with an extra field recorded")
    assert [a.alert_id for a in button.acks] == [7]
    assert button.connected.is_set()


def events_of(tap: Tap, device_id: str) -> list:
    return [decode_event(m.payload) for m in tap.of(device_id, Channel.EVENT)]


def receipt(button: CallButtonSim, seq: int, alert_id: int | None = None) -> bytes:
    return encode(AlarmReceivedCommand(ts=datetime.now(UTC), seq=seq, alert_id=alert_id))


def test_button_events_and_offline_events_are_kept(home, broker, tap, sims):
    """Events kept offline go out on reconnect, with every unconfirmed alarm, in seq order."""
    clock = ManualClock(NIGHT)
    button = sims(CallButtonSim(home.button, seed=5, clock=clock, alarm_tick_s=None))
    assert button.connect(wait=10)
    sos = button.press_sos()
    button.cancel_sos()
    fall = button.fall()
    button.weekly_test()
    wait_until(lambda: len(tap.of(button.device_id, Channel.EVENT)) == 4, what="4 events")
    button.go_offline()
    kept = button.press_sos("pressed while the network was down")
    assert button.go_online(wait=10)
    wait_until(lambda: len(tap.of(button.device_id, Channel.EVENT)) == 7, what="7 events")
    events = events_of(tap, button.device_id)
    assert [e.type for e in events[:4]] == [EventType.SOS, EventType.SOS_CANCEL,
                                            EventType.FALL, EventType.TEST]
    assert events[4:] == [sos, fall, kept]  # unconfirmed alarms again, then the kept one
    assert button.sent["event:sos"] == 2 and button.sent["event:sos:repeat"] == 1


def test_alarm_outbox_backs_off_and_stops_on_confirm():
    outbox = AlarmOutbox()
    event = DeviceEvent(ts=NIGHT, seq=3, type=EventType.SOS)
    outbox.add(event, NIGHT)
    repeats = []
    for second in range(0, 200):
        if outbox.due(NIGHT + timedelta(seconds=second)):
            repeats.append(second)
    assert repeats == [2, 6, 14, 30, 62, 122, 182]  # 2, 4, 8, 16, 32, then the 60 s cap
    assert not outbox.confirm(4) and 3 in outbox
    assert outbox.confirm(3) and not outbox
    assert outbox.due(NIGHT + timedelta(days=1)) == []


def test_button_repeats_an_alarm_until_its_receipt(home, broker, tap, sims, caplog):
    caplog.set_level(logging.INFO, logger="simulators.devices")
    clock = ManualClock(NIGHT)
    button = sims(CallButtonSim(home.button, seed=4, clock=clock, alarm_tick_s=None))
    assert button.connect(wait=10)
    sos = button.press_sos("long press")
    clock.advance(1)
    assert button.resend_due() == 0
    clock.advance(1)
    assert button.resend_due() == 1
    wait_until(lambda: len(events_of(tap, button.device_id)) == 2, what="the first repeat")
    assert events_of(tap, button.device_id) == [sos, sos]  # the same seq, ts and detail
    cmd_topic = topic_for(button.site, button.device_id, Channel.CMD)
    tap.publish(cmd_topic, receipt(button, sos.seq + 100))  # another alarm's receipt
    wait_until(lambda: button.receipts, what="the other receipt read")
    clock.advance(4)
    assert button.resend_due() == 1 and len(button.outbox) == 1
    tap.publish(cmd_topic, receipt(button, sos.seq, alert_id=42))
    wait_until(lambda: not button.outbox, what="the alarm confirmed")
    assert f"alarm seq {sos.seq} received by the platform (alert 42)" in caplog.text
    clock.advance(3600)
    assert button.resend_due() == 0
    wait_until(lambda: len(events_of(tap, button.device_id)) == 3, what="3 copies in all")
    assert button.sent["event:sos"] == 1 and button.sent["event:sos:repeat"] == 2


def test_button_timer_repeats_by_itself_and_ends_after_the_receipt(home, broker, tap, sims):
    clock = ManualClock(NIGHT)
    button = sims(CallButtonSim(home.button, seed=4, clock=clock, alarm_tick_s=0.02))
    assert button.connect(wait=10)
    fall = button.fall()
    clock.advance(2)
    wait_until(lambda: len(events_of(tap, button.device_id)) == 2, what="a repeat by the timer")
    tap.publish(topic_for(button.site, button.device_id, Channel.CMD), receipt(button, fall.seq))
    wait_until(lambda: button._timer is None, what="the timer thread ended")
    assert not button.outbox and events_of(tap, button.device_id) == [fall, fall]


def test_graceful_close_leaves_retained_offline_status(home, broker, tap, sims):
    button = sims(CallButtonSim(home.button, seed=6))
    assert button.connect(wait=10)
    wait_until(lambda: statuses(tap, button.device_id), what="online status")
    button.close()
    assert not button.connected.is_set()
    wait_until(lambda: len(statuses(tap, button.device_id)) == 2, what="offline status")
    last = decode_status(statuses(tap, button.device_id)[-1])
    assert not last.online and last.seq is not None  # announced, not the Last Will


def test_bed_events_follow_occupancy(home, broker, tap, sims):
    model = ResidentModel.random(11)
    plan = model.plan_day(NIGHT.date() - timedelta(days=1))
    clock = ManualClock(plan.bedtime - timedelta(seconds=30))
    bed = sims(BedSensorSim(home.bed, model, clock=clock, seed=7))
    assert bed.connect(wait=10)
    for _ in range(4):
        bed.sample()
        clock.advance(20)
    wait_until(lambda: tap.of(bed.device_id, Channel.EVENT), what="bed entry")
    event = decode_event(tap.of(bed.device_id, Channel.EVENT)[0].payload)
    assert event.type is EventType.BED_ENTRY
    assert plan.bedtime <= event.ts < plan.bedtime + timedelta(seconds=20)


# --- no broker needed ---------------------------------------------------------------------

def test_device_client_is_the_device_itself(home, broker):
    creds = home.button
    client = device_client(creds)
    assert client._client_id == creds.device_id.encode() and client.username == creds.username
    assert client.protocol == MQTTProtocolVersion.MQTTv311 and client._clean_session is False
    assert client.will_topic == topic_for(creds.site, creds.device_id, Channel.STATUS)
    assert client.will_payload == LAST_WILL_PAYLOAD
    assert client._reconnect_max_delay == DEVICE_RECONNECT_MAX_S
    answer: list[bool] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answer.append(not reason.is_failure)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        wait_until(lambda: answer, what="CONNACK")
    finally:
        client.disconnect()  # a clean disconnect: no will
        client.loop_stop()
        forget_device(creds, broker.port)
    assert answer == [True]


def fake_creds(device_type: str = "bed_sensor") -> DeviceCredentials:
    return DeviceCredentials("bed-offline", device_type, "north", 1, "bed-offline", "pw",
                             "eldercare/v1/north/bed-offline", "127.0.0.1", 1)


def test_store_buffer_is_bounded_and_drops_oldest():
    clock = ManualClock(NIGHT)
    bed = BedSensorSim(fake_creds(), clock=clock, seed=8, buffer_max=10)
    taken = []
    for _ in range(15):
        taken.append(bed.sample())
        clock.advance(5)
    assert bed.buffered == 10 and bed.dropped == 5
    assert [r.seq for r in bed._buffer] == [r.seq for r in taken[5:]]


def test_batches_respect_sample_and_size_limits():
    model = ResidentModel.random(9)
    readings = [BedReading(ts=t, seq=10**15 + i, occupied=True, heart_rate=61.3,
                           respiration_rate=14.2, movement=55)
                for i, (t, _) in enumerate(model.readings(NIGHT, NIGHT + timedelta(hours=3)))]
    chunks = chunk_samples(readings)
    assert len(chunks) > 1
    assert [r for c in chunks for r in c] == readings
    for c in chunks:
        batch = BedTelemetryBatch(ts=NIGHT, seq=2**63 - 1, samples=c)
        assert len(c) <= MAX_SAMPLES and len(encode(batch)) <= MAX_PAYLOAD_BYTES
    by_count = chunk_samples(readings, max_bytes=10**9)
    assert [len(c) for c in by_count][:2] == [MAX_SAMPLES, MAX_SAMPLES]


def test_device_type_must_match_credentials():
    try:
        CallButtonSim(fake_creds("bed_sensor"))
    except ValueError as exc:
        assert "bed_sensor" in str(exc)
    else:
        raise AssertionError("a call button accepted bed-sensor credentials")

"""Simulated devices that speak device contract v1 over MQTT exactly like the real ones.

What a device sends (seq, battery, status, store-and-forward, events) is plain Python on top
of the pure resident model and an injected clock; the MQTT I/O is a thin paho 2.x layer:
own credentials, client id = device id, a retained Last Will on the status topic, QoS 1,
and a subscription to the device's `cmd` topic (the client and the wire helpers are in
simulators/wire.py). Alarms (sos, fall) stay in an outbox (simulators/alarms.py) and are
repeated with backoff until the platform's `alarm_received` confirms them (docs/protocol.md).
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections import Counter, deque
from datetime import datetime
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel

from gateway.provisioning import DeviceCredentials
from gateway.schema import (
    AlarmReceivedCommand,
    BedReading,
    BedTelemetryBatch,
    Channel,
    DeviceEvent,
    DeviceStatus,
    DeviceType,
    EventType,
    SosAckCommand,
    encode,
    topic_for,
)
from simulators.alarms import ALARM_EVENTS, AlarmOutbox
from simulators.clock import Clock, system_clock
from simulators.netloop import NetLoop
from simulators.resident import MatReading, ResidentModel, derive_seed
from simulators.wire import (
    QOS,
    chunk_samples,
    device_client,
    device_time,
    parse_command,
    wait_published,
)

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 60
DEFAULT_BUFFER = 17_280  # 24 hours of readings at one every 5 s
DEFAULT_EVENT_BUFFER = 100
LOW_BATTERY_PCT = 20
FW_VERSION = "sim-0.1.0"
ALARM_TICK_S = 0.5  # how often a device's own timer thread looks for a due repeat (wall time)


class DeviceSim:
    """What every simulated device does: connect, Last Will, status heartbeat, seq, commands."""

    device_type: ClassVar[DeviceType]

    def __init__(self, creds: DeviceCredentials, *, host: str | None = None,
                 port: int | None = None, clock: Clock = system_clock, seed: int = 0,
                 heartbeat_s: int = DEFAULT_HEARTBEAT_S, fw: str = FW_VERSION,
                 seq_start: int = 0, keepalive: int = 30,
                 event_buffer: int = DEFAULT_EVENT_BUFFER, network: NetLoop | None = None,
                 alarm_tick_s: float | None = ALARM_TICK_S) -> None:
        if creds.type != self.device_type.value:
            raise ValueError(f"{creds.device_id} is a {creds.type}, not a "
                             f"{self.device_type.value}")
        self.creds = creds
        self.device_id = creds.device_id
        self.site = creds.site
        self.host = host if host is not None else creds.mqtt_host
        self.port = port if port is not None else creds.mqtt_port
        self.clock = clock
        self.heartbeat_s = heartbeat_s
        self.fw = fw
        self.status_topic = topic_for(self.site, self.device_id, Channel.STATUS)
        self.cmd_topic = topic_for(self.site, self.device_id, Channel.CMD)
        self._keepalive = keepalive
        self._rng = random.Random(derive_seed("device", seed, creds.device_id))
        self._battery0 = self._rng.uniform(70.0, 100.0)
        self._drain_per_day = self._rng.uniform(0.05, 0.4)
        self._rssi_mean = self._rng.uniform(-85.0, -50.0)
        self._started = clock()
        self._seq = seq_start
        self._lock = threading.RLock()
        self._want_online = False
        self._pending_events: deque[DeviceEvent] = deque(maxlen=event_buffer)
        self._low_battery_sent = False
        self.connected = threading.Event()
        self.ready = threading.Event()  # connected and subscribed to its cmd topic
        self._down = threading.Event()
        self._down.set()
        self.acks: list[SosAckCommand] = []
        self.outbox = AlarmOutbox()
        self.receipts: list[AlarmReceivedCommand] = []
        self.last_sent: mqtt.MQTTMessageInfo | None = None
        # Who repeats due alarms: a timer thread of the device's own (threaded mode), or the
        # caller via `resend_due` (alarm_tick_s=None, or a shared NetLoop: the Engine).
        self._alarm_tick_s = alarm_tick_s if network is None else None
        self._timer: threading.Thread | None = None
        self._timer_stop = threading.Event()
        self.sent: Counter[str] = Counter()
        self.connects = 0
        # Why the broker refuses this device's login (revoked, wrong secret), None while it
        # accepts it: a refused device is not counted as connected (issue 13 trial: a revoked
        # device went on being counted). It keeps retrying, quietly, as firmware would.
        self.refused: str | None = None
        self.refusals = 0
        self._network = network
        self._client = self._make_client()
        if network is not None:
            network.attach(self._client, self.wants_online)

    def _make_client(self) -> mqtt.Client:
        client = device_client(self.creds)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    @property
    def has_socket(self) -> bool:
        """True while the MQTT client holds a socket (connected or connecting)."""
        return self._client.socket() is not None

    def wants_online(self) -> bool:
        """True while the device should be (or get) connected."""
        return self._want_online

    def _wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait for `event`; on a shared network loop, by running the loop meanwhile."""
        if self._network is not None:
            return self._network.run_until(event.is_set, timeout)
        return event.wait(timeout)

    # --- connection ----------------------------------------------------------------------

    def connect(self, wait: float | None = None) -> bool:
        """Start connecting (retried in the background); with `wait`, block until ready."""
        with self._lock:
            self._want_online = True
        if self._network is not None:
            if not self.connected.is_set():
                self._network.open(self._client, self.host, self.port, self._keepalive)
        else:
            self._client.connect_async(self.host, self.port, keepalive=self._keepalive)
            self._client.loop_start()
        if wait is None:
            return self.ready.is_set()
        return self._wait(self.ready, wait)

    def go_online(self, wait: float | None = None) -> bool:
        """Come back after `go_offline` (same as `connect`)."""
        return self.connect(wait)

    def go_offline(self, abrupt: bool = True, timeout: float = 5.0) -> None:
        """Lose the network and stay offline: abrupt drops the socket, so the Last Will fires."""
        with self._lock:
            self._want_online = False
        if abrupt:
            if self.connected.is_set() and self._hard_drop() and self._network is None:
                self._down.wait(timeout)
        else:
            self._client.disconnect()
        if self._network is None:
            self._client.loop_stop()
        self._mark_down()

    def drop_connection(self) -> bool:
        """Drop the socket without a DISCONNECT (Last Will fires); paho reconnects by itself."""
        return self._hard_drop()

    def _hard_drop(self) -> bool:
        sock = self._client.socket()
        if not isinstance(sock, socket.socket):
            return False
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return False
        return True

    def announce_offline(self) -> mqtt.MQTTMessageInfo | None:
        """Publish a retained `online: false` status, as firmware does before a clean shutdown."""
        with self._lock:
            if not self.connected.is_set():
                return None
            return self._publish(Channel.STATUS, self._status(online=False), "status",
                                 retain=True)

    def shutdown(self) -> None:
        """Disconnect cleanly (no Last Will) and stop the network loop (and alarm timer)."""
        with self._lock:
            self._want_online = False
            self._timer_stop.set()
        self._client.disconnect()
        if self._network is None:
            self._client.loop_stop()
        self._mark_down()

    def close(self, timeout: float = 5.0) -> None:
        """Graceful power-off: announce offline, wait for it to be sent, disconnect."""
        info = self.announce_offline()
        if info is not None:
            if self._network is not None:
                self._network.run_until(info.is_published, timeout)
            else:
                wait_published(info, timeout)
        self.shutdown()

    def _mark_down(self) -> None:
        with self._lock:
            self.connected.clear()
            self.ready.clear()
            self._down.set()

    # --- paho callbacks (network thread) ------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, props: Properties | None) -> None:
        if reason.is_failure:
            self._refused(str(reason))
            return
        if self.refused is not None:
            logger.warning("%s: the broker accepts the device again", self.device_id)
            self.refused = None
        if not self._want_online:  # went offline while the connection was being set up
            client.disconnect()
            return
        client.subscribe(self.cmd_topic, qos=QOS)
        with self._lock:
            self.connects += 1
            self._down.clear()
            self.connected.set()
            self._publish(Channel.STATUS, self._status(online=True), "status", retain=True)
            self._flush_on_connect()
            self._ensure_timer()
        logger.debug("%s: connected (session present: %s)", self.device_id,
                     flags.session_present)

    def _refused(self, reason: str) -> None:
        """The broker refused the login: not connected; said once, not at every retry."""
        with self._lock:
            self.connected.clear()
            self.ready.clear()
            self.refusals += 1
            first = self.refused is None
            self.refused = reason
        if first:
            logger.warning("%s: the broker refuses the device (%s; revoked?): no longer "
                           "counted as connected; it keeps retrying", self.device_id, reason)
        else:
            logger.debug("%s: refused again (%s)", self.device_id, reason)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, props: Properties | None) -> None:
        with self._lock:
            self.connected.clear()
            self.ready.clear()
            want_online = self._want_online
        if not want_online:
            client.loop_stop()  # in the network thread: no join, just no reconnect
        elif reason.is_failure:
            logger.info("%s: connection lost (%s); reconnecting", self.device_id, reason)
        self._down.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], props: Properties | None) -> None:
        if any(r.is_failure for r in reasons):
            logger.warning("%s: cmd subscription refused: %s", self.device_id, reasons)
            return
        self.ready.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                    props: Properties) -> None:
        if self._network is not None:
            self._network.acked += 1

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic != self.cmd_topic:
            return
        cmd = parse_command(bytes(msg.payload))
        if cmd is None:
            logger.warning("%s: ignoring a command it does not understand: %r", self.device_id,
                           bytes(msg.payload[:200]))
            return
        if isinstance(cmd, AlarmReceivedCommand):
            self._alarm_received(cmd)
            return
        with self._lock:
            self.acks.append(cmd)
        logger.info("%s: help is coming for alert %d%s", self.device_id, cmd.alert_id,
                    f" ({cmd.message})" if cmd.message else "")

    def _alarm_received(self, cmd: AlarmReceivedCommand) -> None:
        with self._lock:
            self.receipts.append(cmd)
            confirmed = self.outbox.confirm(cmd.seq)
        if confirmed:
            logger.info("%s: alarm seq %d received by the platform (alert %s)", self.device_id,
                        cmd.seq, cmd.alert_id)

    # --- sending -------------------------------------------------------------------------

    def _next_seq(self) -> int:
        with self._lock:
            seq = self._seq
            self._seq += 1
            return seq

    @property
    def next_seq(self) -> int:
        """The seq the next message will carry."""
        return self._seq

    def _publish(self, channel: Channel, message: BaseModel, kind: str, retain: bool = False
                 ) -> mqtt.MQTTMessageInfo:
        info = self._client.publish(topic_for(self.site, self.device_id, channel),
                                    encode(message), qos=QOS, retain=retain)
        self.sent[kind] += 1
        self.last_sent = info
        if self._network is not None:
            self._network.published += 1
        return info

    def battery_at(self, t: datetime, scale: float = 1.0) -> float:
        """Battery percentage at device time `t` (drains slowly and linearly), × `scale`."""
        days = (t - self._started).total_seconds() / 86_400
        return min(100.0, max(0.0, self._battery0 - self._drain_per_day * days)) * scale

    def now(self) -> datetime:
        """Device time: the injected clock, at wire resolution."""
        return device_time(self.clock())

    def _status(self, online: bool, battery_scale: float = 1.0) -> DeviceStatus:
        now = self.now()
        rssi = round(self._rssi_mean + self._rng.gauss(0.0, 3.0))
        return DeviceStatus(ts=now, seq=self._next_seq(), online=online,
                            battery=round(self.battery_at(now, battery_scale)),
                            rssi=min(-30, max(-120, rssi)), fw=self.fw,
                            heartbeat_s=self.heartbeat_s)

    def publish_status(self, battery_scale: float = 1.0) -> bool:
        """Publish the retained status heartbeat; skipped (False) while offline.

        `battery_scale` scales the normal battery level (a failing battery, fault injection).
        """
        with self._lock:
            if not self.connected.is_set():
                return False
            status = self._status(online=True, battery_scale=battery_scale)
            self._publish(Channel.STATUS, status, "status", retain=True)
            if status.battery is not None and status.battery >= LOW_BATTERY_PCT + 10:
                self._low_battery_sent = False  # a new battery: warn again next time
            elif status.battery is not None and not self._low_battery_sent:
                self._low_battery_sent = True
                self.send_event(EventType.LOW_BATTERY, f"battery {status.battery}%")
            return True

    def send_event(self, event_type: EventType, detail: str | None = None,
                   ts: datetime | None = None) -> DeviceEvent:
        """Send an event now, or keep it (bounded) until the device is back online."""
        with self._lock:
            event = DeviceEvent(ts=device_time(ts or self.clock()), seq=self._next_seq(),
                                type=event_type, detail=detail)
            if event_type in ALARM_EVENTS:
                self.outbox.add(event, self.clock())
            if self.connected.is_set():
                self._publish(Channel.EVENT, event, f"event:{event_type.value}")
            else:  # (an alarm also waits in the outbox, which is unbounded)
                self._pending_events.append(event)
            if event_type in ALARM_EVENTS:
                self._ensure_timer()
            return event

    def resend_due(self) -> int:
        """Repeat the unconfirmed alarms that are due (device clock); how many were sent.

        While offline nothing is sent: every unconfirmed alarm goes out on the reconnect.
        """
        with self._lock:
            if not self.outbox or not self.connected.is_set():
                return 0
            due = self.outbox.due(self.clock())
            for event in due:
                self._publish(Channel.EVENT, event, f"event:{event.type.value}:repeat")
        if due:
            logger.info("%s: alarm seq %s not yet confirmed; repeated", self.device_id,
                        ", ".join(str(e.seq) for e in due))
        return len(due)

    def _ensure_timer(self) -> None:
        """Start the device's alarm timer thread while alarms wait (threaded mode only)."""
        tick = self._alarm_tick_s
        running = (self._timer is not None and self._timer.is_alive()
                   and not self._timer_stop.is_set())
        if tick is None or not self.outbox or running:
            return
        self._timer_stop = threading.Event()
        self._timer = threading.Thread(target=self._run_timer, args=(self._timer_stop, tick),
                                       name=f"alarm-timer-{self.device_id}", daemon=True)
        self._timer.start()

    def _run_timer(self, stop: threading.Event, tick: float) -> None:
        while not stop.wait(tick):
            self.resend_due()
            with self._lock:
                if not self.outbox:  # every alarm confirmed: the thread ends
                    self._timer = None
                    return

    def _flush_on_connect(self) -> None:
        """Send what was kept while offline and every unconfirmed alarm, in seq order (called
        with the lock held). paho may resend an in-flight copy too: the platform dedups."""
        kept = {e.seq: (e, f"event:{e.type.value}") for e in self._pending_events}
        self._pending_events.clear()
        for alarm in self.outbox.events():
            kept.setdefault(alarm.seq, (alarm, f"event:{alarm.type.value}:repeat"))
        for seq in sorted(kept):
            event, kind = kept[seq]
            self._publish(Channel.EVENT, event, kind)


class BedSensorSim(DeviceSim):
    """A bed-sensor mat: telemetry from a resident model, store-and-forward while offline."""

    device_type = DeviceType.BED_SENSOR

    def __init__(self, creds: DeviceCredentials, model: ResidentModel | None = None, *,
                 host: str | None = None, port: int | None = None,
                 clock: Clock = system_clock, seed: int = 0,
                 heartbeat_s: int = DEFAULT_HEARTBEAT_S, fw: str = FW_VERSION,
                 seq_start: int = 0, keepalive: int = 30, buffer_max: int = DEFAULT_BUFFER,
                 bed_events: bool = True, network: NetLoop | None = None) -> None:
        super().__init__(creds, host=host, port=port, clock=clock, seed=seed,
                         heartbeat_s=heartbeat_s, fw=fw, seq_start=seq_start,
                         keepalive=keepalive, network=network)
        self.model = model or ResidentModel.random(derive_seed("resident", seed,
                                                               creds.resident_id))
        self.bed_events = bed_events
        self._buffer: deque[BedReading] = deque(maxlen=buffer_max)
        self._last_occupied: bool | None = None
        self.dropped = 0

    @property
    def buffered(self) -> int:
        """Readings waiting to be sent."""
        return len(self._buffer)

    def sample(self, t: datetime | None = None, reading: MatReading | None = None
               ) -> BedReading:
        """Take one reading at device time `t` (default: the clock); send it or buffer it.

        `reading` overrides what the resident model says (incidents applied by a script).
        """
        with self._lock:
            t = device_time(t or self.clock())
            r = reading if reading is not None else self.model.reading_at(t)
            out = BedReading(ts=t, seq=self._next_seq(), occupied=r.occupied,
                                 heart_rate=r.heart_rate, respiration_rate=r.respiration,
                                 movement=r.movement)
            if self.connected.is_set():
                self._publish(Channel.TELEMETRY, out, "telemetry")
            else:
                if len(self._buffer) == self._buffer.maxlen:
                    self.dropped += 1
                self._buffer.append(out)
            if (self.bed_events and self._last_occupied is not None
                    and r.occupied != self._last_occupied):
                self.send_event(EventType.BED_ENTRY if r.occupied else EventType.BED_EXIT,
                                ts=t)
            self._last_occupied = r.occupied
            return out

    def _flush_on_connect(self) -> None:
        super()._flush_on_connect()
        if not self._buffer:
            return
        samples = list(self._buffer)
        self._buffer.clear()
        chunks = chunk_samples(samples)
        for chunk in chunks:
            batch = BedTelemetryBatch(ts=self.now(), seq=self._next_seq(), samples=chunk)
            self._publish(Channel.TELEMETRY, batch, "telemetry_batch")
        logger.info("%s: sent %d stored readings in %d batch(es)", self.device_id,
                    len(samples), len(chunks))


class CallButtonSim(DeviceSim):
    """A wearable or wall call button: SOS, cancel, fall detection, weekly self-test."""

    device_type = DeviceType.CALL_BUTTON

    def press_sos(self, detail: str | None = None) -> DeviceEvent:
        """The resident presses the SOS button."""
        return self.send_event(EventType.SOS, detail)

    def cancel_sos(self, detail: str | None = None) -> DeviceEvent:
        """The resident cancels the call (pressed by mistake, or help no longer needed)."""
        return self.send_event(EventType.SOS_CANCEL, detail)

    def fall(self, detail: str | None = None) -> DeviceEvent:
        """The button's accelerometer detects a fall."""
        return self.send_event(EventType.FALL, detail)

    def weekly_test(self) -> DeviceEvent:
        """The weekly self-test the resident is asked to do."""
        return self.send_event(EventType.TEST, "weekly test")

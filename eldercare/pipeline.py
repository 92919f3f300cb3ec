"""The pipeline process: MQTT in -> gateway -> ingest (batched COPY) and alerts (own path).

Each message is received and decoded once. Messages are acknowledged to the broker only
after everything they produced is committed (at-least-once, persistent session).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from alerts.config import AlertSettings
from alerts.receipts import Receipt, ReceiptTracker
from alerts.service import AlertEngine, Clock, DirectNotify, Refresh, wall_clock
from eldercare.acks import AckGate, ack_token, split_tokens
from gateway.deadlog import DeadLetterLog
from gateway.gateway import DEFAULT_RAW_RETENTION, Accepted, Gateway, dead_letter
from gateway.mqttclient import BufferedClient, service_client
from gateway.records import DeadLetter, Record
from gateway.registry import Registry, RegistryUnavailable
from gateway.schema import (
    ALL_SITES_FILTER,
    INTERNAL_TOPIC_ROOT,
    AlarmReceivedCommand,
    Channel,
    channel_filter,
    encode,
    site_filter,
    topic_for,
)
from gateway.text import printable
from ingest.spool import Spool
from ingest.writer import IngestWriter
from kernel.endpoint import MqttEndpoint

logger = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 10_000
SESSION_EXPIRY_S = 7 * 24 * 3600


def topic_filters(sites: list[str]) -> list[str]:
    """Readings and status filters for the sites this pipeline owns ([] = every site)."""
    return [channel_filter(s, ch) for s in _sites_or_all(sites)
            for ch in (Channel.TELEMETRY, Channel.STATUS)]


def event_filters(sites: list[str]) -> list[str]:
    """Device-event filters (SOS, falls...) for the sites this pipeline owns."""
    return [channel_filter(s, Channel.EVENT) for s in _sites_or_all(sites)]


def _sites_or_all(sites: list[str]) -> list[str | None]:
    return list(sites) if sites else [None]


def _legacy_filters(sites: list[str]) -> list[str]:
    """Filters of releases that took every channel on one session (unsubscribed on connect)."""
    return [site_filter(s) for s in sites] if sites else [ALL_SITES_FILTER]


def session_client_ids(name: str) -> tuple[str, str]:
    """MQTT client ids of a pipeline's persistent sessions: readings/status, and events."""
    return f"eldercare-pipeline-{name}", f"eldercare-pipeline-{name}-events"


# Device events travel on their own MQTT session, so an SOS never queues in the broker
# behind a backlog of telemetry (ack tokens say which session: eldercare/acks.py).
EVENT_RECEIVE_MAXIMUM = 1_000
ACK_FLUSH_TIMEOUT_S = 5.0
BARRIER_TOPIC = f"{INTERNAL_TOPIC_ROOT}/barrier"
"""Never subscribed: unsubscribing from it is a round trip proving the broker read all before."""


@dataclass
class _Session:
    """One persistent MQTT session of the pipeline and what it subscribes to."""

    name: str
    client: BufferedClient
    filters: list[str]
    events: bool
    receive_maximum: int
    connected: threading.Event = field(default_factory=threading.Event)
    received: int = 0
    unsubacks: set[int] = field(default_factory=set)  # message ids of UNSUBACKs received


class Pipeline:
    """One pipeline process's worth of gateway, ingest and alerts."""

    def __init__(self, mqtt_endpoint: MqttEndpoint, database_url: str, sites: list[str],
                 name: str = "main", batch_rows: int = 5000, batch_ms: int = 200,
                 alert_settings: AlertSettings | None = None,
                 direct: DirectNotify | None = None,
                 on_refresh: Refresh | None = None,
                 raw_retention: timedelta = DEFAULT_RAW_RETENTION,
                 registry_cache: Path | None = None,
                 event_receive_maximum: int = EVENT_RECEIVE_MAXIMUM,
                 spool: Spool | None = None, clock: Clock = wall_clock) -> None:
        """`clock`: the time messages are received at (the gateway's plausibility and
        retention checks, Last Will stamping) and the alert engine's clock; the wall clock
        in production, injected where a replay must not depend on the date."""
        self.sites = sites
        self._clock = clock
        self.filters = topic_filters(sites) + event_filters(sites)
        self._endpoint = mqtt_endpoint
        # Messages of devices the registry cannot answer for yet (database down, device not
        # in the cached registry): held unacknowledged, taken again when the registry loads.
        self._parked: list[tuple[str, bytes, datetime, int | None, bool]] = []
        self._parked_lock = threading.Lock()
        self._handback_lock = threading.Lock()  # one hand-back pass at a time
        self._returning: set[str] = set()  # devices whose held messages are being handed back
        self._requeue: list[tuple[str, bytes, datetime, int | None, bool]] = []
        self.registry = Registry(database_url, cache_path=registry_cache,
                                 on_load=self._take_parked)
        self.gateway = Gateway(self.registry.lookup, raw_retention=raw_retention)
        data_id, events_id = session_client_ids(name)
        self._data = self._session(data_id, topic_filters(sites), False, RECEIVE_MAXIMUM)
        self._events = self._session(events_id, event_filters(sites), True,
                                     event_receive_maximum)
        self.receipts = ReceiptTracker()
        self.gate = AckGate(self._ack)
        self.writer = IngestWriter(database_url, self.gate.release_many, batch_rows,
                                   batch_ms / 1000, spool=spool)
        self.alerts = AlertEngine(database_url, alert_settings or AlertSettings(), sites,
                                  publish=self._publish, release=self.gate.release,
                                  hold=self.gate.hold, lookup=self.registry.lookup,
                                  direct=direct, on_refresh=on_refresh,
                                  on_alarm_stored=self.receipts.alert_stored,
                                  clock=clock)
        self.connected = threading.Event()
        self.dead_letters = 0
        self.dead_letter_log = DeadLetterLog(time.monotonic)
        self._stopping = False

    def _session(self, client_id: str, filters: list[str], events: bool, receive_max: int
                 ) -> _Session:
        client = service_client(self._endpoint, client_id, client_class=BufferedClient,
                                protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True,
                                reconnect_max_s=5)
        session = _Session(client_id, client, filters, events, receive_max)
        client.user_data_set(session)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        return session

    @property
    def received(self) -> int:
        """Messages received on both sessions."""
        return self._data.received + self._events.received

    def start(self) -> None:
        """Load the registry, start the workers and connect to the broker.

        Nothing here needs the database: with it down, the registry comes from its cache
        file, the alert engine starts without contexts and both catch up when it returns.
        """
        count = self.registry.load()
        logger.info("registry: %d devices%s; subscribing to %s", count,
                    " (cached: the database is down)" if self.registry.from_cache else "",
                    ", ".join(self.filters))
        self.registry.start_listener()
        self.writer.start()
        self.alerts.start()
        for session in (self._events, self._data):
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = session.receive_maximum
            session.client.connect_async(self._endpoint.host, self._endpoint.port,
                                         keepalive=30, clean_start=False, properties=props)
            session.client.loop_start()

    def _take_parked(self) -> None:
        """The registry (re)loaded from the database, or its listener's once-a-second pass:
        take the messages held for it (those whose device it still cannot look up are held
        again, ahead of anything held meanwhile).

        While they are handed back, a device's new message arriving on the network thread
        must not overtake its held ones: their devices stay in `_returning` until the pass
        ends, and such a message is held behind them (`_park_behind`)."""
        with self._handback_lock:
            with self._parked_lock:
                parked, self._parked = self._parked, []
                self._returning = {_device_of(held[0]) for held in parked}
                self._requeue = []
            if parked:
                logger.info("registry is back: taking %d held messages", len(parked))
            try:
                for topic, payload, now, token, dup in parked:
                    self._take_safely(topic, payload, now, token, dup, returning=True)
            finally:
                with self._parked_lock:
                    self._parked = self._requeue + self._parked
                    self._returning, self._requeue = set(), []

    def _park_behind(self, topic: str, payload: bytes, now: datetime, token: int | None,
                     dup: bool) -> bool:
        """Hold a message behind its device's held ones (or those being handed back), so
        that they keep their order (a cancel must not overtake the SOS it cancels)."""
        device = _device_of(topic)
        with self._parked_lock:
            if device not in self._returning and not any(
                    _device_of(held[0]) == device for held in self._parked):
                return False
            self._parked.append((topic, payload, now, token, dup))
        return True

    def _hold(self, item: tuple[str, bytes, datetime, int | None, bool], returning: bool
              ) -> None:
        """Hold a message the registry cannot answer for; one being handed back goes to
        the front again (ahead of what arrived meanwhile)."""
        with self._parked_lock:
            (self._requeue if returning else self._parked).append(item)

    def _requeued_behind(self, item: tuple[str, bytes, datetime, int | None, bool]) -> bool:
        """A handed-back message whose device already had one held again: held behind it."""
        device = _device_of(item[0])
        with self._parked_lock:
            if not any(_device_of(held[0]) == device for held in self._requeue):
                return False
            self._requeue.append(item)
        return True

    @property
    def parked(self) -> int:
        """Messages held until the registry can say whose device sent them."""
        with self._parked_lock:
            return len(self._parked)

    def stop(self) -> None:
        """Stop taking messages, commit and acknowledge what was taken, then disconnect.

        Messages that arrive during the stop are not taken; the broker redelivers them.
        """
        self._stopping = True
        self.alerts.stop()
        self.writer.stop()
        self._flush_acks(time.monotonic() + ACK_FLUSH_TIMEOUT_S)
        self.dead_letter_log.flush()
        for session in (self._data, self._events):
            session.client.disconnect()
            session.client.loop_stop()
        self.registry.stop()

    def _flush_acks(self, deadline: float) -> None:
        """Wait (until `deadline`) for every PUBACK to be written and read by the broker.

        Written is not enough: a pipeline started right after this one takes the session
        over, and the broker drops what it had not yet read from the old connection (those
        messages would come back as redeliveries). An UNSUBSCRIBE sent after the acks is
        answered only once the broker has read them.
        """
        sessions = (self._data, self._events)
        while (any(s.connected.is_set() and s.client.want_write() for s in sessions)
               and time.monotonic() < deadline):
            time.sleep(0.01)
        barriers: list[tuple[_Session, int]] = []
        for session in sessions:
            if session.connected.is_set():
                rc, mid = session.client.unsubscribe(BARRIER_TOPIC)
                if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                    barriers.append((session, mid))

        def waiting() -> list[_Session]:  # a session that dropped meanwhile is not waited for
            return [s for s, mid in barriers if mid not in s.unsubacks and s.connected.is_set()]

        while waiting() and time.monotonic() < deadline:
            time.sleep(0.01)
        for session in waiting():
            logger.warning("%s: the broker did not confirm reading the last acks", session.name)

    def _on_unsubscribe(self, client: mqtt.Client, session: _Session, mid: int,
                        reasons: Any, props: Any) -> None:
        session.unsubacks.add(mid)

    def _publish(self, topic: str, payload: bytes) -> None:
        self._events.client.publish(topic, payload, qos=1)

    def _ack(self, tokens: list[int]) -> None:
        # Receipts are taken before the PUBACKs go out: after a PUBACK the broker may reuse
        # the message id, and a new message would then carry the same token.
        receipts = self.receipts.freed(tokens)
        self._puback(tokens)
        for receipt in receipts:
            self._send_receipt(receipt)

    def _puback(self, tokens: list[int]) -> None:
        for (events, connection), mids in split_tokens(tokens).items():
            (self._events if events else self._data).client.ack_many(mids, connection)

    def _send_receipt(self, receipt: Receipt) -> None:
        """Tell the device its alarm is stored (QoS 1 on its `cmd` topic); it stops repeating."""
        command = AlarmReceivedCommand(ts=self._clock(), seq=receipt.seq,
                                       alert_id=receipt.alert_id)
        try:
            self._publish(topic_for(receipt.site, receipt.device_id, Channel.CMD),
                          encode(command))
        except Exception:  # the device repeats the alarm and gets the next receipt
            logger.exception("could not send the alarm receipt for %s seq %d",
                             printable(receipt.device_id), receipt.seq)

    def _on_connect(self, client: mqtt.Client, session: _Session, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            logger.error("broker refused the pipeline login: %s", reason)
            return
        logger.info("%s connected to broker (session present: %s)", session.name,
                    flags.session_present)
        if session is self._data and flags.session_present:
            legacy = [f for f in _legacy_filters(self.sites) if f not in session.filters]
            client.unsubscribe(legacy)
        # retainHandling=2: never replay retained messages. The persistent session already
        # delivered every status live; a replayed Last Will would be a stale duplicate.
        opts = SubscribeOptions(qos=1, retainHandling=2)
        client.subscribe([(f, opts) for f in session.filters])
        session.connected.set()
        if self._data.connected.is_set() and self._events.connected.is_set():
            self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, session: _Session, flags: Any, reason: Any,
                       props: Any) -> None:
        session.connected.clear()
        self.connected.clear()
        if reason.is_failure:
            logger.warning("disconnected from broker: %s; reconnecting", reason)

    def _on_message(self, client: mqtt.Client, session: _Session, msg: mqtt.MQTTMessage
                    ) -> None:
        if self._stopping:
            return  # not acknowledged: the broker redelivers it to the next run
        session.received += 1
        token = (ack_token(msg.mid, session.events, session.client.connection)
                 if msg.qos > 0 else None)
        topic = msg._topic.decode(errors="replace")
        self._take_safely(topic, bytes(msg.payload), self._clock(), token, msg.dup)

    def _take_safely(self, topic: str, payload: bytes, now: datetime, token: int | None,
                     dup: bool, returning: bool = False) -> None:
        """`_take`, but a bug must not stop the calling thread (the network thread, or the
        registry's when it hands back held messages) nor lose the message."""
        try:
            self._take(topic, payload, now, token, dup, returning)
        except Exception as exc:
            self.receipts.discard(token)  # a dead letter is no stored alarm: no receipt
            logger.exception("could not process a message on %s; kept as a dead letter",
                             printable(topic))
            self.dead_letters += 1
            self.writer.add_dead_letter(
                dead_letter(topic, payload, now, f"internal error in the pipeline: {exc!r}"),
                token)

    def _rescued(self, letter: DeadLetter) -> None:
        """Dead-letter the malformed original of a rescued alarm, for the integrator.

        Without the message's token: the token travels with the alarm's records, so the
        message is acknowledged once the alarm is stored (the letter is queued first, so it
        is committed in the same batch or an earlier one).
        """
        self.dead_letters += 1
        self.dead_letter_log.record(letter)
        self.writer.add_dead_letter(letter, None)

    def _take(self, topic: str, payload: bytes, now: datetime, token: int | None,
              dup: bool = False, returning: bool = False) -> None:
        item = (topic, payload, now, token, dup)
        if returning:
            if self._requeue and self._requeued_behind(item):
                return
        elif (self._parked or self._returning) and self._park_behind(*item):
            return
        try:
            result = self.gateway.process(topic, payload, now)
        except RegistryUnavailable:
            self._hold(item, returning)
            return
        if not isinstance(result, Accepted):
            self.dead_letters += 1
            self.dead_letter_log.record(result)
            self.writer.add_dead_letter(result, token)
            return
        if result.dead_letter is not None:  # an alarm rescued from a malformed message
            self._rescued(result.dead_letter)
        if token is not None and not dup and self.receipts.repeats_held(result.records):
            self._take_repeat(result.records, token)
            return
        self.receipts.expect(result.records, token)
        self.alerts.on_records(result.records, token)
        self.writer.add(result.records, token)

    def _take_repeat(self, records: tuple[Record, ...], token: int) -> None:
        """A device's repeat of an alarm whose earlier copy is still held: PUBACK it now.

        During a database outage a held alarm repeats every minute until its receipt; held
        too, the repeats would fill the events session's receive window and the broker would
        stop delivering, so a NEW alarm of another resident would reach neither the bus nor
        direct notification. The held copy is stored when the database returns and its
        receipt answers this copy too (the device stops repeating only then, so a crash of
        the pipeline before that loses nothing). Taken as a QoS 0 message (no token), so
        the detector and the writer see it as today (a copy, a duplicate row). A broker
        redelivery (DUP) is not taken here: it is the broker's own copy of a held message
        whose PUBACK can no longer go out on the connection it came on.
        """
        self.alerts.on_records(records, None)
        self.writer.add(records, None)
        self._puback([token])  # last: if taking it failed, it is still held (dead letter)


def _device_of(topic: str) -> str:
    """The device segment of a contract topic (eldercare/v1/{site}/{device}/{channel})."""
    parts = topic.split("/")
    return parts[3] if len(parts) > 3 else topic

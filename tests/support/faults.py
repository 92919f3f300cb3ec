"""Counting what a broker PUBACKed against what was stored, as (device, seq) sets: shared by
the broker-fault and spool tests."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway import schema
from gateway.provisioning import DeviceCredentials
from gateway.schema import Channel, topic_for
from kernel import db
from tests.support.wait import wait_until

T0_MS = int(time.time() * 1000) - 3_600_000
Pair = tuple[str, int]


class CountingPublisher:
    """A QoS 1 bed sensor that resends until PUBACK (paho keeps unacknowledged messages
    across reconnects) and records which seqs the broker acknowledged."""

    def __init__(self, creds: DeviceCredentials, port: int, n: int) -> None:
        assert n < 65_535, "message ids must not wrap: they map PUBACKs back to seqs"
        self.creds, self.n = creds, n
        self.sent = 0
        self._seq_of_mid: dict[int, int] = {}
        self._acked_mids: set[int] = set()  # set.add is atomic: no lock shared with paho
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=creds.device_id)
        self.client.username_pw_set(creds.username, creds.password)
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, *rest: object
                    ) -> None:
        self._acked_mids.add(mid)

    def _run(self) -> None:
        topic = topic_for(self.creds.site, self.creds.device_id, Channel.TELEMETRY)
        for seq in range(1, self.n + 1):
            body = schema.encode(schema.BedReading(ts=T0_MS + seq * 100, seq=seq, occupied=True,
                                                   heart_rate=60, respiration_rate=14,
                                                   movement=seq % 100))
            info = self.client.publish(topic, body, qos=1)
            self._seq_of_mid[info.mid] = seq
            self.sent += 1
            while self.sent - len(self._acked_mids) > 2_000:
                time.sleep(0.005)  # back-pressure of the load generator, not a test wait

    @property
    def acked(self) -> int:
        """PUBACKs received so far."""
        return len(self._acked_mids)

    def acked_pairs(self) -> set[Pair]:
        """The (device, seq) pairs the broker acknowledged."""
        return {(self.creds.device_id, self._seq_of_mid[m]) for m in set(self._acked_mids)
                if m in self._seq_of_mid}

    def start(self) -> CountingPublisher:
        self.thread.start()
        return self

    def finish(self) -> set[Pair]:
        """Wait until every message is acknowledged (resent across broker restarts)."""
        self.thread.join(180)
        wait_until(lambda: self.acked >= self.n, timeout=180, what="all publishes acked")
        self.client.disconnect()
        self.client.loop_stop()
        return self.acked_pairs()


def stored_pairs(database_url: str) -> set[Pair]:
    """The (device, seq) pairs in bed_telemetry (None while the database is down)."""
    with db.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT device_id, seq FROM bed_telemetry").fetchall()
    return {(str(d), int(s)) for d, s in rows}


def _stored_or_empty(database_url: str) -> set[Pair]:
    try:
        return stored_pairs(database_url)
    except Exception:  # the database is down
        return set()

"""At-least-once delivery on real services: SIGKILL of the pipeline, database outage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from eldercare.embedded import start_postgres
from eldercare.pipeline import RECEIVE_MAXIMUM
from gateway import schema
from gateway.provisioning import DeviceCredentials
from gateway.schema import Channel, topic_for
from tests.support.database import count
from tests.support.homes import seed_home
from tests.support.pipeline import running_pipeline
from tests.support.services import Broker
from tests.support.wait import wait_until

T0_MS = int(time.time() * 1000) - 3_600_000


class Publisher:
    """A lean QoS 1 device publisher running in a thread (bounded in-flight window)."""

    def __init__(self, creds: DeviceCredentials, port: int, first_seq: int, n: int,
                 rate: float | None = None) -> None:
        self.creds, self.first_seq, self.n, self.rate = creds, first_seq, n, rate
        self.acked = 0
        self.sent = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=creds.device_id)
        self.client.username_pw_set(creds.username, creds.password)
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, *args: object) -> None:
        self.acked += 1

    def _run(self) -> None:
        topic = topic_for(self.creds.site, self.creds.device_id, Channel.TELEMETRY)
        start = time.monotonic()
        for i in range(self.n):
            seq = self.first_seq + i
            body = schema.encode(schema.BedReading(ts=T0_MS + seq * 100, seq=seq, occupied=True,
                                                   heart_rate=60, respiration_rate=14,
                                                   movement=seq % 100))
            self.client.publish(topic, body, qos=1)
            self.sent += 1
            if self.rate:
                ahead = (i + 1) / self.rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)  # pacing of the load generator, not a test wait

    def start(self) -> Publisher:
        self.thread.start()
        return self

    def finish(self) -> None:
        self.thread.join(120)
        wait_until(lambda: self.acked >= self.n, timeout=120, what="all publishes acked")
        self.client.disconnect()
        self.client.loop_stop()


def _pipeline_env(database_url: str, broker: Broker) -> dict[str, str]:
    env = os.environ.copy()
    env.update({"ELDERCARE_DATABASE_URL": database_url,
                "ELDERCARE_MQTT_URL": broker.pipeline.url(),
                "ELDERCARE_JWT_SECRET": "x" * 32, "ELDERCARE_INGEST_BATCH_MS": "50"})
    return env


def _start_pipeline(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "eldercare.cli", "pipeline", "--name", name],
                            env=env)


def _rows(url: str) -> int:
    return count(url, "SELECT count(*) FROM bed_telemetry")


@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing(clean_db, broker):
    home = seed_home(clean_db, broker.admin)
    env = _pipeline_env(clean_db, broker)
    name = f"kill{time.time_ns()}"
    proc = _start_pipeline(env, name)
    try:
        # Until the pipeline has subscribed, the broker keeps nothing for it: re-send a
        # probe (the same seq, so duplicates are harmless) until it is stored.
        def probe_stored() -> bool:
            Publisher(home.bed, broker.port, 0, 1).start().finish()
            try:
                wait_until(lambda: _rows(clean_db) == 1, timeout=1)
            except AssertionError:
                return False
            return True

        wait_until(probe_stored, timeout=60, what="pipeline subscribed")
        n = 20_000
        pub = Publisher(home.bed, broker.port, 1, n).start()
        wait_until(lambda: _rows(clean_db) > 2_000, timeout=60, what="stream under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stored_at_kill = _rows(clean_db)
        assert stored_at_kill < n + 1, "kill came too late to test anything"
        pub.finish()
        proc = _start_pipeline(env, name)
        wait_until(lambda: _rows(clean_db) == n + 1, timeout=120,
                   what="every message stored after restart")
        assert count(clean_db, "SELECT count(DISTINCT seq) FROM bed_telemetry") == n + 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


@pytest.mark.slow
def test_database_outage_of_60s_under_load_loses_nothing(own_pg, broker):
    cfg, procs = own_pg
    home = seed_home(cfg.url, broker.admin)
    rate, outage_s = 250, 60
    with running_pipeline(broker.pipeline, cfg.url, prefix="outage") as pipe:
        n = rate * (outage_s + 15)
        pub = Publisher(home.bed, broker.port, 1, n, rate=rate).start()
        wait_until(lambda: _rows(cfg.url) > rate * 3, timeout=30, what="stream under way")
        procs[0].stop()
        sent_at_stop = pub.sent
        wait_until(lambda: pipe.writer.failures > 0, timeout=30, what="writer notices outage")
        # The outage lasts while the generator offers `outage_s` seconds' worth of load.
        wait_until(lambda: pub.sent >= sent_at_stop + rate * outage_s, timeout=outage_s * 2,
                   what=f"{outage_s} s of load during the outage")
        assert _rows_or_none(cfg.url) is None, "the database really was down"
        # Memory is bounded by the receive window: the broker holds the rest.
        assert pipe.writer.pending <= RECEIVE_MAXIMUM < rate * outage_s
        procs[0] = start_postgres(cfg)
        pub.finish()
        wait_until(lambda: _rows(cfg.url) == n, timeout=120, what="every message stored")
        assert count(cfg.url, "SELECT count(DISTINCT seq) FROM bed_telemetry") == n


def _rows_or_none(url: str) -> int | None:
    try:
        return _rows(url)
    except Exception:  # connection refused while the database is down
        return None


def test_store_and_forward_batch_and_redelivery(clean_db, broker):
    home = seed_home(clean_db, broker.admin)
    with running_pipeline(broker.pipeline, clean_db, prefix="sf") as pipe:
        samples = [schema.BedReading(ts=T0_MS + i * 5000, seq=i, occupied=i % 7 != 0,
                                     heart_rate=None if i % 11 == 0 else 58,
                                     respiration_rate=13, movement=1) for i in range(120)]
        batch = schema.encode(schema.BedTelemetryBatch(ts=T0_MS + 600_000, seq=121,
                                                       samples=samples))
        pub = Publisher(home.bed, broker.port, 0, 0).start()
        topic = topic_for(home.site, home.bed.device_id, Channel.TELEMETRY)
        for _ in range(2):  # the second copy is a redelivery: nothing new may be stored
            pub.client.publish(topic, batch, qos=1).wait_for_publish(5)
        wait_until(lambda: pipe.writer.committed_batches >= 1 and _rows(clean_db) == 120)
        wait_until(lambda: pipe.received == 2)
        assert count(clean_db, "SELECT count(*) FROM bed_telemetry WHERE heart_rate IS NULL") \
            == len([i for i in range(120) if i % 11 == 0])
        pub.finish()


@pytest.mark.parametrize("offset_ms,label", [(10 * 60_000, "future"), (None, "before-2020")])
def test_implausible_clock_uses_receive_time_and_dedups(clean_db, broker, offset_ms, label):
    home = seed_home(clean_db, broker.admin)
    with running_pipeline(broker.pipeline, clean_db, prefix="clk") as pipe:
        ts = int(time.time() * 1000) + offset_ms if offset_ms else 1_000_000_000_000  # 2001
        body = json.dumps({"ts": ts, "seq": 5, "occupied": True, "movement": 1}).encode()
        pub = Publisher(home.bed, broker.port, 0, 0).start()
        topic = topic_for(home.site, home.bed.device_id, Channel.TELEMETRY)
        pub.client.publish(topic, body, qos=1).wait_for_publish(5)
        pub.client.publish(topic, body, qos=1).wait_for_publish(5)  # redelivery
        wait_until(lambda: pipe.received == 2 and pipe.writer.committed_rows >= 2)
        rows = count(clean_db, "SELECT count(*) FROM bed_telemetry WHERE device_time = "
                               "to_timestamp(%s / 1000.0) AND abs(extract(epoch FROM "
                               "time - received_at)) < 1", ts)
        assert rows == 1, label
        pub.finish()


def test_two_pipelines_split_the_sites_without_loss_or_duplicates(clean_db, broker):
    east = seed_home(clean_db, broker.admin, site="east")
    west = seed_home(clean_db, broker.admin, site="west")
    with running_pipeline(broker.pipeline, clean_db, ["east"], "east") as p_east, \
            running_pipeline(broker.pipeline, clean_db, ["west"], "west") as p_west:
        pipes = [p_east, p_west]
        n = 2_000
        pubs = [Publisher(h.bed, broker.port, 1, n).start() for h in (east, west)]
        for pub in pubs:
            pub.finish()
        wait_until(lambda: _rows(clean_db) == 2 * n, timeout=60, what="both streams stored")
        assert [p.received for p in pipes] == [n, n]  # each saw only its own site
        for home in (east, west):
            assert count(clean_db, "SELECT count(DISTINCT seq) FROM bed_telemetry "
                                   "WHERE device_id = %s", home.bed.device_id) == n


HOSTILE = [
    b'{"ts":%d,"seq":1,"occupied":true,"movement":1,"x\\n2026-01-01 ERROR pipeline exited":1}',
    b'{"ts":%d,"seq":2,"occupied":true,"movement":1,"k\\u0000ey":1}',
    b'{"ts":%d,"seq":3,"occupied":true,"occupied":false,"movement":1}',
]


def test_hostile_payloads_are_dead_lettered_whole_and_logged_once(clean_db, broker, caplog):
    caplog.set_level("INFO")
    home = seed_home(clean_db, broker.admin)
    now_ms = int(time.time() * 1000)
    topic = topic_for(home.site, home.bed.device_id, Channel.TELEMETRY)
    event_topic = topic_for(home.site, home.bed.device_id, Channel.EVENT)
    old = now_ms - 91 * 86_400_000
    with running_pipeline(broker.pipeline, clean_db, prefix="hostile") as pipe:
        pub = Publisher(home.bed, broker.port, 0, 0).start()
        for _ in range(20):
            for body in HOSTILE:
                pub.client.publish(topic, body % now_ms, qos=1).wait_for_publish(5)
        pub.client.publish(topic, b'{"ts":%d,"seq":4,"occupied":true,"movement":1}' % old,
                           qos=1).wait_for_publish(5)
        pub.client.publish(event_topic, b'{"ts":%d,"seq":5,"type":"sos"}' % now_ms,
                           qos=1).wait_for_publish(5)
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM dead_letters") == 62,
                   what="every hostile message dead-lettered")
        pub.finish()
        assert pipe.dead_letters == 62
    assert count(clean_db, "SELECT count(*) FROM dead_letters WHERE topic = %s", topic) == 61
    assert count(clean_db, "SELECT count(*) FROM dead_letters WHERE reason = %s",
                 "k\\x00ey: Extra inputs are not permitted") == 20
    assert count(clean_db, "SELECT count(*) FROM dead_letters WHERE reason = "
                           "'duplicate key ''occupied'' (each key at most once)'") == 20
    assert count(clean_db, "SELECT count(*) FROM dead_letters WHERE reason LIKE "
                           "'%%older than the 90-day retention window%%'") == 1
    assert count(clean_db, "SELECT count(*) FROM dead_letters WHERE reason LIKE "
                           "'a bed_sensor does not send ''sos'' events%%'") == 1
    assert count(clean_db, "SELECT count(*) FROM bed_telemetry") == 0
    assert count(clean_db, "SELECT count(*) FROM alerts") == 0
    logged = [r.getMessage() for r in caplog.records]
    assert not any(m.startswith("2026-01-01 ERROR") for line in logged
                   for m in line.splitlines()[1:]), "a device forged a log line"
    dead = [m for m in logged if "dead letter" in m]
    assert 1 <= len(dead) <= 2  # the first with its reason, then one count at the stop
    assert all(m.isprintable() for m in dead)
    assert not any("quarantined" in m for m in logged)

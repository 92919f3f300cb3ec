"""The local spool end to end: a database outage longer than the broker's queue for the
pipeline loses no PUBACKed message, and neither does a SIGKILL of the pipeline while the
spool holds the outage. Counted as (device, seq) sets, PUBACKed against stored."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from eldercare.embedded import BrokerQueue, start_postgres
from eldercare.pipeline import RECEIVE_MAXIMUM, Pipeline
from gateway import schema
from gateway.broker_admin import BrokerAdmin
from gateway.schema import Channel
from ingest.spool import Spool
from tests.support.devices import RawDevice
from tests.support.faults import (
    CountingPublisher,
    Pair,
    _stored_or_empty,
    stored_pairs,
)
from tests.support.homes import seed_home
from tests.support.services import PIPELINE_PASSWORD, PIPELINE_USER, OwnBroker
from tests.support.wait import wait_until

SMALL_QUEUE = BrokerQueue(outage_s=1, rate=1_000)  # 1,000 messages beyond the window


@pytest.fixture
def small_broker() -> Iterator[OwnBroker]:
    """A private Mosquitto that queues only 1,000 messages for a subscriber: without the
    spool a database outage of more than window + 1,000 messages loses the rest."""
    path = Path(tempfile.mkdtemp(prefix="eldercare-small-mqtt-"))
    broker = OwnBroker(path)
    broker.config = replace(broker.config, queue=SMALL_QUEUE)
    broker.start()
    with BrokerAdmin(broker.admin) as ba:
        ba.ensure_service_account(PIPELINE_USER, PIPELINE_PASSWORD)
    yield broker
    broker.stop()
    shutil.rmtree(path, ignore_errors=True)


def spooled_rows(path: Path) -> int:
    """Rows in a spool file another process writes (read-only peek; 0 before it exists)."""
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        try:
            row = conn.execute("SELECT coalesce(sum(rows), 0) FROM batches").fetchone()
        except sqlite3.OperationalError:  # not created yet
            return 0
    return int(row[0])


def test_an_outage_longer_than_the_brokers_queue_loses_nothing(
        own_pg: tuple[Any, list[Any]], small_broker: OwnBroker, tmp_path: Path) -> None:
    cfg, procs = own_pg
    homes = [seed_home(cfg.url, small_broker.admin, name=f"R{i}") for i in range(2)]
    per_device = 12_000  # 24,000: more than the window (10,000) + the queue (1,000)
    assert 2 * per_device > RECEIVE_MAXIMUM + SMALL_QUEUE.max_messages
    spool = Spool(tmp_path / "spool.sqlite")
    pipe = Pipeline(small_broker.pipeline, cfg.url, sites=[], name=f"sp{time.time_ns()}",
                    batch_ms=50, spool=spool)
    pipe.start()
    try:
        wait_until(pipe.connected.is_set, timeout=30, what="pipeline connected")
        procs[0].stop()
        pubs = [CountingPublisher(h.bed, small_broker.port, per_device).start() for h in homes]
        acked: set[Pair] = set()
        for pub in pubs:
            acked |= pub.finish()
        assert len(acked) == 2 * per_device
        assert not _stored_or_empty(cfg.url), "the database really was down"
        procs[0] = start_postgres(cfg)
        wait_until(lambda: acked <= stored_pairs(cfg.url), timeout=240,
                   what="every PUBACKed pair stored")
        wait_until(lambda: not pipe.writer.spooling, timeout=60, what="spool drained")
    finally:
        pipe.stop()
    stats = pipe.writer.spool_stats()
    assert stats is not None and stats["peak_bytes"] > 0 and stats["episodes"]


def _pipeline(url: str, broker: OwnBroker, data_dir: Path, name: str
              ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ELDERCARE_DATABASE_URL": url,
           "ELDERCARE_MQTT_URL": broker.pipeline.url(), "ELDERCARE_JWT_SECRET": "x" * 32,
           "ELDERCARE_INGEST_BATCH_MS": "50", "ELDERCARE_DATA_DIR": str(data_dir)}
    return subprocess.Popen([sys.executable, "-m", "eldercare.cli", "pipeline", "--name", name],
                            env=env)


def test_a_pipeline_killed_with_a_full_spool_loses_nothing(
        own_pg: tuple[Any, list[Any]], own_broker: OwnBroker, tmp_path: Path) -> None:
    """A broker with the shipped queue: while the pipeline process is down it is the broker
    that holds the messages (the small broker would drop them: a pipeline crash is not
    what the spool is for)."""
    cfg, procs = own_pg
    first, home = (seed_home(cfg.url, own_broker.admin, name=f"K{i}") for i in range(2))
    name = f"spk{time.time_ns()}"
    spool_path = tmp_path / f"spool-{name}.sqlite"
    n = 15_000
    proc = _pipeline(cfg.url, own_broker, tmp_path, name)
    try:
        probe = RawDevice(first.bed, own_broker.port)
        seqs = iter(range(1, 1_000_000))

        def probe_stored() -> bool:  # the broker drops what comes before the subscription
            body = schema.encode(schema.BedReading(ts=int(time.time() * 1000), seq=next(seqs),
                                                   occupied=True, movement=1))
            probe.publish(Channel.TELEMETRY, body)
            return bool(stored_pairs(cfg.url))

        wait_until(probe_stored, timeout=60, interval=0.5, what="the pipeline storing")
        probe.close()
        procs[0].stop()
        pub = CountingPublisher(home.bed, own_broker.port, n).start()
        wait_until(lambda: spooled_rows(spool_path) >= 5_000, timeout=120,
                   what="the outage spooling")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        held = spooled_rows(spool_path)
        proc = _pipeline(cfg.url, own_broker, tmp_path, name)  # the database still down
        acked = pub.finish()
        assert len(acked) == n and held >= 5_000
        procs[0] = start_postgres(cfg)
        wait_until(lambda: acked <= stored_pairs(cfg.url), timeout=240,
                   what="every PUBACKed pair stored")
        wait_until(lambda: spooled_rows(spool_path) == 0, timeout=60, what="spool drained")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)

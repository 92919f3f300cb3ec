"""Broker faults on real services: Mosquitto SIGTERM and SIGKILL under load (with and without
a backlog for the pipeline), and a database outage longer than the broker's old queue.

Every test counts the (device, seq) pairs the broker PUBACKed against the pairs stored, as
sets: a duplicate cannot hide a loss. What a SIGKILL may lose is the bound docs/ingest.md
states ("What a broker crash can lose"): the messages queued since the broker's last save
plus those in flight to the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from eldercare.embedded import BrokerQueue, start_postgres
from eldercare.pipeline import EVENT_RECEIVE_MAXIMUM, RECEIVE_MAXIMUM, Pipeline
from kernel.endpoint import MqttEndpoint
from tests.support.faults import CountingPublisher, Pair, _stored_or_empty, stored_pairs
from tests.support.homes import seed_home
from tests.support.services import OwnBroker
from tests.support.wait import wait_until


@contextmanager
def pipeline(endpoint: MqttEndpoint, database_url: str, name: str) -> Iterator[Pipeline]:
    """A pipeline on a named persistent session (the same name resumes the same session)."""
    pipe = Pipeline(endpoint, database_url, sites=[], name=name, batch_ms=50)
    pipe.start()
    try:
        wait_until(pipe.connected.is_set, timeout=30, what="pipeline connected")
        yield pipe
    finally:
        pipe.stop()


def _subscribe_session(broker: OwnBroker, database_url: str, name: str) -> None:
    """Create the pipeline's persistent session, and make the broker save it: a session that
    a broker never saved is gone after a SIGKILL (docs/ingest.md)."""
    with pipeline(broker.pipeline, database_url, name):
        pass
    broker.stop()  # SIGTERM saves the store
    broker.start()


def _crash(broker: OwnBroker, how: str) -> None:
    if how == "sigkill":
        broker.kill()
    else:
        broker.stop()
    broker.start()


def _sigkill_bound() -> int:
    """What docs/ingest.md says a broker SIGKILL may lose, with the shipped settings."""
    return BrokerQueue().autosave_changes + RECEIVE_MAXIMUM + EVENT_RECEIVE_MAXIMUM


def _lost(acked: set[Pair], database_url: str) -> set[Pair]:
    return acked - stored_pairs(database_url)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_broker_crash_under_load_with_live_pipeline(clean_db, own_broker, how):
    home = seed_home(clean_db, own_broker.admin)
    name = f"live{time.time_ns()}"
    _subscribe_session(own_broker, clean_db, name)
    n = 30_000
    with pipeline(own_broker.pipeline, clean_db, name):
        pub = CountingPublisher(home.bed, own_broker.port, n).start()
        wait_until(lambda: pub.acked > n // 3, timeout=120, what="load under way")
        _crash(own_broker, how)
        assert pub.acked < n, "the crash came too late to test anything"
        acked = pub.finish()
        assert len(acked) == n
        if how == "sigterm":
            wait_until(lambda: acked <= stored_pairs(clean_db), timeout=120,
                       what="every PUBACKed pair stored")
        else:
            # Nothing stored can still be missing once the stream is complete: wait until
            # the last seqs are in, then count the loss against the stated bound.
            wait_until(lambda: (home.bed.device_id, n) in stored_pairs(clean_db),
                       timeout=120, what="the stream's end stored")
            wait_until(lambda: len(_lost(acked, clean_db)) <= _sigkill_bound(), timeout=60,
                       what="loss within the bound docs/ingest.md states")


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_broker_crash_with_a_backlog_for_the_stopped_pipeline(clean_db, own_broker, how):
    home = seed_home(clean_db, own_broker.admin)
    name = f"backlog{time.time_ns()}"
    _subscribe_session(own_broker, clean_db, name)
    n = 40_000
    pub = CountingPublisher(home.bed, own_broker.port, n).start()
    # The pipeline is down: everything queues in the broker, past several saves.
    wait_until(lambda: pub.acked > 3 * n // 4, timeout=120, what="a backlog queued")
    _crash(own_broker, how)
    assert pub.acked < n, "the crash came too late to test anything"
    acked = pub.finish()
    with pipeline(own_broker.pipeline, clean_db, name):
        wait_until(lambda: (home.bed.device_id, n) in stored_pairs(clean_db), timeout=120,
                   what="the backlog drained")
        if how == "sigterm":
            wait_until(lambda: acked <= stored_pairs(clean_db), timeout=120,
                       what="every PUBACKed pair stored")
        else:
            wait_until(lambda: len(_lost(acked, clean_db)) <= _sigkill_bound(), timeout=60,
                       what="loss within the bound docs/ingest.md states")


def test_database_outage_longer_than_the_old_broker_queue_loses_nothing(own_pg, own_broker):
    """The broker used to keep 100,000 messages for the pipeline (plus its 10,000 receive
    window) and then PUBACK and drop. An outage holding more than that loses nothing now."""
    cfg, procs = own_pg
    homes = [seed_home(cfg.url, own_broker.admin, name=f"R{i}") for i in range(4)]
    per_device = 30_000  # 120,000 in all: more than the old 110,000
    with pipeline(own_broker.pipeline, cfg.url, f"outage{time.time_ns()}") as pipe:
        procs[0].stop()
        pubs = [CountingPublisher(h.bed, own_broker.port, per_device).start() for h in homes]
        acked: set[Pair] = set()
        for pub in pubs:
            acked |= pub.finish()  # all PUBACKed while the database is down
        assert not _stored_or_empty(cfg.url), "the database really was down"
        assert pipe.writer.pending <= RECEIVE_MAXIMUM
        procs[0] = start_postgres(cfg)
        assert len(acked) == 4 * per_device
        wait_until(lambda: acked <= stored_pairs(cfg.url), timeout=240,
                   what="every PUBACKed pair stored")

"""A real pipeline for a test: connected, on a fresh persistent session, stopped after."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from eldercare.pipeline import Pipeline
from kernel.endpoint import MqttEndpoint
from tests.support.wait import wait_until


@contextmanager
def running_pipeline(endpoint: MqttEndpoint, database_url: str, sites: Sequence[str] = (),
                     prefix: str = "t") -> Iterator[Pipeline]:
    """A connected pipeline with a fresh persistent session and short batches; stopped after."""
    pipe = Pipeline(endpoint, database_url, sites=list(sites), name=f"{prefix}{time.time_ns()}",
                    batch_ms=50)
    pipe.start()
    try:
        wait_until(pipe.connected.is_set, what="pipeline connected")
        yield pipe
    finally:
        pipe.stop()

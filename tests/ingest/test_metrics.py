"""The lag sampler the pipeline installs as its writer's commit hook for benchmarks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ingest.batch import Batch
from ingest.metrics import LagSampler
from tests.support.ingest import T0, readings


def test_lag_samples_weigh_each_batch_by_its_size():
    # One 1,000-row backlog batch and a hundred 10-row batches a day later: half the
    # messages each, so half the lag samples each (a fixed count per batch gave the big
    # batch 20 samples against 1,000 and hid it from the p99).
    sampler = LagSampler()
    at = (T0 + timedelta(days=1, hours=1)).timestamp()
    later = [replace(r, time=r.time + timedelta(days=1)) for r in readings(10)]
    sampler(Batch(telemetry=readings(1000)), at)
    for _ in range(100):
        sampler(Batch(telemetry=list(later)), at)

    lags = [lag for _, lag in sampler.samples]
    old = [lag for lag in lags if lag > min(lags) + 12 * 3600]
    assert len(old) == len(lags) - len(old) > 0

"""Analysis of measured samples for the benchmarks: percentiles and a lag timeline."""

from __future__ import annotations

import numpy as np


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p99/max of a sample, in milliseconds (values in seconds).

    Every value counts once, so each must stand for the same number of events: the
    pipeline's lag samples do (every n-th message, `ingest.metrics.LagSampler`); samples
    taken a fixed number per batch would not.
    """
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    arr = np.asarray(values) * 1000
    return {"p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99)),
            "max_ms": float(arr.max())}


def lag_timeline(samples: list[tuple[float, float]], step_s: float = 1.0
                 ) -> list[list[float]]:
    """[seconds into the run, max lag ms] per `step_s` of commit time: is a tail one stall
    or spread out?"""
    if not samples:
        return []
    arr = np.asarray(samples)
    start = float(arr[:, 0].min())
    slots = ((arr[:, 0] - start) // step_s).astype(int)
    peak = np.zeros(int(slots.max()) + 1)
    np.maximum.at(peak, slots, arr[:, 1] * 1000)
    return [[round(i * step_s, 1), round(float(v), 1)] for i, v in enumerate(peak)]

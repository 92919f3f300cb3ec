"""Smoke test of `eldercare bench ingest`: tiny numbers, real processes, no timing checks."""

from __future__ import annotations

from eldercare.bench import ingest as bench
from eldercare.runtime import Runtime


def test_bench_ingest_completes_and_loses_nothing(bench_runtime: Runtime):
    cfg = bench.BenchConfig(homes=5, rate=300, seconds=2, drain_messages=2_000)

    result = bench.run(bench_runtime, cfg)

    pipe = result["pipeline"]
    assert pipe["sent"] >= 500
    assert pipe["stored"] == pipe["sent"]
    assert pipe["loss"] == 0 and pipe["duplicates"] == 0
    assert pipe["lag_timeline"], "the pipeline reports lag per second"
    assert result["bare_subscriber"]["messages"] >= 2_000
    assert result["bare_subscriber_buffered"]["messages"] >= 2_000
    text = bench.report(result)
    assert "pipeline sustained" in text and "targets:" in text

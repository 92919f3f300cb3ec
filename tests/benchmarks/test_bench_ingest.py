"""Smoke test of `python -m benchmarks ingest`: tiny numbers, real processes, no timing checks."""

from __future__ import annotations

from pathlib import Path

from benchmarks import ingest as bench
from benchmarks.loadgen import LoadGenerator
from eldercare.runtime import Runtime
from gateway.schema import DeviceType


def test_bench_ingest_completes_and_loses_nothing(bench_runtime: Runtime):
    cfg = bench.BenchConfig(homes=5, rate=300, seconds=2, drain_messages=2_000)

    result = bench.run(bench_runtime, cfg)

    pipe = result["pipeline"]
    assert pipe["sent"] >= 500
    assert pipe["pubacked"] == pipe["sent"] == pipe["stored"] == pipe["rows"]
    assert pipe["lost"] == 0 and pipe["duplicates"] == 0
    assert pipe["stored_not_pubacked"] == 0 and pipe["lost_examples"] == []
    assert pipe["drain_state"] == "complete"
    assert pipe["lag_timeline"], "the pipeline reports lag per second"
    assert result["bare_subscriber"]["messages"] >= 2_000
    assert result["bare_subscriber_buffered"]["messages"] >= 2_000
    assert bench.exit_code(result) in (0, 2)  # 2: a timing target missed on a busy machine
    text = bench.report(result)
    assert "pipeline sustained" in text and "targets:" in text and "lost 0" in text


def test_bench_ingest_reports_pubacked_messages_nobody_stored(bench_runtime: Runtime,
                                                               tmp_path: Path):
    # A bed sensor of a site the pipeline does not serve: the broker PUBACKs its messages
    # and, with no subscriber, drops them. Acknowledged and never stored, for real.
    creds = bench.provision(bench_runtime, 3)
    [(elsewhere,)] = bench.create_residents(bench_runtime, "bench-elsewhere", "Elsewhere", 1,
                                            (DeviceType.BED_SENSOR,))
    # last: the pipeline's start-up probe publishes as the first device
    gen = LoadGenerator([*creds, elsewhere], bench_runtime.mqtt.host, bench_runtime.mqtt.port)
    try:
        pipe = bench.pipeline_run(bench_runtime, gen, rate=200, seconds=1, workdir=tmp_path,
                                  drain_quiet_s=15)
    finally:
        gen.close()

    assert pipe["sent"] == pipe["pubacked"] == 200
    assert pipe["lost"] == 50 and pipe["stored"] == 150  # round robin over four devices
    assert all(p.startswith(f"{elsewhere.device_id}#") for p in pipe["lost_examples"])
    assert pipe["duplicates"] == 0 and pipe["stored_not_pubacked"] == 0
    assert pipe["drain_state"].startswith("stalled")
    result = {"pipeline": pipe, "ratio_vs_bare_subscriber": 1.0,
              "cpu_ratio_vs_bare_subscriber": 1.0}
    assert bench.exit_code(result) == 1

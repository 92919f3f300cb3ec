"""Smoke test of `python -m benchmarks alerts`: tiny numbers, real processes, no timing checks."""

from __future__ import annotations

from benchmarks import alerts as bench
from eldercare.runtime import Runtime


def test_bench_alerts_completes_and_loses_no_sos(bench_runtime: Runtime):
    cfg = bench.AlertBenchConfig(homes=5, presses=5, rate=100, press_rate=20, settle_s=20,
                                 load_warmup_s=0.5)

    result = bench.run(bench_runtime, cfg)

    assert result["presses"] == 5
    assert result["lost"] == 0
    assert result["unacknowledged_by_broker"] == 0
    assert result["missing_commit_notify"] == 0
    assert result["stream_error"] is None
    assert result["missing_sse_stored"] == 0
    assert "error" not in result["background"] and result["background"]["sent"] > 0
    assert "(a) publish → alert committed" in bench.report(result)


def test_bench_alerts_flood_phase_reports_other_residents_sos(bench_runtime: Runtime):
    cfg = bench.AlertBenchConfig(homes=8, presses=3, rate=100, press_rate=20, settle_s=20,
                                 load_warmup_s=0.5, flood_rate=200, flood_presses=3,
                                 flood_lead_s=0.3)

    result = bench.run(bench_runtime, cfg)

    flood = result["flood"]
    assert flood["presses"] == 3 and flood["lost"] == 0
    assert flood["flood_sent"] > 0
    assert flood["commit"]["p99_ms"] is not None and flood["p99_ratio"] is not None
    assert result["unacknowledged_by_broker"] == 0
    assert "(c) other SOS → committed in a flood" in bench.report(result)

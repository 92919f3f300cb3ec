"""Smoke test of the provisioning benchmark on the test services (small N)."""

from __future__ import annotations

from benchmarks import provision as bench
from eldercare.runtime import Runtime


def test_bench_provision_imports_and_sampled_devices_log_in(bench_runtime: Runtime) -> None:
    result = bench.run(bench_runtime, homes=30)

    assert result["devices"] == 60
    assert result["broker_accounts"] == 60
    assert result["logins_ok"] == result["login_sample"] == 20
    assert bench.exit_code(result) == 0
    assert "30 homes, 60 devices" in bench.report(result)

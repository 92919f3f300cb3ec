#!/usr/bin/env bash
# One command: install what is missing, then lint, type-check and run the whole test suite,
# twice: no test may depend on the wall clock, the date or the machine's time zone.
#   1. every test, under TZ=America/Chicago (not the UTC of most servers and CI machines);
#   2. every test that needs no server-side clock (not marked `db`: no PostgreSQL), under
#      TZ=Pacific/Kiritimati (UTC+14, so the local date differs from the UTC one) with the
#      wall clock moved to 19:30 UTC today (time-machine, see --fake-now in tests/conftest.py,
#      which deselects the `db` tier): about 900 of ~1300 tests. Tests on PostgreSQL (or a
#      whole demo) are left out of this pass: the server keeps the real time and compares it
#      with the test's (now(), retention, device clock plausibility), so a faked test clock
#      would be a fault of the test, not of the code. They run at the real hour in pass 1,
#      under the non-UTC TZ.
# pytest's exit code 5 ("no tests ran") fails the run: a selection that matched nothing
# must not look green.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
echo "[test] ruff"
.venv/bin/ruff check .
echo "[test] mypy"
.venv/bin/mypy kernel gateway ingest alerts dashboard simulators eldercare benchmarks
echo "[test] layer contract (import-linter, [tool.importlinter] in pyproject.toml)"
.venv/bin/lint-imports --no-cache
echo "[test] JavaScript types (tsc --noEmit: tsconfig.json, tsconfig.sw.json)"
.vendor/node_modules/.bin/tsc --noEmit -p tsconfig.json
.vendor/node_modules/.bin/tsc --noEmit -p tsconfig.sw.json

selected=0
[[ $# -gt 0 ]] && selected=1  # a selection given by hand, e.g. ./scripts/test.sh tests/x.py

run_pass() {
    local name=$1; shift
    local code=0
    "$@" || code=$?
    if [[ $code -eq 5 && $name == "faked clock" && $selected -eq 1 ]]; then
        echo "[test] $name: every selected test needs PostgreSQL; nothing to run here" >&2
        return 0
    elif [[ $code -eq 5 ]]; then
        echo "[test] $name: pytest collected no tests (exit 5); failing" >&2
    elif [[ $code -ne 0 ]]; then
        echo "[test] $name: pytest failed (exit $code)" >&2
    fi
    return $code
}

echo "[test] pytest, TZ=America/Chicago"
run_pass "all tests" env TZ=America/Chicago .venv/bin/pytest "$@"
echo "[test] pytest, TZ=Pacific/Kiritimati, wall clock at 19:30 UTC (tests without PostgreSQL)"
run_pass "faked clock" env TZ=Pacific/Kiritimati ELDERCARE_TEST_FAKE_NOW=19:30 \
    .venv/bin/pytest "$@"

#!/usr/bin/env bash
# One command: install what is missing, then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
echo "[test] ruff"
.venv/bin/ruff check .
echo "[test] mypy"
.venv/bin/mypy gateway ingest alerts dashboard simulators eldercare
echo "[test] pytest"
exec .venv/bin/pytest "$@"

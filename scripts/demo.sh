#!/usr/bin/env bash
# One command: install what is missing, then start the whole platform with simulated homes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/eldercare demo "$@"

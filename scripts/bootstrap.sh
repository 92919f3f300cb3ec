#!/usr/bin/env bash
# Install everything eldercare needs on Debian 12, idempotently:
# Mosquitto, PostgreSQL 15 + TimescaleDB (built once, cached), a Python virtualenv,
# the API docs page's Swagger UI files, the charts' ECharts files and the TypeScript checker
# (npm, pinned, into the git-ignored .vendor/),
# and with --test also Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[bootstrap] $*"; }
SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "[bootstrap] run as root or install sudo" >&2; exit 1; }
    SUDO="sudo"
fi

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

packages=()
command -v mosquitto >/dev/null || [[ -x /usr/sbin/mosquitto ]] || packages+=(mosquitto)
command -v mosquitto_ctrl >/dev/null || packages+=(mosquitto-clients)
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || packages+=(postgresql-15)
python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)
command -v npm >/dev/null || packages+=(nodejs npm)
if [[ $want_test -eq 1 ]]; then
    command -v chromium >/dev/null || packages+=(chromium)
    # A CJK font, so the Chinese pages' screenshots show characters, not boxes.
    [[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || packages+=(fonts-wqy-microhei)
fi
if [[ ${#packages[@]} -gt 0 ]]; then
    log "installing Debian packages: ${packages[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >/dev/null
fi
# The Debian packages start system-wide services where systemd runs; the platform
# manages its own instances on other ports, so those are left alone.

$SUDO bash scripts/install_timescaledb.sh

if [[ ! -x .venv/bin/python ]]; then
    log "creating the Python virtualenv in .venv"
    python3 -m venv .venv
fi
stamp=.venv/.eldercare-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    log "installing Python dependencies (pinned in pyproject.toml)"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[dev,bench]'
    touch $stamp
fi
# Front-end tools and files from the npm registry, at exact versions, into the git-ignored
# .vendor/ (never from a CDN, nothing copied into the repository); no install scripts run
# (swagger-ui-dist pulls in a download-analytics helper whose install script would phone home):
# - swagger-ui-dist: /docs serves Swagger UI itself (dashboard/docs_ui.py);
# - echarts: the vitals charts of the resident page and the family view (dashboard/charts_ui.py
#   serves its ES module; its type declarations serve the type check);
# - typescript: `tsc --noEmit` type-checks the pages' JavaScript (tsconfig.json, scripts/test.sh).
# All in one npm command: npm removes from .vendor whatever a run did not name.
SWAGGER_UI_VERSION=5.35.0
ECHARTS_VERSION=6.1.0
TYPESCRIPT_VERSION=7.0.2
vendored() { grep -qs "\"version\": \"$2\"" ".vendor/node_modules/$1/package.json"; }
if ! vendored swagger-ui-dist "$SWAGGER_UI_VERSION" || ! vendored echarts "$ECHARTS_VERSION" \
    || ! vendored typescript "$TYPESCRIPT_VERSION"
then
    log "installing swagger-ui-dist@$SWAGGER_UI_VERSION, echarts@$ECHARTS_VERSION and" \
        "typescript@$TYPESCRIPT_VERSION"
    SCARF_ANALYTICS=false npm install --prefix .vendor --no-save --no-audit --no-fund \
        --ignore-scripts --loglevel=error "swagger-ui-dist@$SWAGGER_UI_VERSION" \
        "echarts@$ECHARTS_VERSION" "typescript@$TYPESCRIPT_VERSION" >/dev/null
fi

log "ready"

#!/usr/bin/env bash
# Make the `timescaledb` extension (Apache-2 edition) available to the local
# Debian PostgreSQL 15 server, idempotently.
#
#   1. Fast path: extension already installed -> exit 0.
#   2. A cached build exists -> copy the cached files back into place.
#   3. Otherwise build it from the Debian 13 "trixie" source package (fetched
#      with a private apt configuration, so the system's apt sources and state
#      are not touched), install it and store the installed files in the cache.
#
# Environment:
#   ELDERCARE_CACHE_DIR    cache root (default: $HOME/.cache/eldercare)
#   TIMESCALEDB_VERSION    exact upstream version to use, e.g. 2.19.3
#                          (default: newest 2.19.x found in cache / trixie)
#   TIMESCALEDB_KEEP_WORK  set to 1 to keep the temporary build directory
#
# See docs/timescaledb.md.
set -euo pipefail

PG_MAJOR=15
PG_BINDIR="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BINDIR}/pg_config"
EXT_DIR="/usr/share/postgresql/${PG_MAJOR}/extension"
LIB_DIR="/usr/lib/postgresql/${PG_MAJOR}/lib"
CONTROL_FILE="${EXT_DIR}/timescaledb.control"
LOADER_SO="${LIB_DIR}/timescaledb.so"

TSDB_SERIES="2.19"
TSDB_VERSION="${TIMESCALEDB_VERSION:-}"
SOURCE_SUITE="trixie"
DEBIAN_MIRROR="http://deb.debian.org/debian"
ARCHIVE_KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"

log() { echo "[timescaledb] $*"; }
die() { echo "[timescaledb] ERROR: $*" >&2; exit 1; }

# --- 1. fast path ------------------------------------------------------------
if [[ -f "$CONTROL_FILE" && -f "$LOADER_SO" ]]; then
    log "already installed for PostgreSQL ${PG_MAJOR} (${CONTROL_FILE}); nothing to do"
    exit 0
fi

# --- common checks -----------------------------------------------------------
[[ "$(id -u)" -eq 0 ]] || die "must run as root to install into ${EXT_DIR} and ${LIB_DIR} (try: sudo $0)"
[[ -x "${PG_BINDIR}/postgres" ]] \
    || die "PostgreSQL ${PG_MAJOR} server not found at ${PG_BINDIR}/postgres (apt-get install postgresql-${PG_MAJOR})"

CACHE_ROOT="${ELDERCARE_CACHE_DIR:-${HOME:-/root}/.cache/eldercare}"

if [[ -n "$TSDB_VERSION" && ! "$TSDB_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    die "TIMESCALEDB_VERSION must look like 2.19.3 (got '${TSDB_VERSION}')"
fi

# A cache entry is "$CACHE_ROOT/timescaledb-<version>/" holding the installed
# files under their absolute paths (usr/lib/..., usr/share/...) plus MANIFEST,
# the list of those paths. MANIFEST is written last, so its presence marks a
# complete entry.
cache_entry_valid() {
    local dir="$1" f
    [[ -s "${dir}/MANIFEST" ]] || return 1
    while IFS= read -r f; do
        [[ -n "$f" ]] || continue
        [[ -e "${dir}/${f}" || -L "${dir}/${f}" ]] || return 1
    done <"${dir}/MANIFEST"
    grep -qxF "${CONTROL_FILE#/}" "${dir}/MANIFEST" && grep -qxF "${LOADER_SO#/}" "${dir}/MANIFEST"
}

# Copy the files listed in MANIFEST from a cache entry back to /.
restore_from_cache() {
    local dir="$1" f n=0
    while IFS= read -r f; do
        [[ -n "$f" ]] || continue
        if [[ -L "${dir}/${f}" ]]; then
            mkdir -p "$(dirname "/${f}")"
            cp -P --remove-destination "${dir}/${f}" "/${f}"
        else
            install -D -m "$(stat -c '%a' "${dir}/${f}")" "${dir}/${f}" "/${f}"
        fi
        n=$((n + 1))
    done <"${dir}/MANIFEST"
    log "installed ${n} files from ${dir}"
}

verify_installed() {
    [[ -f "$CONTROL_FILE" && -f "$LOADER_SO" ]] \
        || die "installation incomplete: ${CONTROL_FILE} or ${LOADER_SO} is missing"
}

print_next_steps() {
    log "done: timescaledb $1 is available to PostgreSQL ${PG_MAJOR}"
    log "to use it: set shared_preload_libraries = 'timescaledb' in postgresql.conf, restart PostgreSQL, then CREATE EXTENSION timescaledb;"
}

# Newest valid cache entry for the requested version (or series).
find_cache_entry() {
    local pattern d best=""
    if [[ -n "$TSDB_VERSION" ]]; then
        pattern="timescaledb-${TSDB_VERSION}"
    else
        pattern="timescaledb-${TSDB_SERIES}.*"
    fi
    [[ -d "$CACHE_ROOT" ]] || return 0
    while IFS= read -r d; do
        [[ -n "$d" ]] || continue
        if cache_entry_valid "$d"; then
            best="$d"
        else
            log "ignoring incomplete cache entry ${d}" >&2
        fi
    done < <(find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -type d -name "$pattern" | sort -V)
    echo "$best"
}

# --- 2. cache path -----------------------------------------------------------
cached="$(find_cache_entry)"
if [[ -n "$cached" ]]; then
    log "restoring cached build from ${cached}"
    restore_from_cache "$cached"
    verify_installed
    print_next_steps "${cached##*/timescaledb-}"
    exit 0
fi

# --- 3. build path -----------------------------------------------------------
log "no installed copy and no cached build in ${CACHE_ROOT}; building from the Debian ${SOURCE_SUITE} source package"

command -v apt-get >/dev/null && command -v dpkg-query >/dev/null \
    || die "apt-get/dpkg-query not found; this script supports Debian only"

# Build dependencies. libssl-dev: src/net/conn_ssl.c includes OpenSSL headers
# (Debian's PostgreSQL is built --with-openssl, so timescaledb enables it).
BUILD_DEPS=(
    "postgresql-server-dev-${PG_MAJOR}" cmake make gcc libc6-dev binutils
    libssl-dev dpkg-dev xz-utils debian-archive-keyring
)
missing=()
for pkg in "${BUILD_DEPS[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == "installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing missing build dependencies: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || die "could not install build dependencies: ${missing[*]}"
else
    log "build dependencies already installed"
fi
[[ -x "$PG_CONFIG" ]] || die "${PG_CONFIG} not found (is postgresql-server-dev-${PG_MAJOR} installed?)"
[[ -r "$ARCHIVE_KEYRING" ]] || die "${ARCHIVE_KEYRING} not found (apt-get install debian-archive-keyring)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/eldercare-timescaledb.XXXXXX")"
chmod 755 "$WORK" # apt's download sandbox user (_apt) must be able to traverse it
LOG_FILE="${WORK}/build.log"
cleanup() {
    local rc=$?
    if [[ $rc -ne 0 || "${TIMESCALEDB_KEEP_WORK:-0}" == "1" ]]; then
        log "work directory kept: ${WORK} (build log: ${LOG_FILE})" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# Run a command, sending its output to the build log; show the tail on failure.
run_logged() {
    local what="$1"
    shift
    echo "=== ${what}: $*" >>"$LOG_FILE"
    if ! "$@" >>"$LOG_FILE" 2>&1; then
        echo "----- last lines of ${LOG_FILE} -----" >&2
        tail -n 40 "$LOG_FILE" >&2
        die "${what} failed (full log: ${LOG_FILE})"
    fi
}

# Private apt configuration: own sources, lists, caches and preferences; only
# the dpkg status file is shared (read-only use). The system's
# /etc/apt/sources.list*, /var/lib/apt and /var/cache/apt are not touched.
APT_DIR="${WORK}/apt"
mkdir -p "${APT_DIR}/etc/sources.list.d" "${APT_DIR}/etc/preferences.d" \
    "${APT_DIR}/state/lists/partial" "${APT_DIR}/cache/archives/partial"
cat >"${APT_DIR}/etc/${SOURCE_SUITE}.sources" <<EOF
Types: deb-src
URIs: ${DEBIAN_MIRROR}
Suites: ${SOURCE_SUITE}
Components: main
Signed-By: ${ARCHIVE_KEYRING}
EOF
APT_OPTS=(
    -o "Dir::Etc::SourceList=${APT_DIR}/etc/${SOURCE_SUITE}.sources"
    -o "Dir::Etc::SourceParts=${APT_DIR}/etc/sources.list.d"
    -o "Dir::Etc::Preferences=${APT_DIR}/etc/preferences"
    -o "Dir::Etc::PreferencesParts=${APT_DIR}/etc/preferences.d"
    -o "Dir::State=${APT_DIR}/state"
    -o "Dir::State::Lists=${APT_DIR}/state/lists"
    -o "Dir::State::status=/var/lib/dpkg/status"
    -o "Dir::Cache=${APT_DIR}/cache"
)

log "fetching ${SOURCE_SUITE} source index (private apt config in ${APT_DIR})"
run_logged "apt-get update (${SOURCE_SUITE} deb-src)" apt-get "${APT_OPTS[@]}" update

# Pick the source version: exact TIMESCALEDB_VERSION if given, else newest 2.19.x.
mapfile -t src_versions < <(apt-cache "${APT_OPTS[@]}" showsrc timescaledb 2>/dev/null \
    | sed -n 's/^Version: //p' | sort -uV)
((${#src_versions[@]})) || die "no 'timescaledb' source package found in Debian ${SOURCE_SUITE}"
deb_version=""
for v in "${src_versions[@]}"; do
    upstream="${v#*:}"
    upstream="${upstream%%[+~-]*}"
    if [[ -n "$TSDB_VERSION" && "$upstream" == "$TSDB_VERSION" ]] \
        || [[ -z "$TSDB_VERSION" && "$upstream" == "${TSDB_SERIES}."* ]]; then
        deb_version="$v"   # list is sorted ascending: the last match wins
    fi
done
[[ -n "$deb_version" ]] \
    || die "Debian ${SOURCE_SUITE} has timescaledb ${src_versions[*]}, none matching ${TSDB_VERSION:-${TSDB_SERIES}.x}"
log "downloading source package timescaledb ${deb_version}"

SRC_PARENT="${WORK}/src"
mkdir -p "$SRC_PARENT"
# let apt's unprivileged download user write here (avoids the sandbox warning)
if id _apt >/dev/null 2>&1; then chown _apt "$SRC_PARENT"; fi
(cd "$SRC_PARENT" && run_logged "apt-get source" \
    apt-get "${APT_OPTS[@]}" source "timescaledb=${deb_version}")
SRC_DIR="$(find "$SRC_PARENT" -mindepth 1 -maxdepth 1 -type d -name 'timescaledb-*' | head -n 1)"
[[ -n "$SRC_DIR" && -f "${SRC_DIR}/version.config" && -x "${SRC_DIR}/bootstrap" ]] \
    || die "unpacked source tree not found in ${SRC_PARENT}"
version="$(sed -n 's/^version[[:space:]]*=[[:space:]]*//p' "${SRC_DIR}/version.config" | tr -d '[:space:]')"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "cannot read version from ${SRC_DIR}/version.config"
log "source unpacked: ${SRC_DIR##*/} (timescaledb ${version})"

# Apache-2 only: the Debian (+dfsg) source has no tsl/ directory anyway.
log "configuring (Apache-2 edition, PostgreSQL ${PG_MAJOR})"
(cd "$SRC_DIR" && run_logged "bootstrap (cmake)" ./bootstrap \
    -DAPACHE_ONLY=1 \
    -DREGRESS_CHECKS=OFF \
    -DTAP_CHECKS=OFF \
    -DWARNINGS_AS_ERRORS=OFF \
    -DGENERATE_DOWNGRADE_SCRIPT=OFF \
    -DSEND_TELEMETRY_DEFAULT=OFF \
    -DUSE_TELEMETRY=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPG_CONFIG="$PG_CONFIG")

jobs="$(nproc 2>/dev/null || echo 2)"
log "compiling with make -j${jobs} (usually 15-60 s)"
run_logged "make" make -C "${SRC_DIR}/build" -j"$jobs"

STAGE="${WORK}/stage"
log "installing into staging directory"
run_logged "make install" make -C "${SRC_DIR}/build" install DESTDIR="$STAGE"
# drop debug info, as Debian's packaging does (~19 MB -> a few MB)
find "$STAGE" -type f -name '*.so' -exec strip --strip-unneeded {} +
[[ -f "${STAGE}${CONTROL_FILE}" && -f "${STAGE}${LOADER_SO}" ]] \
    || die "build did not produce ${CONTROL_FILE} and ${LOADER_SO}"

# Store in the cache: copy to a temp entry, write MANIFEST last, then rename.
CACHE_ENTRY="${CACHE_ROOT}/timescaledb-${version}"
log "caching installed files in ${CACHE_ENTRY}"
mkdir -p "$CACHE_ROOT"
tmp_entry="$(mktemp -d "${CACHE_ROOT}/.timescaledb-${version}.XXXXXX")"
cp -a "${STAGE}/." "${tmp_entry}/"
(cd "$STAGE" && find . \( -type f -o -type l \) -printf '%P\n' | sort) >"${tmp_entry}/MANIFEST.tmp"
cat >"${tmp_entry}/BUILD-INFO" <<EOF
timescaledb ${version} (Apache-2 edition, APACHE_ONLY=1)
source: Debian ${SOURCE_SUITE} package timescaledb ${deb_version}
built for: $("$PG_CONFIG" --version) (${PG_CONFIG})
built on: $(date -u +%Y-%m-%dT%H:%M:%SZ) by scripts/install_timescaledb.sh
EOF
chmod 755 "$tmp_entry"
mv "${tmp_entry}/MANIFEST.tmp" "${tmp_entry}/MANIFEST"
rm -rf "$CACHE_ENTRY"
mv "$tmp_entry" "$CACHE_ENTRY"

log "installing into PostgreSQL ${PG_MAJOR} directories"
restore_from_cache "$CACHE_ENTRY"
verify_installed
print_next_steps "$version"

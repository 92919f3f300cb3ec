"""Shared fixtures: a real Mosquitto broker and a real PostgreSQL+TimescaleDB on free ports,
started lazily (only when a selected test asks for them); the test tiers; the faked clock."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import time_machine

from eldercare.embedded import (
    ManagedProcess,
    MosquittoConfig,
    PostgresConfig,
    free_port,
    start_mosquitto,
    start_postgres,
)
from eldercare.migrate import migrate
from eldercare.runtime import Runtime
from gateway.broker_admin import BrokerAdmin
from kernel import db
from kernel.endpoint import MqttEndpoint
from tests.support.cli import IN_PROCESS_KEYS, cli_env
from tests.support.probe import Probe
from tests.support.services import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    PIPELINE_PASSWORD,
    PIPELINE_USER,
    Broker,
    OwnBroker,
    tmpdir,
)

# The test tiers (markers registered in pyproject.toml), given by the fixtures a test uses,
# directly or through other fixtures: `pytest -m "not db and not mqtt and not browser and
# not slow"` is the pure tier, seconds long and needing no service. Tests that run the
# product in child processes say `slow` themselves (no fixture tells).
#   db:      PostgreSQL: the session server, a private one, or a demo's embedded one
#            (demo_dir). These servers keep the real time and compare it with the test's
#            (now(), retention windows, the plausibility of device clocks), so --fake-now
#            leaves every `db` test out (see pytest_collection_modifyitems).
#   mqtt:    Mosquitto: the session broker or a private one. The broker alone is fine under
#            a faked clock: paho and Mosquitto time keepalives and expiries with relative,
#            monotonic clocks.
#   browser: headless Chromium (the page tests).
#   slow:    a whole demo or `serve` in child processes.
TIER_FIXTURES: dict[str, frozenset[str]] = {
    "db": frozenset({"pg_config", "own_pg", "demo_dir"}),
    "mqtt": frozenset({"broker", "own_broker"}),
    "browser": frozenset({"chromium"}),
    "slow": frozenset({"demo_dir"}),
}

# Tables that must survive a test's truncation: yoyo's bookkeeping of applied migrations
# (_yoyo_migration, _yoyo_log, _yoyo_version, yoyo_lock), and the owner-only policy row a
# migration wrote (audit_policy, 0017_app_role), which the application role cannot restore.
_KEPT_PREFIXES = ("_yoyo", "yoyo_", "audit_policy")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fake-now", default=os.environ.get("ELDERCARE_TEST_FAKE_NOW") or None,
        metavar="HH:MM|ISO-8601",
        help="run every test that needs no server-side clock with the wall clock moved to "
             "this UTC time (HH:MM: today at that time; ticking from there), to prove no "
             "outcome depends on the hour; scripts/test.sh uses 19:30")


def fake_now(value: str) -> datetime:
    """The aware UTC instant `--fake-now` names (HH:MM: that time of today's UTC date)."""
    if len(value) <= 5 and ":" in value:
        day = datetime.now(UTC).date()
        return datetime.combine(day, time.fromisoformat(value), UTC)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise pytest.UsageError(f"--fake-now {value!r} needs a UTC offset")
    return moment


def pytest_report_header(config: pytest.Config) -> str:
    value = config.getoption("--fake-now")
    zone = os.environ.get("TZ", "(unset)")
    if value:
        return (f"clock: faked to {fake_now(value).isoformat()} (ticking) for tests not "
                f"marked db; TZ={zone}")
    return f"clock: real; TZ={zone}"


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by the marks added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the tiers of the fixtures it uses; with --fake-now, keep only the
    tests that run entirely on this process's clock (every test not marked `db`)."""
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in TIER_FIXTURES.items():
            if fixtures & uses:
                item.add_marker(marker)
    if not config.getoption("--fake-now"):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("db") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _travel(request: pytest.FixtureRequest) -> Iterator[None]:
    """Move the wall clock (not the monotonic one) to --fake-now, ticking, for this test."""
    value = request.config.getoption("--fake-now")
    if not value:
        yield
        return
    # A timestamp, not an aware datetime: time-machine would set TZ=UTC for a UTC datetime,
    # and the point is to run under the machine's (CI: a non-UTC) zone.
    with time_machine.travel(fake_now(value).timestamp(), tick=True):
        yield


@pytest.fixture(scope="session")
def pg_config() -> Iterator[PostgresConfig]:
    """A PostgreSQL+TimescaleDB server for the whole test session, migrated by the owner.
    Its `url` is the application role's (as in production), so every test using the
    database proves that role's grants suffice; `owner_url` is for setup and cleaning."""
    path = tmpdir("eldercare-pg-")
    cfg = PostgresConfig(path, free_port(), "test-pg-pw", "test-app-pw", durable=False)
    proc = start_postgres(cfg)
    migrate(cfg.owner_url)
    yield cfg
    proc.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_config: PostgresConfig) -> str:
    """URL of the session database, as the application role (what the platform uses)."""
    return pg_config.url


@pytest.fixture(scope="session")
def owner_url(pg_config: PostgresConfig) -> str:
    """URL of the session database as its owner: cleaning between tests (the application
    role may not TRUNCATE the audit trail), and what only an owner (or attacker) can do."""
    return pg_config.owner_url


@pytest.fixture(scope="session")
def truncate_sql(owner_url: str) -> str:
    """One TRUNCATE of every table the migrations created, read from the database once per
    session (so a new table is never forgotten), except yoyo's bookkeeping."""
    with db.connect(owner_url, autocommit=True) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                            "ORDER BY tablename").fetchall()
    tables = [str(name) for (name,) in rows if not str(name).startswith(_KEPT_PREFIXES)]
    assert tables, "the migrated test database has no tables"
    return f"TRUNCATE {', '.join(f'public.{t}' for t in tables)} RESTART IDENTITY CASCADE"


@pytest.fixture
def clean_db(database_url: str, owner_url: str, truncate_sql: str) -> str:
    """The session database, emptied (by its owner) before the test; the application
    role's URL."""
    with db.connect(owner_url, autocommit=True) as conn:
        conn.execute(truncate_sql)
    return database_url


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """A Mosquitto broker with dynamic security for the whole test session."""
    path = tmpdir("eldercare-mqtt-")
    port = free_port()
    proc = start_mosquitto(MosquittoConfig(path, port, ADMIN_USER, ADMIN_PASSWORD,
                                           persistence=False))
    admin = MqttEndpoint("127.0.0.1", port, ADMIN_USER, ADMIN_PASSWORD)
    with BrokerAdmin(admin) as ba:
        ba.ensure_service_account(PIPELINE_USER, PIPELINE_PASSWORD)
    yield Broker(port, admin, MqttEndpoint("127.0.0.1", port, PIPELINE_USER, PIPELINE_PASSWORD),
                 path)
    proc.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    """Collects a test's MQTT probes (tests/support/probe.py) so every one is closed at the
    end of the test."""
    made: list[Probe] = []
    yield made
    for p in made:
        p.close()


@pytest.fixture
def bench_runtime(broker: Broker, clean_db: str, owner_url: str, tmp_path: Path) -> Runtime:
    """A runtime on the test services, for benchmark smoke tests (no embedded services)."""
    return Runtime(database_url=clean_db, database_owner_url=owner_url,
                   mqtt=broker.pipeline, mqtt_admin=broker.admin,
                   jwt_secret="bench-smoke-secret-bench-smoke-secret", embedded=False,
                   data_dir=tmp_path, broker_dir=broker.data_dir)


@pytest.fixture
def own_pg() -> Iterator[tuple[PostgresConfig, list[ManagedProcess]]]:
    """A private, migrated PostgreSQL that a test may stop and restart (outage tests); its
    `url` is the application role's, as the session server's."""
    path = tmpdir("eldercare-outage-")
    cfg = PostgresConfig(path, free_port(), "outage-pw", "outage-app-pw", durable=False)
    procs = [start_postgres(cfg)]
    migrate(cfg.owner_url)
    yield cfg, procs
    for p in procs:
        p.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def own_broker() -> Iterator[OwnBroker]:
    """A private, persistent Mosquitto that a test may kill and restart (broker faults)."""
    path = tmpdir("eldercare-own-mqtt-")
    broker = OwnBroker(path)
    broker.start()
    with BrokerAdmin(broker.admin) as ba:
        ba.ensure_service_account(PIPELINE_USER, PIPELINE_PASSWORD)
    yield broker
    broker.stop()
    shutil.rmtree(path, ignore_errors=True)


ARTIFACTS_DIR = Path(os.environ.get("ELDERCARE_TEST_ARTIFACTS",
                                    Path(__file__).resolve().parent.parent / "test-artifacts"))
"""Where the page screenshots of a run are kept (git-ignored); CI can upload the folder."""


@pytest.fixture(autouse=True)
def _keep_screenshots(request: pytest.FixtureRequest) -> Iterator[None]:
    """Copy the screenshots a test saved in its tmp_path to test-artifacts/screenshots/<test>/,
    so every page state a browser test checked can be looked at after the run (pytest keeps
    only the last three tmp_path roots, and under a per-run name)."""
    yield
    tmp = request.node.funcargs.get("tmp_path") if hasattr(request.node, "funcargs") else None
    if not isinstance(tmp, Path) or not tmp.is_dir():
        return
    shots = sorted(tmp.rglob("*.png"))
    if not shots:
        return
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.nodeid)
    dest = ARTIFACTS_DIR / "screenshots" / name
    dest.mkdir(parents=True, exist_ok=True)
    for shot in shots:
        shutil.copy2(shot, dest / shot.name)


@pytest.fixture
def env(clean_db: str, owner_url: str, broker: Broker) -> dict[str, str]:
    """The environment of an `eldercare` child process on the test database and broker
    (the CLI tests; tests/support/cli.py)."""
    return cli_env(clean_db, broker, owner_url)


@pytest.fixture
def cli_db(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, clean_db: str) -> str:
    """`eldercare.cli.main` in this process, on the test database and broker."""
    for key in IN_PROCESS_KEYS:
        monkeypatch.setenv(key, env[key])
    return clean_db

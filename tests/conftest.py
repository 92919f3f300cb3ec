"""Shared fixtures: a real Mosquitto broker and a real PostgreSQL+TimescaleDB on free ports."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import time_machine

from eldercare.migrate import migrate
from eldercare.runtime import Runtime
from eldercare.services import (
    ManagedProcess,
    MosquittoConfig,
    PostgresConfig,
    free_port,
    start_mosquitto,
    start_postgres,
)
from gateway.broker_admin import BrokerAdmin
from kernel import db
from kernel.endpoint import MqttEndpoint

PIPELINE_USER = "test-pipeline"
PIPELINE_PASSWORD = "test-pipeline-pw"
ADMIN_USER = "test-admin"
ADMIN_PASSWORD = "test-admin-pw"

_TABLES = ("notification_outbox", "alert_escalations", "notification_channels",
           "alert_overrides", "detector_state", "platform_keys", "alert_history", "alerts",
           "family_contacts", "users", "devices", "residents", "sites", "bed_telemetry",
           "device_events", "device_status", "dead_letters", "vitals_1m", "resident_daily",
           "job_watermarks", "sessions", "device_history")


# Fixtures whose servers keep the real time and compare it with the test's: PostgreSQL
# (now(), retention windows, the plausibility of device clocks the pipeline checks against
# it) and a whole demo in child processes (demo_dir). time-machine moves this process's
# clock only, so a test using one of them cannot run under a faked clock, only under another
# TZ; with --fake-now they are deselected (counted in the summary) and every other test
# runs at the faked time. The broker alone is fine: paho and Mosquitto time keepalives and
# expiries with relative, monotonic clocks.
SERVER_CLOCK_FIXTURES = frozenset({"pg_config", "own_pg", "demo_dir"})


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
        return (f"clock: faked to {fake_now(value).isoformat()} (ticking) for tests without "
                f"{', '.join(sorted(SERVER_CLOCK_FIXTURES))}; TZ={zone}")
    return f"clock: real; TZ={zone}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --fake-now, keep only the tests that run entirely on this process's clock."""
    if not config.getoption("--fake-now"):
        return
    keep, drop = [], []
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        (drop if SERVER_CLOCK_FIXTURES & uses else keep).append(item)
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


def _tmpdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)  # noqa: S103 - services drop privileges when we are root
    return path


@pytest.fixture(scope="session")
def pg_config() -> Iterator[PostgresConfig]:
    """A PostgreSQL+TimescaleDB server for the whole test session, migrated."""
    path = _tmpdir("eldercare-pg-")
    cfg = PostgresConfig(path, free_port(), "test-pg-pw", durable=False)
    proc = start_postgres(cfg)
    migrate(cfg.url)
    yield cfg
    proc.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_config: PostgresConfig) -> str:
    """URL of the session database."""
    return pg_config.url


@pytest.fixture
def clean_db(database_url: str) -> str:
    """The session database, emptied before the test."""
    with db.connect(database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE")
    return database_url


@dataclass(frozen=True)
class Broker:
    """A running test broker and its accounts."""

    port: int
    admin: MqttEndpoint
    pipeline: MqttEndpoint
    data_dir: Path


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """A Mosquitto broker with dynamic security for the whole test session."""
    path = _tmpdir("eldercare-mqtt-")
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
def bench_runtime(broker: Broker, clean_db: str, tmp_path: Path) -> Runtime:
    """A runtime on the test services, for benchmark smoke tests (no embedded services)."""
    return Runtime(database_url=clean_db, mqtt=broker.pipeline, mqtt_admin=broker.admin,
                   jwt_secret="bench-smoke-secret-bench-smoke-secret", embedded=False,
                   data_dir=tmp_path, broker_dir=broker.data_dir)


@pytest.fixture
def own_pg() -> Iterator[tuple[PostgresConfig, list[ManagedProcess]]]:
    """A private, migrated PostgreSQL that a test may stop and restart (outage tests)."""
    path = _tmpdir("eldercare-outage-")
    cfg = PostgresConfig(path, free_port(), "outage-pw", durable=False)
    procs = [start_postgres(cfg)]
    migrate(cfg.url)
    yield cfg, procs
    for p in procs:
        p.stop()
    shutil.rmtree(path, ignore_errors=True)


class OwnBroker:
    """A private Mosquitto with persistence, on a fixed port and data folder, that a test may
    kill (SIGKILL), stop (SIGTERM) and start again: broker-fault tests. The pipeline and admin
    accounts survive restarts (dynamic security keeps them in the data folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.config = MosquittoConfig(path, self.port, ADMIN_USER, ADMIN_PASSWORD,
                                      persistence=True)
        self.admin = MqttEndpoint("127.0.0.1", self.port, ADMIN_USER, ADMIN_PASSWORD)
        self.pipeline = MqttEndpoint("127.0.0.1", self.port, PIPELINE_USER, PIPELINE_PASSWORD)
        self.proc: ManagedProcess | None = None

    def start(self) -> None:
        """Start (or start again) on the same port and data folder."""
        assert self.proc is None or not self.proc.alive(), "the broker is already running"
        self.proc = start_mosquitto(self.config)

    def kill(self) -> None:
        """SIGKILL: what Mosquitto had not saved is lost, as in a crash."""
        assert self.proc is not None
        self.proc.proc.kill()
        self.proc.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM: a clean stop (Mosquitto saves its persistence file)."""
        if self.proc is not None:
            self.proc.stop()


@pytest.fixture
def own_broker() -> Iterator[OwnBroker]:
    """A private, persistent Mosquitto that a test may kill and restart (broker faults)."""
    path = _tmpdir("eldercare-own-mqtt-")
    broker = OwnBroker(path)
    broker.start()
    with BrokerAdmin(broker.admin) as ba:
        ba.ensure_service_account(PIPELINE_USER, PIPELINE_PASSWORD)
    yield broker
    broker.stop()
    shutil.rmtree(path, ignore_errors=True)

"""Project-managed local Mosquitto and PostgreSQL+TimescaleDB (embedded mode and tests)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway import device_accounts

logger = logging.getLogger(__name__)

PG_BIN = Path(os.environ.get("ELDERCARE_PG_BIN", "/usr/lib/postgresql/15/bin"))
DYNSEC_PLUGIN_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)


class ServiceError(RuntimeError):
    """An embedded service could not be set up or started."""


def free_port() -> int:
    """Ask the kernel for a free loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.05) -> None:
    """Poll `predicate` until it is true or raise ServiceError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise ServiceError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def die_with_parent() -> None:
    """Child-side: get SIGTERM when the parent process dies (no orphans)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _service_user(name: str) -> str | None:
    """The unprivileged account to run a service as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise ServiceError(f"running as root but there is no '{name}' system user") from None
    return name


def _chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def _make_traversable(path: Path) -> None:
    """Let a dropped-privilege service reach `path` (x bit on each parent we own)."""
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        with contextlib.suppress(PermissionError):
            st = parent.stat()
            if st.st_uid == os.geteuid() and not st.st_mode & 0o001:
                os.chmod(parent, st.st_mode | 0o011)  # noqa: S103 - traverse only


@dataclass
class ManagedProcess:
    """A child process we started and must stop."""

    name: str
    proc: subprocess.Popen[bytes]
    stop_signal: int = signal.SIGTERM

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process gracefully, then kill it."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
            self.proc.kill()
            self.proc.wait(5)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None


def _spawn(name: str, argv: list[str], log_path: Path, user: str | None, stop_signal: int,
           env: dict[str, str] | None = None) -> ManagedProcess:
    log = open(log_path, "ab")  # noqa: SIM115 - the child keeps it
    # Its own process group, so a terminal's Ctrl-C reaches only us and we stop the services
    # in order (database last); as the service user *and group*, so that the service never
    # changes its own ids, which would clear PR_SET_PDEATHSIG and let it outlive us.
    group = None if user is None else pwd.getpwnam(user).pw_gid
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        user=user, group=group, extra_groups=None if user is None else [],
        preexec_fn=die_with_parent, env=env, process_group=0,
    )
    log.close()
    logger.info("started %s (pid %d), log %s", name, proc.pid, log_path)
    return ManagedProcess(name, proc, stop_signal)


# --- PostgreSQL + TimescaleDB ---------------------------------------------


APP_ROLE = "eldercare_app"
"""The application's database role: what the long-running processes log in as. It owns
nothing and holds only the grants of migration 0017_app_role, so the audit trail's REVOKE
of UPDATE/DELETE/TRUNCATE really applies to it (docs/admin-guide.md, "Database roles")."""


@dataclass
class PostgresConfig:
    """Where and how an embedded PostgreSQL runs.

    Two roles: `user` (initdb's superuser, owner of every table) runs the migrations;
    `app_user` is what the platform's processes connect as (`url`)."""

    data_dir: Path
    port: int
    password: str
    app_password: str
    user: str = "eldercare"
    app_user: str = APP_ROLE
    database: str = "eldercare"
    durable: bool = True

    @property
    def url(self) -> str:
        """libpq URL of the application role (every long-running process)."""
        return self._url(self.app_user, self.app_password, self.database)

    @property
    def owner_url(self) -> str:
        """libpq URL of the owner (superuser): migrations and setup only."""
        return self._url(self.user, self.password, self.database)

    def _url(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    @property
    def maintenance_url(self) -> str:
        """The owner's URL on the `postgres` database (to create ours and the role)."""
        return self._url(self.user, self.password, "postgres")


def timescaledb_available() -> bool:
    """True when the timescaledb extension is installed for the local PostgreSQL."""
    sharedir = subprocess.run(
        [str(PG_BIN / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
    ).stdout.strip() or "/usr/share/postgresql/15"
    return Path(sharedir, "extension", "timescaledb.control").exists()


def _pg_conf(cfg: PostgresConfig) -> str:
    lines = [
        "listen_addresses = '127.0.0.1'",
        f"port = {cfg.port}",
        f"unix_socket_directories = '{cfg.data_dir / 'pgdata'}'",
        "shared_preload_libraries = 'timescaledb'",
        "timescaledb.telemetry_level = off",
        "max_connections = 200",
        "shared_buffers = 512MB",
        "work_mem = 16MB",
        "max_wal_size = 4GB",
        "synchronous_commit = on",
        "log_min_messages = warning",
    ]
    if not cfg.durable:  # tests: throwaway data, faster
        lines += ["fsync = off", "full_page_writes = off"]
    return "\n".join(lines) + "\n"


def init_postgres(cfg: PostgresConfig) -> None:
    """Create the cluster (once) and write its configuration."""
    if not timescaledb_available():
        raise ServiceError(
            "the timescaledb extension is not installed; run scripts/install_timescaledb.sh"
        )
    user = _service_user("postgres")
    pgdata = cfg.data_dir / "pgdata"
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    _make_traversable(cfg.data_dir)
    if not (pgdata / "PG_VERSION").exists():
        pwfile = cfg.data_dir / "pg.pw"
        pwfile.write_text(cfg.password + "\n")
        _chown_tree(cfg.data_dir, user)
        pgdata.mkdir(mode=0o700, exist_ok=True)
        _chown_tree(pgdata, user)
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", cfg.user, f"--pwfile={pwfile}",
             "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--locale=C.UTF-8"],
            user=user, check=True, capture_output=True,
        )
        pwfile.unlink()
    conf = pgdata / "eldercare.conf"
    conf.write_text(_pg_conf(cfg))
    main_conf = pgdata / "postgresql.conf"
    include = "include_if_exists = 'eldercare.conf'\n"
    if include not in main_conf.read_text():
        with main_conf.open("a") as fh:
            fh.write(include)
    _chown_tree(pgdata, user)


def start_postgres(cfg: PostgresConfig, timeout: float = 60.0) -> ManagedProcess:
    """Start PostgreSQL in the foreground as our child and wait until it accepts logins."""
    import psycopg

    init_postgres(cfg)
    if port_open(cfg.port):
        raise ServiceError(f"port {cfg.port} is already in use; set ELDERCARE_PG_PORT")
    user = _service_user("postgres")
    proc = _spawn("postgres", [str(PG_BIN / "postgres"), "-D", str(cfg.data_dir / "pgdata")],
                  cfg.data_dir / "postgres.log", user, signal.SIGINT)

    def ready() -> bool:
        if not proc.alive():
            raise ServiceError(f"postgres exited; see {cfg.data_dir / 'postgres.log'}")
        try:
            with psycopg.connect(cfg.maintenance_url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    try:
        wait_for(ready, timeout, f"PostgreSQL on port {cfg.port}")
        _ensure_database(cfg)
        ensure_app_role(cfg)
    except BaseException:
        proc.stop()  # not left running unmanaged, holding the port against the next try
        raise
    return proc


def _ensure_database(cfg: PostgresConfig) -> None:
    import psycopg

    with psycopg.connect(cfg.maintenance_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (cfg.database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{cfg.database}"')


def ensure_app_role(cfg: PostgresConfig) -> None:
    """Create the application role, or bring it back to what it must be, on every start.

    Idempotent, so a data dir made before the role existed gains it on its next start (its
    grants come from migration 0017_app_role, which runs after this). The password is set
    each time from the data dir's secrets, so the two can never drift apart; the attributes
    are restated so a role changed by hand loses any power it should not have.
    """
    import psycopg
    from psycopg import sql

    attributes = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                         "INHERIT PASSWORD {}").format(sql.Literal(cfg.app_password))
    with psycopg.connect(cfg.maintenance_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                              (cfg.app_user,)).fetchone()
        verb = sql.SQL("ALTER ROLE") if exists else sql.SQL("CREATE ROLE")
        conn.execute(sql.SQL("{} {} {}").format(verb, sql.Identifier(cfg.app_user), attributes))
    if not exists:
        logger.info("created the application database role %s", cfg.app_user)


# --- Mosquitto --------------------------------------------------------------


@dataclass(frozen=True)
class BrokerQueue:
    """How much Mosquitto holds for one subscriber and how often it saves it (see
    docs/ingest.md, "What a broker crash can lose").

    Mosquitto 2.0 never refuses a publish because a subscriber's queue is full: it PUBACKs
    and silently drops. So the limits are sized to hold a database outage of `outage_s` at
    `rate` msg/s (plus the pipeline's receive window, which the broker does not count), with
    `message_bytes` of payload per message as a memory guard against bigger payloads.
    Persistence saves after `autosave_changes` queue changes (not every 30 s), so what a
    SIGKILL can lose is a count, whatever the rate.
    """

    outage_s: int = 600
    rate: int = 2_000
    message_bytes: int = 256
    autosave_changes: int = 10_000

    @property
    def max_messages(self) -> int:
        """`max_queued_messages`: the outage's worth of messages."""
        return self.outage_s * self.rate

    @property
    def max_bytes(self) -> int:
        """`max_queued_bytes`: payload bytes of those messages at `message_bytes` each."""
        return self.max_messages * self.message_bytes


@dataclass
class MosquittoConfig:
    """Where and how an embedded Mosquitto runs."""

    data_dir: Path
    port: int
    admin_user: str
    admin_password: str
    persistence: bool = True
    queue: BrokerQueue = BrokerQueue()


def dynsec_plugin() -> str:
    """Path of Mosquitto's dynamic-security plugin."""
    for candidate in DYNSEC_PLUGIN_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    raise ServiceError("mosquitto_dynamic_security.so not found; apt-get install mosquitto")


def _mosquitto_conf(cfg: MosquittoConfig, user: str | None) -> str:
    lines = [
        "per_listener_settings false",
        "allow_anonymous false",
        f"listener {cfg.port} 127.0.0.1",
        "set_tcp_nodelay true",
        "max_inflight_messages 1000",
        f"max_queued_messages {cfg.queue.max_messages}",
        f"max_queued_bytes {cfg.queue.max_bytes}",
        "max_packet_size 65536",
        f"plugin {dynsec_plugin()}",
        f"plugin_opt_config_file {cfg.data_dir / 'dynamic-security.json'}",
        # Device accounts, generated from the registry (gateway/device_accounts.py, record
        # 0006); the service accounts stay in the dynamic-security plugin above.
        f"password_file {cfg.data_dir / device_accounts.PASSWORD_FILE}",
        f"acl_file {cfg.data_dir / device_accounts.ACL_FILE}",
        f"pid_file {cfg.data_dir / device_accounts.PID_FILE}",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages false",
    ]
    if cfg.persistence:
        lines += ["persistence true", f"persistence_location {cfg.data_dir}/",
                  # Save after this many queued/dequeued messages (Mosquitto 2.0 writes
                  # the whole store each time; the count bounds what a SIGKILL loses).
                  "autosave_on_changes true",
                  f"autosave_interval {cfg.queue.autosave_changes}"]
    if user:
        lines.append(f"user {user}")
    return "\n".join(lines) + "\n"


def init_mosquitto(cfg: MosquittoConfig) -> Path:
    """Write the broker config and, once, the dynamic-security file with the admin account."""
    if shutil.which("mosquitto") is None:
        raise ServiceError("mosquitto is not installed; apt-get install mosquitto")
    user = _service_user("mosquitto")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    _make_traversable(cfg.data_dir)
    dynsec = cfg.data_dir / "dynamic-security.json"
    if not dynsec.exists():
        subprocess.run(
            ["mosquitto_ctrl", "dynsec", "init", str(dynsec), cfg.admin_user, cfg.admin_password],
            check=True, capture_output=True,
        )
    device_accounts.ensure_files(cfg.data_dir)
    conf = cfg.data_dir / "mosquitto.conf"
    conf.write_text(_mosquitto_conf(cfg, user))
    _chown_tree(cfg.data_dir, user)
    return conf


def start_mosquitto(cfg: MosquittoConfig, timeout: float = 20.0) -> ManagedProcess:
    """Start Mosquitto as our child and wait until it listens."""
    conf = init_mosquitto(cfg)
    if port_open(cfg.port):
        raise ServiceError(f"port {cfg.port} is already in use; set ELDERCARE_MQTT_PORT")
    proc = _spawn("mosquitto", ["mosquitto", "-c", str(conf)], cfg.data_dir / "mosquitto.log",
                  _service_user("mosquitto"), signal.SIGTERM)

    def ready() -> bool:
        if not proc.alive():
            raise ServiceError(f"mosquitto exited; see {cfg.data_dir / 'mosquitto.log'}")
        return port_open(cfg.port)

    try:
        wait_for(ready, timeout, f"Mosquitto on port {cfg.port}")
    except BaseException:
        proc.stop()  # not left running unmanaged, holding the port against the next try
        raise
    return proc

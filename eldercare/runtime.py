"""Resolve where the broker and database are: external URLs, or the embedded services."""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from eldercare.embedded import (
    BrokerQueue,
    ManagedProcess,
    MosquittoConfig,
    PostgresConfig,
    ensure_app_role,
    port_open,
    start_mosquitto,
    start_postgres,
)
from eldercare.settings import Settings
from gateway.broker_admin import BrokerAdmin
from gateway.device_accounts import DeviceAccounts
from kernel.endpoint import MqttEndpoint

logger = logging.getLogger(__name__)

PIPELINE_USER = "eldercare-pipeline"
ADMIN_USER = "eldercare-admin"


@dataclass(frozen=True)
class Runtime:
    """Effective connection details for this process."""

    database_url: str
    mqtt: MqttEndpoint
    mqtt_admin: MqttEndpoint
    jwt_secret: str
    embedded: bool
    data_dir: Path
    broker_dir: Path | None = None
    database_owner_url: str | None = None
    """The owner's URL (migrations); None: `database_url` is used for both (one role)."""

    @property
    def owner_url(self) -> str:
        """Where migrations run: the owner's URL, or the one URL when there is no other."""
        return self.database_owner_url or self.database_url

    def device_accounts(self) -> DeviceAccounts:
        """The broker's device account files (record 0006)."""
        return DeviceAccounts(self.broker_dir or self.data_dir / "mosquitto",
                              (self.mqtt.host, self.mqtt.port))

    def child_env(self) -> dict[str, str]:
        """Environment for a child `eldercare` process that must use exactly this runtime's
        broker, database (as the application role) and token key."""
        env = os.environ.copy()
        env.update({"ELDERCARE_DATABASE_URL": self.database_url,
                    "ELDERCARE_MQTT_URL": self.mqtt.url(),
                    "ELDERCARE_MQTT_ADMIN_URL": self.mqtt_admin.url(),
                    "ELDERCARE_JWT_SECRET": self.jwt_secret,
                    "ELDERCARE_DATA_DIR": str(self.data_dir)})
        # The children (pipeline, web app, jobs, simulators) never migrate: they do not
        # get the owner's password (the parent migrated before starting them).
        env.pop("ELDERCARE_DATABASE_OWNER_URL", None)
        return env

    def describe(self, broker: bool = False) -> str:
        """Where this runtime connects, without secrets: e.g. `database 127.0.0.1:15432/eldercare
        (embedded, data dir /srv/eldercare/data)`."""
        url = urlsplit(self.database_url)
        where = f"database {url.hostname}:{url.port or 5432}{url.path}"
        if broker:
            where += f" and broker {self.mqtt_admin.host}:{self.mqtt_admin.port}"
        mode = (f"embedded, data dir {self.data_dir}" if self.embedded
                else "external, from ELDERCARE_DATABASE_URL/ELDERCARE_MQTT_URL")
        return f"{where} ({mode})"


SECRET_KEYS = ("pg_password", "pg_app_password", "mqtt_admin_password",
               "mqtt_pipeline_password", "jwt_secret")
"""The generated secrets of the embedded services; `pg_app_password` (the application
role's, 0017_app_role) is added to the secrets of a data dir made before it existed."""


def _secrets(data_dir: Path) -> dict[str, str]:
    """Generated passwords of the embedded services (created once, mode 0600); a key missing
    from an older file is generated and the file rewritten, the existing values kept."""
    path = data_dir / "secrets.json"
    values: dict[str, str] = dict(json.loads(path.read_text())) if path.exists() else {}
    missing = [k for k in SECRET_KEYS if k not in values]
    if not missing:
        return values
    values.update({k: secrets.token_urlsafe(24) for k in missing})
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    return values


def resolve(settings: Settings) -> Runtime:
    """Work out the URLs and secrets this process should use."""
    data_dir = settings.data_dir
    if settings.embedded:
        sec = _secrets(data_dir)
        pg = _pg_config(settings, sec)
        return Runtime(
            database_url=pg.url, database_owner_url=pg.owner_url,
            mqtt=MqttEndpoint("127.0.0.1", settings.mqtt_port, PIPELINE_USER,
                              sec["mqtt_pipeline_password"]),
            mqtt_admin=MqttEndpoint("127.0.0.1", settings.mqtt_port, ADMIN_USER,
                                    sec["mqtt_admin_password"]),
            jwt_secret=settings.jwt_secret or sec["jwt_secret"],
            embedded=True, data_dir=data_dir, broker_dir=settings.broker_accounts_dir,
        )
    if not (settings.mqtt_url and settings.database_url):
        raise SystemExit("set both ELDERCARE_MQTT_URL and ELDERCARE_DATABASE_URL, or neither")
    if not settings.jwt_secret:
        raise SystemExit("ELDERCARE_JWT_SECRET is required with an external database")
    admin = settings.mqtt_admin_url or settings.mqtt_url
    return Runtime(settings.database_url, MqttEndpoint.from_url(settings.mqtt_url),
                   MqttEndpoint.from_url(admin), settings.jwt_secret, False, data_dir,
                   settings.broker_accounts_dir, settings.database_owner_url)


def _pg_config(settings: Settings, sec: dict[str, str]) -> PostgresConfig:
    return PostgresConfig(settings.data_dir / "postgres", settings.pg_port, sec["pg_password"],
                          sec["pg_app_password"])


def broker_queue(settings: Settings) -> BrokerQueue:
    """The embedded broker's queue limits and save cadence, from the settings."""
    return BrokerQueue(settings.mqtt_queue_outage_s, settings.mqtt_queue_rate,
                       settings.mqtt_queue_message_bytes, settings.mqtt_autosave_changes)


EmbeddedStarter = tuple[str, Callable[[], ManagedProcess]]


def embedded_starters(settings: Settings) -> list[EmbeddedStarter]:
    """How to start each embedded service that is not already running: (name, start).

    The supervisor of `serve`/`demo` calls the same function again to restart a service that
    crashed, so a restart writes the same configuration and waits for the same readiness.
    A service something else already runs on its port is not ours to start or restart.
    """
    sec = _secrets(settings.data_dir)
    starters: list[EmbeddedStarter] = []
    pg = _pg_config(settings, sec)
    if port_open(pg.port):
        logger.info("PostgreSQL already listening on %d; using it", pg.port)
    else:
        starters.append(("postgres", lambda: start_postgres(pg)))
    mq = _mosquitto_config(settings, sec)
    if port_open(mq.port):
        logger.info("Mosquitto already listening on %d; using it", mq.port)
    else:
        starters.append(("mosquitto", lambda: start_mosquitto(mq)))
    return starters


def _mosquitto_config(settings: Settings, sec: dict[str, str]) -> MosquittoConfig:
    return MosquittoConfig(settings.data_dir / "mosquitto", settings.mqtt_port, ADMIN_USER,
                           sec["mqtt_admin_password"], queue=broker_queue(settings))


def ensure_pipeline_account(settings: Settings) -> None:
    """Create (or update) the pipeline's broker account on the embedded broker."""
    sec = _secrets(settings.data_dir)
    with BrokerAdmin(MqttEndpoint("127.0.0.1", settings.mqtt_port, ADMIN_USER,
                                  sec["mqtt_admin_password"])) as admin:
        admin.ensure_service_account(PIPELINE_USER, sec["mqtt_pipeline_password"])


def ensure_database_role(settings: Settings) -> None:
    """Create or update the embedded database's application role (0017_app_role) on a
    PostgreSQL that was already running when we came (`start_postgres` does it for the ones
    we start), so an old data dir upgrades whoever started its server."""
    ensure_app_role(_pg_config(settings, _secrets(settings.data_dir)))


def start_embedded(settings: Settings) -> list[ManagedProcess]:
    """Start the embedded PostgreSQL and Mosquitto (unless already running); return children."""
    children = [start() for _name, start in embedded_starters(settings)]
    ensure_database_role(settings)
    ensure_pipeline_account(settings)
    return children

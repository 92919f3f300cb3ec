"""Platform settings: environment variables (ELDERCARE_*), an optional TOML file, defaults."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from alerts.config import AlertSettings
from alerts.notify.settings import NotifySettings

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything an operator can configure. Unset URLs mean: use the embedded services."""

    model_config = SettingsConfigDict(env_prefix="ELDERCARE_", extra="ignore",
                                      env_nested_delimiter="__")

    mqtt_url: str | None = Field(
        default=None,
        description="mqtt://user:password@host:port of an external broker (pipeline account).",
    )
    mqtt_admin_url: str | None = Field(
        default=None,
        description="mqtt://user:password@host:port of the dynamic-security admin account.",
    )
    database_url: str | None = Field(
        default=None, description="postgresql://... of an external PostgreSQL+TimescaleDB: "
                                  "the application role every process connects as."
    )
    database_owner_url: str | None = Field(
        default=None,
        description="postgresql://... of the role that owns the tables, for migrations only; "
                    "unset: database_url is used for both (then the audit trail's REVOKE "
                    "protects only if that role is not the owner; docs/admin-guide.md).")
    data_dir: Path = Field(default=REPO_ROOT / "data", description="Embedded services' data.")
    broker_accounts_dir: Path | None = Field(
        default=None,
        description="Folder of the broker's device password_file/acl_file and mosquitto.pid "
                    "(record 0006); default: the embedded broker's, <data_dir>/mosquitto.")
    mqtt_port: int = Field(default=18830, description="Embedded Mosquitto port (loopback).")
    pg_port: int = Field(default=15432, description="Embedded PostgreSQL port (loopback).")
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    sites: list[str] = Field(default_factory=list, description="Owned sites; [] = all.")
    jwt_secret: str | None = Field(default=None, description="Token signing key (generated).")
    token_ttl_minutes: int = 12 * 60
    display_token_minutes: int = Field(
        default=60, ge=1,
        description="Life of a wall display's access token; the screen renews it by itself "
                    "with its display secret (docs/dashboard.md, Wall displays).")
    auth_totp_required_roles: list[Literal["admin", "duty_officer", "care_worker"]] = Field(
        default_factory=list,
        description="Roles that must log in with a TOTP second factor; until enrolled, such "
                    "a person can only reach My account.")
    web_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For is "
                    "trusted; [] = trust none (the client is the TCP peer).")
    web_streams_per_account: int = Field(
        default=5, ge=1, description="Open live alert streams per account; the oldest closes.")
    web_streams_per_address: int = Field(
        default=50, ge=1,
        description="Open live alert streams per client address (a care home's shared network "
                    "is one); beyond it an account's own oldest stream there closes, or the "
                    "new one is refused.")
    mqtt_queue_outage_s: int = Field(
        default=600, ge=1,
        description="Embedded broker: seconds of database outage its queue for the pipeline "
                    "holds at mqtt_queue_rate without dropping (docs/ingest.md).")
    mqtt_queue_rate: int = Field(
        default=2_000, ge=1, description="Embedded broker: msg/s the queue is sized for.")
    mqtt_queue_message_bytes: int = Field(
        default=256, ge=1,
        description="Embedded broker: payload bytes per queued message the byte limit allows.")
    mqtt_autosave_changes: int = Field(
        default=10_000, ge=1,
        description="Embedded broker: save its store after this many queue changes; bounds "
                    "what a broker crash loses (docs/ingest.md).")
    ingest_spool: bool = Field(
        default=True,
        description="Spool batches to a local file while the database is down, and "
                    "acknowledge them once on disk (docs/ingest.md).")
    ingest_spool_max_bytes: int = Field(
        default=10 * 2**30, ge=1,
        description="Disk budget of the spool (encoded rows, ~60 B a reading); when reached "
                    "the pipeline stops acknowledging and the broker queues.")
    ingest_spool_min_free_bytes: int = Field(
        default=2**30, ge=0,
        description="The spool also stops growing when the data dir's disk has less free.")
    ingest_write_timeout_s: float = Field(
        default=30.0, gt=0,
        description="A batch write the database has not answered in this long is given up "
                    "and spooled (a frozen server must not stop acknowledgements).")
    ingest_batch_rows: int = Field(default=5000, ge=1)
    ingest_batch_ms: int = Field(default=200, ge=1)
    registry_refresh_s: float = Field(default=5.0, gt=0)
    demo_homes: int = Field(default=24, ge=1)
    raw_retention_days: int = Field(default=90, ge=1,
                                    description="Days of raw telemetry kept; rollups are kept.")
    audit_retention_days: int = Field(
        default=180, ge=1,
        description="Days of audit trail kept (PIPL / graded protection: at least 180); the "
                    "database keeps at least its own floor (audit_policy, 180 days) whatever "
                    "this says (docs/admin-guide.md, \"Database roles\").")
    alerts: AlertSettings = Field(default_factory=AlertSettings,
                                  description="Alert thresholds and escalation ([alerts] in TOML).")
    notify: NotifySettings = Field(default_factory=NotifySettings,
                                   description="Notification channels ([notify] in TOML).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order: explicit arguments, environment, settings file (ELDERCARE_SETTINGS_FILE)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("ELDERCARE_SETTINGS_FILE")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)

    @property
    def embedded(self) -> bool:
        """True when the platform manages its own broker and database."""
        return self.mqtt_url is None and self.database_url is None


@lru_cache(maxsize=1)
def get_settings(**overrides: Any) -> Settings:
    """The process-wide settings (cached)."""
    return Settings(**overrides)

"""HTTP-edge data shapes: enums for validated filters and the response models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.model import AlertStatus, Severity
from eldercare.accounts import Role
from gateway.schema import DeviceType

# Alert types are open-ended (rules add new ones), so they are validated by shape only.
ALERT_TYPE_PATTERN = r"^[a-z0-9_]{1,32}$"


class _Out(BaseModel):
    """Base for response models."""

    model_config = ConfigDict(frozen=True)


class UserOut(_Out):
    """The logged-in person."""

    id: int
    username: str
    full_name: str
    role: Role
    site_id: str | None


class TokenOut(_Out):
    """OAuth2 token response, plus who logged in."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (OAuth2 token type, not a secret)
    expires_in: int = Field(description="Seconds until the token expires.")
    role: Role
    site_id: str | None
    username: str
    full_name: str


class DeviceOut(_Out):
    """A resident's device and its last known state."""

    id: str
    type: DeviceType
    online: bool | None = Field(description="Null until the device has reported its status.")
    battery: int | None = Field(description="Percent; null when unknown.")
    last_seen: datetime | None


class ResidentOut(_Out):
    """A resident in scope, with devices and the number of open alerts."""

    id: int
    site_id: str
    full_name: str
    address: str | None
    open_alerts: int = Field(description="Alerts with status 'open' (not yet acknowledged).")
    devices: list[DeviceOut]


class AlertOut(_Out):
    """One alert as listed."""

    id: int
    resident_id: int
    resident_name: str
    site_id: str
    device_id: str | None
    type: str
    severity: Severity
    status: AlertStatus
    opened_at: datetime = Field(description="Event (device) time of the trigger.")
    created_at: datetime
    last_seen: datetime
    count: int
    assigned_to: int | None
    acknowledged_by: int | None
    acknowledged_at: datetime | None
    resolved_by: int | None
    resolved_at: datetime | None
    outcome: str | None
    note: str | None


class AlertHistoryOut(_Out):
    """One entry of an alert's append-only history."""

    id: int
    at: datetime
    action: str
    actor_id: int | None
    actor: str
    status: str = Field(description="Alert status after this action (free text in the DB).")
    note: str | None


class AlertDetailOut(AlertOut):
    """An alert with its details and history, oldest entry first."""

    details: dict[str, Any]
    history: list[AlertHistoryOut]


class HealthOut(_Out):
    """Liveness of the web process and reachability of the database."""

    status: str
    database: bool


VitalsSource = Literal["raw", "1m", "1d"]


class VitalsPoint(_Out):
    """One time bucket of bed-sensor vitals; averages are null when nothing was measured."""

    t: datetime = Field(description="Start of the bucket.")
    heart_rate: float | None = Field(description="Average beats per minute.")
    respiration_rate: float | None = Field(description="Average breaths per minute.")
    movement: float | None = Field(description="Average movement level.")
    occupied_fraction: float | None = Field(description="Share of readings with the bed "
                                                        "occupied, 0 to 1.")
    samples: int = Field(description="Raw readings in the bucket.")


class VitalsOut(_Out):
    """Bucketed vitals of one resident over [from, to)."""

    resident_id: int
    from_: datetime = Field(alias="from")
    to: datetime
    bucket_seconds: int
    source: VitalsSource = Field(description="raw: bed_telemetry; 1m: per-minute rollup; "
                                             "1d: per-day summaries (local days).")
    points: list[VitalsPoint]

"""The internal live alert bus: pipelines publish alert events on MQTT the moment a trigger is
raised (before, and independent of, the database), and web-app processes relay them to SSE.

Topic: `eldercare/internal/v1/alerts/{site}`, QoS 1, not retained. Only the platform's service
account may publish or subscribe there; device accounts are confined to their own topics.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from alerts.model import AlertStatus, AlertTrigger, Severity
from gateway.schema import INTERNAL_TOPIC_ROOT

BUS_ROOT = f"{INTERNAL_TOPIC_ROOT}/v1/alerts"
BUS_FILTER = f"{BUS_ROOT}/+"

BusAction = Literal["raised", "stored", "cancelled", "cleared"]


def bus_topic(site: str) -> str:
    """Topic on which a site's alert events travel."""
    return f"{BUS_ROOT}/{site}"


class AlertEvent(BaseModel):
    """One alert change as seen by the pipeline (`alert_id` is None until stored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    uid: str
    alert_id: int | None = None
    action: BusAction
    site: str
    resident_id: int
    device_id: str | None
    type: str
    severity: Severity
    status: AlertStatus = AlertStatus.OPEN
    at: datetime  # event (device) time
    emitted_at: datetime
    stored: bool = False

    @classmethod
    def raised(cls, trig: AlertTrigger) -> AlertEvent:
        """The event for a trigger the moment it is raised (not yet stored)."""
        return cls(uid=trig.uid, action="raised", site=trig.site,
                   resident_id=trig.resident_id, device_id=trig.device_id, type=trig.type,
                   severity=Severity(trig.severity), at=trig.at, emitted_at=datetime.now(UTC))


def encode_event(event: AlertEvent) -> bytes:
    """Wire form of an alert event."""
    return event.model_dump_json().encode()


def decode_event(payload: bytes) -> AlertEvent:
    """Parse an alert event; raises pydantic.ValidationError on a bad payload."""
    return AlertEvent.model_validate_json(payload)

"""Alert vocabulary shared by detector, store, notifications and the web app.

These enums mirror the CHECK constraints of the `alerts`, `alert_escalations`,
`notification_channels` and `notification_outbox` tables (migration 0004).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How loud an alert is (alerts.severity)."""

    CRITICAL = "critical"
    URGENT = "urgent"
    HIGH = "high"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is louder: critical 4 ... info 0."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 4, Severity.URGENT: 3, Severity.HIGH: 2,
                  Severity.WARNING: 1, Severity.INFO: 0}


def louder(a: Severity, b: Severity) -> Severity:
    """The louder of two severities."""
    return a if a.rank >= b.rank else b


class AlertType(StrEnum):
    """What happened (alerts.type). Simulator incidents use the same names."""

    SOS = "sos"
    FALL = "fall"
    BED_EXIT_NO_RETURN = "bed_exit_no_return"
    HEART_RATE_LOW = "heart_rate_low"
    HEART_RATE_HIGH = "heart_rate_high"
    RESPIRATION_LOW = "respiration_low"
    RESPIRATION_HIGH = "respiration_high"
    APNEA = "apnea"
    NOT_UP = "not_up"
    LONG_ABSENCE = "long_absence"
    DEVICE_OFFLINE = "device_offline"
    LOW_BATTERY = "low_battery"
    TEST_OVERDUE = "test_overdue"
    ROUTINE_CHANGE = "routine_change"  # a daily feature drifted (alerts/learning/routine.py)


class AlertStatus(StrEnum):
    """Life cycle of an alert (alerts.status): open -> acknowledged -> resolved, or cancelled."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)


class Outcome(StrEnum):
    """How an alert ended (alerts.outcome)."""

    FALSE_ALARM = "false_alarm"
    ASSISTED_AT_HOME = "assisted_at_home"
    AMBULANCE_CALLED = "ambulance_called"
    HOSPITAL = "hospital"
    OTHER = "other"
    CANCELLED_BY_RESIDENT = "cancelled_by_resident"  # set by the platform only


# What a care worker may choose when resolving.
RESOLVE_OUTCOMES = tuple(o for o in Outcome if o is not Outcome.CANCELLED_BY_RESIDENT)


class Audience(StrEnum):
    """Who an escalation step (or a notification) is for."""

    ASSIGNED = "assigned"            # the care worker the alert is assigned to
    SITE_WORKERS = "site_workers"    # every on-duty care worker of the site
    DUTY_OFFICERS = "duty_officers"  # the site's duty officers
    FAMILY = "family"                # the resident's family contacts
    SITE_GROUP = "site_group"        # the site's group channels (WeCom / DingTalk robots)


class NotificationKind(StrEnum):
    """Why a notification is sent (notification_outbox.kind)."""

    ALERT = "alert"
    ESCALATION = "escalation"
    ALL_CLEAR = "all_clear"
    CANCELLED = "cancelled"
    COMMAND = "command"  # a device command (sos_ack) sent through the outbox


class DeliveryStatus(StrEnum):
    """How delivering one notification went, as people read it: the outbox status, with
    'pending' told apart by whether it was tried already."""

    QUEUED = "queued"        # pending, not tried yet (e.g. waiting for quiet hours to end)
    RETRYING = "retrying"    # pending after a failed attempt
    DELIVERED = "delivered"  # sent: the receiver accepted it
    FAILED = "failed"        # gave up (a permanent error, or out of attempts)
    SKIPPED = "skipped"      # not sent: the alert finished first, or the channel went away

    @classmethod
    def of(cls, outbox_status: str, attempts: int) -> DeliveryStatus:
        """The delivery status of an outbox row."""
        if outbox_status == "pending":
            return cls.RETRYING if attempts > 0 else cls.QUEUED
        return {"sent": cls.DELIVERED, "failed": cls.FAILED}.get(outbox_status, cls.SKIPPED)


class ChannelKind(StrEnum):
    """How a notification travels (notification_channels.kind / outbox.channel)."""

    WEBPUSH = "webpush"
    EMAIL = "email"
    WEBHOOK = "webhook"
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    MQTT = "mqtt"  # device commands only


def new_uid() -> str:
    """A fresh alert uid (known before the alert is stored, so the live feed can use it)."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class AlertTrigger:
    """Detector decision: open an alert of `type` for a resident, or repeat the open one."""

    resident_id: int
    site: str
    device_id: str | None
    type: AlertType
    severity: Severity
    at: datetime  # event (device) time
    source_seq: int | None = None
    details: dict[str, Any] | None = None
    uid: str = field(default_factory=new_uid)


@dataclass(frozen=True, slots=True)
class AlertClear:
    """Detector decision: the condition behind a resident's open alert of `type` has cleared."""

    resident_id: int
    site: str
    type: AlertType
    at: datetime  # event time the condition cleared (after hysteresis)
    # PLATFORM_RESTART: the alert was caused by the platform's own stop, not by the device
    # (the store resolves it automatically); None: an ordinary clear.
    reason: str | None = None


PLATFORM_RESTART = "platform_restart"


@dataclass(frozen=True, slots=True)
class AlertCancel:
    """Detector decision: the resident pressed cancel for their SOS (`in_window`: within 30 s)."""

    resident_id: int
    site: str
    device_id: str
    at: datetime
    in_window: bool
    source_seq: int | None = None


Decision = AlertTrigger | AlertClear | AlertCancel

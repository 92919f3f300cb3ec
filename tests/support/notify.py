"""Builders for the notification senders' tests: one rendered alert message and VAPID keys."""

from __future__ import annotations

from datetime import UTC, datetime

from py_vapid import Vapid02

from alerts.model import AlertStatus, Audience, NotificationKind, Severity
from alerts.notify.messages import AlertInfo, render_alert

MESSAGE = render_alert(
    AlertInfo(id=42, site_id="north", site_tz="UTC", resident_id=7,
              resident_name="Margaret Smith", address="12 Elm Road", type="fall",
              severity=Severity.CRITICAL, status=AlertStatus.OPEN,
              opened_at=datetime(2026, 3, 5, 14, 3, tzinfo=UTC)),
    NotificationKind.ALERT, Audience.SITE_WORKERS)


def new_vapid() -> Vapid02:
    """A fresh VAPID key pair (the platform's Web Push identity)."""
    vapid = Vapid02()
    vapid.generate_keys()
    return vapid

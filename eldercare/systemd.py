"""systemd readiness and watchdog notifications (sd_notify), for the unit files in
deploy/systemd/.

`Type=notify` units wait for READY=1 before they count a process as started; `WatchdogSec=`
units restart a process that stops sending WATCHDOG=1. Both go through cysystemd (pinned in
pyproject.toml), and only when systemd asked for them (`NOTIFY_SOCKET` set): run by hand or
under `eldercare serve`, nothing is sent and nothing is logged.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def _send(state: str) -> None:
    if not os.environ.get("NOTIFY_SOCKET"):
        return
    from cysystemd.daemon import Notification, notify

    kinds = {"READY=1": Notification.READY, "WATCHDOG=1": Notification.WATCHDOG,
             "STOPPING=1": Notification.STOPPING}
    try:
        notify(kinds[state])
    except OSError as exc:  # a notification lost is not a reason to stop the service
        logger.warning("sd_notify %s failed: %s", state, exc)


def ready() -> None:
    """Tell systemd the process has started (its unit is `Type=notify`)."""
    _send("READY=1")


def watchdog() -> None:
    """Tell systemd the process is healthy; call it at least twice per WatchdogSec."""
    _send("WATCHDOG=1")


def stopping() -> None:
    """Tell systemd a clean stop has begun (so a slow stop is not taken for a hang)."""
    _send("STOPPING=1")


def watchdog_interval_s(default: float = 5.0) -> float:
    """How often to send WATCHDOG=1: a third of the unit's WatchdogSec (WATCHDOG_USEC)."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    return int(usec) / 3e6 if usec.isdigit() and int(usec) > 0 else default

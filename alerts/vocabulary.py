"""The words for alerts, defined once: what the pages, the API's family view and the
notifications call each alert type, severity, status and outcome.

Every text is English, marked with `N_` for translation (kernel.i18n): the pages get them
from the server (GET /api/v1/vocabulary, dashboard/vocabulary.py), notifications and the
family view use them from here. Nothing else may spell them out again.

Three registers, because the same thing is said differently depending on where it appears:
- a *label* names it on its own (a card's title, a list entry): "Fall detected";
- *words* say it inside a sentence of a notification: "... possible fall, severity ...";
- *family* words say it to a relative, without care-team jargon: "a carer helped at home".
"""

from __future__ import annotations

from alerts.model import (
    AlertStatus,
    AlertType,
    ChannelKind,
    DeliveryStatus,
    NotificationKind,
    Outcome,
    Severity,
)
from kernel.i18n import N_

TYPE_LABELS: dict[str, str] = {
    AlertType.SOS: N_("SOS call"),
    AlertType.FALL: N_("Fall detected"),
    AlertType.BED_EXIT_NO_RETURN: N_("Not back in bed"),
    AlertType.HEART_RATE_LOW: N_("Heart rate low"),
    AlertType.HEART_RATE_HIGH: N_("Heart rate high"),
    AlertType.RESPIRATION_LOW: N_("Breathing slow"),
    AlertType.RESPIRATION_HIGH: N_("Breathing fast"),
    AlertType.APNEA: N_("Breathing pause"),
    AlertType.NOT_UP: N_("Not up this morning"),
    AlertType.LONG_ABSENCE: N_("Long absence"),
    AlertType.DEVICE_OFFLINE: N_("Device offline"),
    AlertType.LOW_BATTERY: N_("Low battery"),
    AlertType.TEST_OVERDUE: N_("Button test overdue"),
    AlertType.ROUTINE_CHANGE: N_("Change in routine"),
}

TYPE_WORDS: dict[str, str] = {
    AlertType.SOS: N_("SOS call (help button pressed)"),
    AlertType.FALL: N_("possible fall"),
    AlertType.BED_EXIT_NO_RETURN: N_("out of bed and not back"),
    AlertType.HEART_RATE_LOW: N_("heart rate too low"),
    AlertType.HEART_RATE_HIGH: N_("heart rate too high"),
    AlertType.RESPIRATION_LOW: N_("breathing too slow"),
    AlertType.RESPIRATION_HIGH: N_("breathing too fast"),
    AlertType.APNEA: N_("breathing pause in bed"),
    AlertType.NOT_UP: N_("not up this morning"),
    AlertType.LONG_ABSENCE: N_("away from bed for a long time"),
    AlertType.DEVICE_OFFLINE: N_("a sensor is offline"),
    AlertType.LOW_BATTERY: N_("a sensor battery is low"),
    AlertType.TEST_OVERDUE: N_("call button test overdue"),
    AlertType.ROUTINE_CHANGE: N_("a change in the daily routine"),
}

# Loudest first: the order the pages sort alerts in.
SEVERITY_LABELS: dict[str, str] = {
    Severity.CRITICAL: N_("Critical"),
    Severity.URGENT: N_("Urgent"),
    Severity.HIGH: N_("High"),
    Severity.WARNING: N_("Warning"),
    Severity.INFO: N_("Info"),
}

STATUS_LABELS: dict[str, str] = {
    AlertStatus.OPEN: N_("Open"),
    AlertStatus.ACKNOWLEDGED: N_("Acknowledged"),
    AlertStatus.RESOLVED: N_("Resolved"),
    AlertStatus.CANCELLED: N_("Cancelled"),
}

# An alert's state as a family member reads it (a resolved alert: FAMILY_RESOLVED with the
# family words of its outcome).
FAMILY_STATUS_WORDS: dict[str, str] = {
    AlertStatus.OPEN: N_("The care team has been alerted"),
    AlertStatus.ACKNOWLEDGED: N_("A carer is responding"),
    AlertStatus.CANCELLED: N_("Cancelled by the resident"),
}
FAMILY_RESOLVED = N_("Resolved: {outcome}")

# In the order the resolve form offers them (RESOLVE_OUTCOMES; the last one is the platform's).
OUTCOME_LABELS: dict[str, str] = {
    Outcome.FALSE_ALARM: N_("False alarm"),
    Outcome.ASSISTED_AT_HOME: N_("Helped at home"),
    Outcome.AMBULANCE_CALLED: N_("Ambulance called"),
    Outcome.HOSPITAL: N_("Taken to hospital"),
    Outcome.OTHER: N_("Other (describe in the note)"),
    Outcome.CANCELLED_BY_RESIDENT: N_("Cancelled by the resident"),
}

OUTCOME_WORDS: dict[str, str] = {
    Outcome.FALSE_ALARM: N_("false alarm"),
    Outcome.ASSISTED_AT_HOME: N_("helped at home"),
    Outcome.AMBULANCE_CALLED: N_("ambulance called"),
    Outcome.HOSPITAL: N_("taken to hospital"),
    Outcome.OTHER: N_("closed"),
    Outcome.CANCELLED_BY_RESIDENT: N_("cancelled by the resident"),
}

FAMILY_OUTCOME_WORDS: dict[str, str] = {
    Outcome.FALSE_ALARM: N_("it was a false alarm"),
    Outcome.ASSISTED_AT_HOME: N_("a carer helped at home"),
    Outcome.AMBULANCE_CALLED: N_("an ambulance was called"),
    Outcome.HOSPITAL: N_("taken to hospital"),
    Outcome.OTHER: N_("closed by the care team"),
    Outcome.CANCELLED_BY_RESIDENT: N_("cancelled by the resident"),
}

# Notifications, as the "Sent notifications" page names them (dashboard/channels/sent.py).
CHANNEL_LABELS: dict[str, str] = {
    ChannelKind.EMAIL: N_("E-mail"),
    ChannelKind.WEBPUSH: N_("Phone (web push)"),
    ChannelKind.WECOM: N_("WeCom group robot"),
    ChannelKind.DINGTALK: N_("DingTalk group robot"),
    ChannelKind.WEBHOOK: N_("Webhook"),
}

NOTIFICATION_KIND_LABELS: dict[str, str] = {
    NotificationKind.ALERT: N_("Alert"),
    NotificationKind.ESCALATION: N_("Escalation"),
    NotificationKind.ALL_CLEAR: N_("All clear"),
    NotificationKind.CANCELLED: N_("Cancelled"),
}

# A notification's delivery state: the outbox status, with 'pending' split by whether it was
# tried already (DeliveryStatus in alerts.model).
DELIVERY_LABELS: dict[str, str] = {
    DeliveryStatus.QUEUED: N_("Queued"),
    DeliveryStatus.RETRYING: N_("Retrying"),
    DeliveryStatus.DELIVERED: N_("Delivered"),
    DeliveryStatus.FAILED: N_("Failed"),
    DeliveryStatus.SKIPPED: N_("Not sent"),
}

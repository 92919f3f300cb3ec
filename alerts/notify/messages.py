"""What a notification says: plain words a care worker or a family member understands.

Messages are rendered when they are queued and stored as the outbox payload (`Message`), so the
dispatcher needs no further lookups. Links are paths (`/alerts/42`); senders make them absolute
with `NotifySettings.public_url` when it is set. The words for alert types and outcomes come
from the one vocabulary (alerts.vocabulary).

Every renderer takes the recipient's language (`lang`, a BCP 47 tag; English by default):
each template is an English text marked with `N_` and translated with `kernel.i18n.translate`
*before* its placeholders are filled (`_t(N_("... {x}")).format(x=...)`), since the catalog
holds the text with the placeholders, never a filled-in sentence. A language without a
catalog falls back to English.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from alerts.model import AlertStatus, Audience, NotificationKind, Outcome, Severity
from alerts.vocabulary import OUTCOME_WORDS, TYPE_WORDS
from kernel.i18n import DEFAULT_LANGUAGE, N_, translate
from kernel.sites import site_time

logger = logging.getLogger(__name__)

BRAND = "Eldercare"  # every chat message contains it (DingTalk 'custom keyword' security)
# Site group channels (WeCom, DingTalk, a site's e-mail or webhook) have no person whose
# language could be asked: they are written to in their site's language (sites.language;
# alerts.notify.outbox.Languages), English for a site without one.

# Namespace of the name-based (UUIDv5) idempotency keys: the direct path's and the fallback.
KEY_NAMESPACE = uuid.UUID("7663a6ec-83c1-435b-ab94-15c3fe1eb289")


class Message(BaseModel):
    """One rendered notification (the outbox payload of every non-command row)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: NotificationKind
    title: str
    body: str
    link: str | None = None  # path in the web app, e.g. /alerts/42
    severity: Severity | None = None
    alert_id: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)  # machine-readable facts / command
    # The recipient's language, for the words senders add around title and body ("Open:",
    # "Ref:"); payloads queued before it existed are English.
    lang: str = DEFAULT_LANGUAGE
    # The same for every attempt to deliver this one message (outbox row), different for any
    # other: receivers drop a repeat by it (delivery is at least once). Set by the dispatcher
    # from notification_outbox.idempotency_key and by the direct path; see `key()`.
    idempotency_key: str | None = None

    def key(self) -> str:
        """The idempotency key: the one given, else a UUIDv5 of the content, so that even a
        message sent without one (a test, a one-off tool) is keyed the same on a repeat."""
        if self.idempotency_key:
            return self.idempotency_key
        # English leaves `lang` out, so a message's key is what it was before it had one.
        skip = {"idempotency_key"} | ({"lang"} if self.lang == DEFAULT_LANGUAGE else set())
        content = self.model_dump_json(exclude=skip)
        return str(uuid.uuid5(KEY_NAMESPACE, content))

    def with_key(self, key: str) -> Message:
        """This message carrying `key` as its idempotency key."""
        return self.model_copy(update={"idempotency_key": key})

    def url(self, public_url: str | None) -> str | None:
        """The link, absolute when the web app's public address is known."""
        if self.link is None:
            return None
        return f"{public_url}{self.link}" if public_url else self.link

    def text(self, public_url: str | None) -> str:
        """Title, body and link as plain text (chat robots, e-mail)."""
        url = self.url(public_url)
        link = url and translate(N_("Open: {url}"), self.lang).format(url=url)
        return "\n".join(part for part in (self.title, self.body, link) if part)


@dataclass(frozen=True, slots=True)
class AlertInfo:
    """The facts about an alert that notifications mention."""

    id: int
    site_id: str
    site_tz: str
    resident_id: int
    resident_name: str
    address: str | None
    type: str
    severity: Severity
    status: AlertStatus
    opened_at: datetime
    assigned_to: int | None = None
    outcome: str | None = None
    finished_at: datetime | None = None

    @property
    def cancelled(self) -> bool:
        """True when the resident cancelled (status cancelled or that outcome)."""
        return (self.status is AlertStatus.CANCELLED
                or self.outcome == Outcome.CANCELLED_BY_RESIDENT)


def zone(name: str | None) -> ZoneInfo:
    """The named time zone, or UTC (logged) when it is unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r; using UTC", name)
        return ZoneInfo("UTC")


def type_words(alert_type: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """An alert type in words, in `lang`."""
    words = TYPE_WORDS.get(alert_type)
    return translate(words, lang) if words else alert_type.replace("_", " ")


def local_time(at: datetime, tz_name: str | None) -> str:
    """"2026-12-07 03:12": `at` in the site's zone, 24-hour (kernel.sites.site_time, issue
    14's rule for every time people read; the same in every language). An unknown zone is
    shown in UTC and says so."""
    return site_time(at, tz_name)


def alert_link(alert_id: int) -> str:
    """Path of an alert's page in the web app."""
    return f"/alerts/{alert_id}"


def _who(info: AlertInfo) -> str:
    return f"{info.resident_name} ({info.address})" if info.address else info.resident_name


def _severity(severity: Severity, lang: str) -> str:
    """The severity as notifications spell it (lower case; upper case in titles)."""
    return translate(_SEVERITY_WORDS[severity], lang)


_SEVERITY_WORDS: dict[Severity, str] = {
    Severity.CRITICAL: N_("critical"), Severity.URGENT: N_("urgent"), Severity.HIGH: N_("high"),
    Severity.WARNING: N_("warning"), Severity.INFO: N_("info"),
}


def _facts(info: AlertInfo) -> dict[str, Any]:
    return {"alert_id": info.id, "site": info.site_id, "resident_id": info.resident_id,
            "resident": info.resident_name, "address": info.address, "type": info.type,
            "severity": info.severity.value, "status": info.status.value,
            "opened_at": info.opened_at.isoformat(), "outcome": info.outcome,
            "finished_at": info.finished_at.isoformat() if info.finished_at else None}


def _call_to_action(kind: NotificationKind, audience: Audience) -> str:
    if audience is Audience.FAMILY:
        return N_("The care team has been alerted. We will tell you when it has been dealt "
                  "with.")
    if kind is NotificationKind.ESCALATION:
        return N_("Nobody has acknowledged this alert yet. Please respond now.")
    return N_("Please open the alert and acknowledge it.")


def render_alert(info: AlertInfo, kind: NotificationKind, audience: Audience,
                 lang: str = DEFAULT_LANGUAGE) -> Message:
    """The message that tells someone about an open alert (first notice or escalation), in
    the recipient's language."""
    what = type_words(info.type, lang)
    severity = _severity(info.severity, lang)
    title_template = (N_("Still open - {severity}: {what} - {resident}")
                      if kind is NotificationKind.ESCALATION
                      else N_("{severity}: {what} - {resident}"))
    title = translate(title_template, lang).format(
        severity=severity.upper(), what=what, resident=info.resident_name)
    body = translate(N_("{who}: {what}, severity {severity}, at {when}. {action}"), lang).format(
        who=_who(info), what=what, severity=severity,
        when=local_time(info.opened_at, info.site_tz),
        action=translate(_call_to_action(kind, audience), lang))
    return Message(kind=kind, title=title, body=body, link=alert_link(info.id),
                   severity=info.severity, alert_id=info.id, data=_facts(info), lang=lang)


def render_clear(info: AlertInfo, lang: str = DEFAULT_LANGUAGE) -> Message:
    """The all-clear (or 'cancelled by the resident') for a finished alert, in the
    recipient's language."""
    what = type_words(info.type, lang)
    when = local_time(info.finished_at or info.opened_at, info.site_tz)
    facts = {"what": what, "resident": info.resident_name, "who": _who(info), "when": when}
    if info.cancelled:
        kind = NotificationKind.CANCELLED
        title = translate(N_("Cancelled: {what} - {resident}"), lang).format(**facts)
        body = translate(N_("{who} cancelled the {what} at {when}. No action is needed."),
                         lang).format(**facts)
    else:
        kind = NotificationKind.ALL_CLEAR
        outcome = translate(OUTCOME_WORDS.get(info.outcome or "", N_("resolved")), lang)
        title = translate(N_("All clear: {what} - {resident}"), lang).format(**facts)
        body = translate(N_("The {what} alert for {who} was closed at {when}: {outcome}."),
                         lang).format(**facts, outcome=outcome)
    return Message(kind=kind, title=title, body=body, link=alert_link(info.id),
                   severity=info.severity, alert_id=info.id, data=_facts(info), lang=lang)


def render_direct(*, site: str, resident_id: int, resident_name: str | None, alert_type: str,
                  severity: Severity, at: datetime, tz_name: str | None,
                  alert_id: int | None, lang: str = DEFAULT_LANGUAGE) -> Message:
    """The message sent straight from the pipeline while the database is unavailable, to a
    site's group channels (in the site's language, cached while the database was up)."""
    what = type_words(alert_type, lang)
    who = resident_name or translate(N_("resident #{id}"), lang).format(id=resident_id)
    words = _severity(severity, lang)
    title = translate(N_("{severity}: {what} - {resident}"), lang).format(
        severity=words.upper(), what=what, resident=who)
    body = translate(N_("{who} (site {site}): {what}, severity {severity}, at {when}. Sent "
                        "directly because the platform database is unavailable; alert details "
                        "may appear in the app later."), lang).format(
        who=who, site=site, what=what, severity=words, when=local_time(at, tz_name))
    return Message(kind=NotificationKind.ALERT, title=title, body=body,
                   link=alert_link(alert_id) if alert_id else None, severity=severity,
                   alert_id=alert_id, lang=lang,
                   data={"site": site, "resident_id": resident_id, "resident": resident_name,
                         "type": alert_type, "severity": severity.value,
                         "opened_at": at.isoformat(), "direct": True})

"""HTTP-edge data shapes: enums for validated filters and the response models."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Form
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from alerts.learning.merge import changes_of
from alerts.learning.routine import explain
from alerts.model import AlertStatus, Outcome, Severity
from alerts.vocabulary import FAMILY_OUTCOME_WORDS, FAMILY_RESOLVED, FAMILY_STATUS_WORDS
from gateway.schema import DeviceType
from kernel.accounts import MAX_USERNAME, Role
from kernel.i18n import DEFAULT_LANGUAGE, N_, Said, translate

# Alert types are open-ended (rules add new ones), so they are validated by shape only.
ALERT_TYPE_PATTERN = r"^[a-z0-9_]{1,32}$"


# --- text and times the API accepts ----------------------------------------------------------
#
# Every free text a request carries goes through one of these types, so a NUL byte (which
# PostgreSQL refuses in text and jsonb), a lone surrogate (which cannot be encoded as UTF-8) or a
# control character (which could forge a log line) is a 422 naming the field, never a 500 from
# deep inside a query or a hash function.

_LINE_BREAKS = frozenset("\n\r\t")
_NEVER = frozenset({"Cs"})  # lone surrogates: not encodable as UTF-8
_NOT_IN_A_LINE = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _refuse(value: str, categories: frozenset[str], allowed: frozenset[str], what: str) -> str:
    for index, char in enumerate(value):
        if char in allowed:
            continue
        if char == "\x00" or unicodedata.category(char) in categories:
            raise ValueError(Said(N_("{what} must not contain the control or invalid "
                                     "character U+{code} (at position {index})"),
                                  what=Said(what), code=f"{ord(char):04X}", index=index))
    return value


def single_line(value: str) -> str:
    """Text on one line: no control characters (tab and line breaks included), no NUL."""
    return _refuse(value, _NOT_IN_A_LINE, frozenset(), N_("this text"))


def multi_line(value: str) -> str:
    """Free text such as a note: line breaks and tabs allowed, other control characters not."""
    return _refuse(value, _NOT_IN_A_LINE, _LINE_BREAKS, N_("this text"))


def secret_text(value: str) -> str:
    """A password or signing secret: any character a person can type, but no NUL and nothing
    that cannot be encoded as UTF-8 (a secret's characters are its business, not ours)."""
    return _refuse(value, _NEVER, frozenset(), N_("this value"))


MAX_PASSWORD = 1024
MAX_NOTE = 2000
MAX_SECRET = 256
MAX_URL = 2048
MAX_KEY = 200
MAX_TIMEZONE = 64

# The length comes first, so a huge value is refused before it is scanned.
Username = Annotated[str, Field(min_length=1, max_length=MAX_USERNAME),
                     AfterValidator(single_line)]
Password = Annotated[str, Field(max_length=MAX_PASSWORD), AfterValidator(secret_text)]
NoteText = Annotated[str, Field(max_length=MAX_NOTE), AfterValidator(multi_line)]
SecretText = Annotated[str, Field(min_length=1, max_length=MAX_SECRET),
                       AfterValidator(secret_text)]
UrlText = Annotated[str, Field(max_length=MAX_URL), AfterValidator(single_line)]
KeyText = Annotated[str, Field(max_length=MAX_KEY), AfterValidator(single_line)]
_PHONE = re.compile(r"\A\+?[0-9][0-9 ()-]{2,31}\Z")


def _phone(value: str) -> str:
    if not _PHONE.match(value):
        raise ValueError(N_("not a phone number: use digits, spaces, ( ) and -, optionally "
                         "a leading +"))
    return value


PhoneText = Annotated[str, Field(max_length=32, description="Digits, spaces, ( ) and -, "
                                                            "optionally a leading +."),
                      AfterValidator(_phone)]
"""One rule for every phone number (residents, their contacts, staff): what a phone can dial
and a tel: link can carry."""
ZoneText = Annotated[str, Field(max_length=MAX_TIMEZONE), AfterValidator(single_line)]
ScopeText = Annotated[str, Field(max_length=1000), AfterValidator(single_line)]

# Times a request may name. Python's datetime ends at year 9999 and PostgreSQL's ranges differ
# from it, so a time near either end overflows in arithmetic (`to - 24 h`, a time-zone
# conversion). Nothing this platform stores is outside these bounds.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def bounded_time(value: datetime) -> datetime:
    """The time in UTC (naive means UTC), if it lies in [EARLIEST, LATEST)."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(Said(N_("must be between {earliest} and {latest} (UTC)"),
                              earliest=f"{EARLIEST:%Y-%m-%d}", latest=f"{LATEST:%Y-%m-%d}"))
    return utc


BoundedTime = Annotated[datetime, AfterValidator(bounded_time)]


class LoginForm:
    """The OAuth2 password-flow form (RFC 6749 §4.3), with the API's text rules applied."""

    def __init__(self, username: Annotated[Username, Form()],
                 password: Annotated[Password, Form(json_schema_extra={"format": "password"})],
                 grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
                 scope: Annotated[ScopeText, Form()] = "",
                 totp: Annotated[str, Form(pattern=r"^[0-9]{0,8}$", description=(
                     "The one-time code of an account with a second factor (else empty)."
                 ))] = "") -> None:
        self.grant_type = grant_type
        self.totp = totp
        self.username = username
        self.password = password
        self.scopes = scope.split()


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
    must_change_password: bool = Field(
        default=False, description="Only /me, /me/password and /me/totp work until it is "
                                   "changed (a temporary password).")
    totp_enrolment_required: bool = Field(
        default=False, description="The role requires a second factor not yet enrolled: "
                                   "only /me, /me/password and /me/totp work until it is.")
    role: Role
    site_id: str | None
    username: str
    language: str = Field(default="en", description="The language the pages and this person's "
                                                    "notifications use (BCP 47).")
    language_chosen: bool = Field(default=False, description="Chosen by the person (the pages "
                                  "then follow it); else it follows their browser.")
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
    escalates_at: datetime | None = Field(
        default=None, description="While open: when the next escalation step is due unless "
                                  "acknowledged (alerts.escalation); null otherwise.")
    assigned_name: str | None = Field(default=None, description="Who it is assigned to.")
    acknowledged_name: str | None = Field(default=None, description="Who acknowledged it.")
    site_timezone: str = Field(
        default="UTC", description="IANA zone of the resident's site: pages show the alert's "
                                   "times in it (never the browser's zone).")


class AlertHistoryOut(_Out):
    """One entry of an alert's append-only history."""

    id: int
    at: datetime
    action: str
    actor_id: int | None
    actor: str
    status: str = Field(description="Alert status after this action (free text in the DB).")
    note: str | None


class RoutineChangeOut(_Out):
    """One feature's change that a routine-change alert carries (issue 15: an open alert
    carries every feature that changed), explained in the reader's language."""

    feature: str = Field(description="The daily feature (alerts/learning/features.py).")
    direction: str = Field(description="'up' or 'down': the worrying way it moved.")
    day: str = Field(description="The resident's local day (YYYY-MM-DD) that completed it.")
    explanation: str = Field(description="E.g. 'Night exits 4.2 vs usual 1.1 over the last "
                                         "5 days', in the reader's language.")


def routine_changes(details: dict[str, Any] | None, lang: str = DEFAULT_LANGUAGE
                    ) -> list[RoutineChangeOut]:
    """The changes a routine-change alert's details hold, oldest first, each explained in
    `lang` from its numbers (translated before it is filled)."""
    out = []
    for c in changes_of(details):
        text = explain(c, lambda s: translate(s, lang)) or str(c.get("explanation") or "")
        out.append(RoutineChangeOut(feature=str(c.get("feature")),
                                    direction=str(c.get("direction", "")),
                                    day=str(c.get("day", "")), explanation=text))
    return out


class AlertDetailOut(AlertOut):
    """An alert with its details and history, oldest entry first."""

    details: dict[str, Any]
    history: list[AlertHistoryOut]
    routine_changes: list[RoutineChangeOut] = Field(
        default_factory=list,
        description="A routine-change alert: every feature that changed while it was open, "
                    "oldest first, explained in the reader's language; empty otherwise.")


# --- what a family member sees -----------------------------------------------------------
#
# Family accounts follow their relative's alerts, but staff notes, staff names and user ids,
# assignments and escalation steps are the care team's internal record (a note may be about
# another resident; "assigned to carer1 (user 3, ...)" names staff and load). Family members
# get what happened, when and how it ended, in plain words, built from a whitelist of fields:
# a new internal column stays invisible to them by default.

# History actions a family member sees (anything else, e.g. assignment, notification and
# escalation steps, is internal), in their words.
_FAMILY_EVENTS = {
    "opened": N_("The care team was alerted"),
    "repeated": N_("The alarm went off again"),
    "acknowledged": N_("A carer is responding"),
    "resolved": N_("Closed by the care team"),
    "cancelled by resident": N_("Cancelled by the resident"),
    "condition cleared": N_("The reading is back to normal"),
}


def family_summary(status: AlertStatus, outcome: str | None,
                   lang: str = DEFAULT_LANGUAGE) -> str:
    """The alert's state in a family member's words (alerts.vocabulary), in `lang`."""
    if status in FAMILY_STATUS_WORDS:
        return translate(FAMILY_STATUS_WORDS[status], lang)
    return translate(FAMILY_RESOLVED, lang).format(outcome=_family_outcome(outcome, lang))


def _family_outcome(outcome: str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    return translate(FAMILY_OUTCOME_WORDS.get(outcome or "", FAMILY_OUTCOME_WORDS[Outcome.OTHER]),
                     lang)


class FamilyAlertOut(_Out):
    """An alert as a family member sees it: what, when, state and outcome; no staff data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    resident_id: int
    resident_name: str
    site_id: str
    type: str
    severity: Severity
    status: AlertStatus
    opened_at: datetime
    created_at: datetime
    last_seen: datetime
    count: int
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    outcome: str | None
    summary: str = Field(description='In plain words, e.g. "A carer is responding".')


class FamilyHistoryOut(_Out):
    """One step of an alert's story, as a family member sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    status: str
    event: str = Field(description='e.g. "The care team was alerted", "A carer is responding".')


class FamilyAlertDetailOut(FamilyAlertOut):
    """A family member's view of one alert with its story, oldest first."""

    history: list[FamilyHistoryOut]


def family_alert(alert: AlertOut, lang: str = DEFAULT_LANGUAGE) -> FamilyAlertOut:
    """The family-facing view of an alert (whitelisted fields plus a summary in `lang`)."""
    fields = {name: getattr(alert, name) for name in FamilyAlertOut.model_fields
              if name != "summary"}
    return FamilyAlertOut(**fields, summary=family_summary(alert.status, alert.outcome, lang))


def family_history(alert: AlertOut, history: list[AlertHistoryOut],
                   lang: str = DEFAULT_LANGUAGE) -> list[FamilyHistoryOut]:
    """The family-visible steps of an alert's history (no actors, notes or assignments), in
    `lang`."""
    steps = []
    for entry in history:
        event = _FAMILY_EVENTS.get(entry.action)
        if event is None:
            continue
        if entry.action == "resolved" and alert.outcome in FAMILY_OUTCOME_WORDS:
            event = translate(FAMILY_RESOLVED, lang).format(
                outcome=_family_outcome(alert.outcome, lang))
        else:
            event = translate(event, lang)
        steps.append(FamilyHistoryOut(at=entry.at, status=entry.status, event=event))
    return steps


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

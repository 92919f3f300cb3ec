"""Request and response models of the ledger routes: every field is checked on its own, so a
bad value is a 422 naming that field, never a 500 from the database's CHECK constraints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from dashboard.models import NoteText, PhoneText, ResidentOut, ZoneText, multi_line, single_line
from dashboard.vocabulary import Language
from kernel.i18n import N_, Said
from kernel.ledger import (
    MAX_ADDRESS,
    MAX_BIRTH_YEAR,
    MAX_FULL_NAME,
    MIN_BIRTH_YEAR,
    ConsentKind,
    LivingSituation,
    ResidentStatus,
    Risk,
    Sex,
)
from kernel.sites import is_valid_timezone

MAX_CONTACTS = 10
MAX_CONSENTS = 20

ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(single_line)]
OptText = Annotated[str, Field(max_length=200), AfterValidator(single_line)]
DoorCode = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(single_line)]
BirthYear = Annotated[int, Field(ge=MIN_BIRTH_YEAR, le=MAX_BIRTH_YEAR)]
FullName = Annotated[str, Field(min_length=1, max_length=MAX_FULL_NAME),
                     AfterValidator(single_line)]
AddressText = Annotated[str, Field(max_length=MAX_ADDRESS), AfterValidator(multi_line)]


def _iana(value: str) -> str:
    if not is_valid_timezone(value):
        raise ValueError(N_("must be an IANA time zone such as 'Asia/Shanghai'"))
    return value


TimeZone = Annotated[ZoneText, AfterValidator(_iana)]


def _no_repeats(values: list[Risk]) -> list[Risk]:
    if len(set(values)) != len(values):
        raise ValueError(N_("a risk category is listed twice"))
    return values


Risks = Annotated[list[Risk], Field(max_length=len(Risk)), AfterValidator(_no_repeats)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactIn(_In):
    """An emergency contact; the list order is the calling order."""

    name: ShortText
    relation: OptText = ""
    phone: PhoneText
    notified: bool = Field(True, description="Whether this contact is told of alerts.")


class ContactOut(ContactIn):
    """An emergency contact with its place in the calling order (1 first)."""

    position: int


class ConsentIn(_In):
    """A consent record: what was agreed or refused, by whom, on which day, how recorded."""

    kind: ConsentKind
    granted: bool
    given_by: ShortText = Field(description="Who consented, e.g. the resident or a guardian.")
    given_on: date
    method: ShortText = Field(description="How it was recorded, e.g. 'signed paper form'.")


class ConsentOut(ConsentIn):
    """A stored consent record."""

    id: int
    recorded_at: datetime


class LedgerFields(_In):
    """The ledger fields a create or a PATCH may carry; in a PATCH, only the fields sent
    change (null clears an optional field)."""

    full_name: FullName | None = None
    sex: Sex | None = None
    birth_year: BirthYear | None = None
    birth_date: date | None = None
    address: AddressText | None = None
    access_notes: NoteText | None = Field(None, description="How to get in, e.g. key safe.")
    door_code: DoorCode | None = Field(None, description="Write-only: read it with "
                                                         "POST .../reveal-access.")
    phone: PhoneText | None = None
    living_situation: LivingSituation | None = None
    risks: Risks | None = None
    care_level: OptText | None = None
    health_notes: NoteText | None = None
    gp: OptText | None = Field(None, description="General practitioner and how to reach them.")
    status: ResidentStatus | None = None
    contacts: Annotated[list[ContactIn], Field(max_length=MAX_CONTACTS)] | None = Field(
        None, description="Emergency contacts in calling order; replaces the stored list.")
    new_consents: Annotated[list[ConsentIn], Field(max_length=MAX_CONSENTS)] | None = Field(
        None, description="Consent records to add (records are never rewritten).")

    @model_validator(mode="after")
    def _birth_agrees(self) -> LedgerFields:
        if (self.birth_date is not None and self.birth_year is not None
                and self.birth_date.year != self.birth_year):
            raise ValueError(N_("birth_year and birth_date disagree"))
        for name in ("full_name", "status", "risks"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(Said(N_("{name} cannot be null"), name=name))
        return self

    def column_changes(self) -> dict[str, Any]:
        """The residents columns this request sets, as database values."""
        out: dict[str, Any] = {}
        for name in self.model_fields_set - {"contacts", "new_consents"}:
            value = getattr(self, name)
            if name == "risks":
                value = [str(r) for r in value]
            out[name] = str(value) if isinstance(value, str) else value
        if self.birth_date is not None and out.get("birth_year") is None:
            out["birth_year"] = self.birth_date.year  # a date implies its year
        return out


class ResidentCreate(LedgerFields):
    """A new resident: site and name are required."""

    site_id: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")]
    full_name: ShortText


class ResidentListOut(ResidentOut):
    """A resident as the ledger lists them (staff only)."""

    status: ResidentStatus
    risks: list[Risk]
    sex: Sex | None
    birth_year: int | None
    living_situation: LivingSituation | None
    phone: str | None
    care_level: str | None


class ResidentDetailOut(ResidentListOut):
    """The whole ledger entry (staff only), without the door code."""

    birth_date: date | None
    access_notes: str | None
    has_door_code: bool
    health_notes: str | None
    gp: str | None
    active: bool
    created_at: datetime
    updated_at: datetime
    contacts: list[ContactOut]
    consents: list[ConsentOut]
    site_timezone: str = Field(description="The IANA zone of the resident's site: pages "
                                           "show the resident's times in it.")


class AccessOut(BaseModel):
    """How to get in, door code included (each reveal is its own request, so it is logged)."""

    resident_id: int
    access_notes: str | None
    door_code: str | None


class NoteIn(_In):
    """A note on a resident's timeline."""

    body: Annotated[NoteText, Field(min_length=1)]


class NoteOut(BaseModel):
    """A stored note."""

    id: int
    resident_id: int
    author: str
    body: str
    created_at: datetime


class TimelineEntry(BaseModel):
    """One thing that happened to a resident: an alert, a device change, a note or a visit."""

    at: datetime
    kind: str = Field(description="alert, device_added, device_removed, note or visit.")
    ref: str = Field(description="The alert id, device id, note id or visit id.")
    summary: str
    detail: str | None = None


class AlertSettingsOut(BaseModel):
    """A resident's alert-threshold override and the settings in effect with it."""

    resident_id: int
    override: dict[str, Any] | None
    effective: dict[str, Any]


class SiteIn(_In):
    """A new site."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")]
    name: ShortText
    timezone: TimeZone = "UTC"
    address: NoteText | None = None
    language: Language = Field("en", description="The language the site's group channels "
                               "(chat robots, a group e-mail) are written to in.")


class SitePatch(_In):
    """Changes to a site: only the fields sent change."""

    name: ShortText | None = None
    timezone: TimeZone | None = None
    address: NoteText | None = None
    language: Language | None = None


class SiteOut(BaseModel):
    """A site."""

    id: str
    name: str
    timezone: str
    address: str | None
    language: str = Field(description="The language of the site's group channels (BCP 47).")
    created_at: datetime


class ChannelTestOut(BaseModel):
    """The result of sending a test message through a channel."""

    channel_id: int
    sent: bool
    detail: str

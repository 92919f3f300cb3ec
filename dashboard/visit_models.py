"""Request and response shapes of the visits API (dashboard.visits, dashboard.visit_plans).

Family members get `FamilyVisitOut` only: a whitelist of four fields (date, end, a sentence),
so a new internal column (notes, names, the checklist) stays invisible to them by default.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dashboard.models import MAX_NOTE, NoteText
from dashboard.params import MAX_ID
from kernel.i18n import N_, Said
from kernel.visits import MAX_INTERVAL_DAYS, MIN_INTERVAL_DAYS, VISIT_CHECKLIST, VisitStatus


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class VisitOut(_Out):
    """A visit as staff see it."""

    id: int
    resident_id: int
    resident_name: str
    site_id: str
    alert_id: int | None = Field(description='Set when made from an alert ("go and check").')
    status: VisitStatus
    due_on: date = Field(description="Local date at the site the visit is due.")
    overdue: bool = Field(description="Still open and the due date has passed at the site.")
    assigned_to: int | None
    assigned_name: str | None
    created_by: int | None
    created_at: datetime
    arrived_at: datetime | None
    left_at: datetime | None
    findings: str
    checklist: dict[str, bool] = Field(description="Checklist item -> ticked "
                                                   "(items: vocabulary `visit_checklist`).")
    follow_up: bool
    follow_up_note: str | None


class FamilyVisitOut(_Out):
    """A visit in a family member's words: when, and whether all was well."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    started_at: datetime
    ended_at: datetime | None
    summary: str = Field(description='e.g. "A carer visited; all was well."')


class DueOut(_Out):
    """A resident's next visit by the plan, and the open visit (if any) meeting it."""

    resident_id: int
    resident_name: str
    site_id: str
    address: str | None
    interval_days: int
    last_visit_at: datetime | None = Field(description="When the last completed visit ended.")
    last_visit_on: date | None = Field(description="Its date at the site.")
    due_on: date
    overdue: bool
    days_overdue: int
    open_visit_id: int | None
    open_visit_assigned_to: int | None
    open_visit_assignee: str | None


class SitePlanOut(_Out):
    """A site's default visit intervals."""

    site_id: str
    interval_days: int = Field(description="Days between visits (residents not at high risk).")
    high_risk_interval_days: int = Field(
        description="Days between visits of high-risk residents (see docs/dashboard.md).")


class SitePlanIn(BaseModel):
    """New default intervals of a site."""

    model_config = ConfigDict(extra="forbid")

    interval_days: int = Field(strict=True, ge=MIN_INTERVAL_DAYS, le=MAX_INTERVAL_DAYS)
    high_risk_interval_days: int = Field(strict=True, ge=MIN_INTERVAL_DAYS, le=MAX_INTERVAL_DAYS)


class ResidentPlanOut(_Out):
    """A resident's plan: their own interval (null: the site's), and when they are due."""

    resident_id: int
    interval_days: int | None = Field(description="The resident's own interval; null means "
                                                  "the site's default.")
    site_interval_days: int
    effective_interval_days: int
    last_visit_at: datetime | None
    due_on: date
    overdue: bool


class ResidentPlanIn(BaseModel):
    """A resident's own interval, or null to follow the site's default."""

    model_config = ConfigDict(extra="forbid")

    interval_days: int | None = Field(strict=True, ge=MIN_INTERVAL_DAYS, le=MAX_INTERVAL_DAYS)


def _checklist(value: dict[str, bool] | None) -> dict[str, bool] | None:
    if value is None:
        return None
    unknown = sorted(set(value) - set(VISIT_CHECKLIST))
    if unknown:
        raise ValueError(Said(N_("unknown checklist item(s) {unknown}; use {known}"),
                              unknown=", ".join(unknown), known=", ".join(VISIT_CHECKLIST)))
    return value


class VisitIn(BaseModel):
    """A new visit: for whom, assigned to whom (care workers: themselves), due when."""

    model_config = ConfigDict(extra="forbid")

    resident_id: int = Field(ge=1, le=MAX_ID)
    assigned_to: int | None = Field(default=None, ge=1, le=MAX_ID, description=(
        "A care worker or duty officer of the resident's site; care workers may only "
        "assign themselves (the default for them)."))
    due_on: date | None = Field(default=None, description="Default: the date the plan gives.")


class AlertVisitIn(BaseModel):
    """Optional body of "go and check": who goes (default: the caller if a care worker,
    else whoever the alert is assigned to)."""

    model_config = ConfigDict(extra="forbid")

    assigned_to: int | None = Field(default=None, ge=1, le=MAX_ID)


class VisitPatch(BaseModel):
    """Record a visit: arrive, leave, cancel, and what was found. Absent fields stay."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["arrive", "leave", "cancel"] | None = Field(
        default=None, description="arrive: now on site; leave: visit done; cancel.")
    assigned_to: int | None = Field(default=None, ge=1, le=MAX_ID)
    findings: NoteText | None = Field(default=None,
                                      description=f"At most {MAX_NOTE} characters.")
    checklist: dict[str, bool] | None = None
    follow_up: bool | None = Field(default=None, strict=True)
    follow_up_note: NoteText | None = None

    @field_validator("checklist")
    @classmethod
    def _check(cls, value: dict[str, bool] | None) -> dict[str, bool] | None:
        return _checklist(value)

    @field_validator("findings", "follow_up_note")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

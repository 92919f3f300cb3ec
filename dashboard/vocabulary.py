"""GET /api/v1/vocabulary: the platform's words for the pages, in one language.

The pages never spell out what an alert type, a severity, a status, an outcome, a role or a
device is called: they read it from this document, built from the one definition in Python
(alerts.vocabulary, kernel.accounts.ROLE_LABELS, DEVICE_LABELS below) and translated with
kernel.i18n. The pages get it embedded in their HTML (`<script type="application/json"
id="vocabulary">`, a data block the CSP allows, so no extra round trip can fail at start-up);
this route serves the same document to anything else, e.g. a page switching language.

Any logged-in role may read it, like every API route but login and health (the pages, which
carry it embedded, need no token for it). The words are the same for every role; family
members' wording is part of the document (`family`), so the family view needs no second
request.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from alerts.learning.features import DEVICE_FEATURES, PERSON_FEATURES
from alerts.model import RESOLVE_OUTCOMES, AlertStatus, Outcome
from alerts.vocabulary import (
    CHANNEL_LABELS,
    DELIVERY_LABELS,
    FAMILY_OUTCOME_WORDS,
    FAMILY_STATUS_WORDS,
    NOTIFICATION_KIND_LABELS,
    OUTCOME_LABELS,
    SEVERITY_LABELS,
    STATUS_LABELS,
    TYPE_LABELS,
)
from dashboard.auth import CurrentUser
from dashboard.homes import HOME_STATE_LABELS
from gateway.schema import DeviceType
from kernel.accounts import ROLE_LABELS
from kernel.audit import ACTION_LABELS as AUDIT_ACTION_LABELS
from kernel.audit import OUTCOME_LABELS as AUDIT_OUTCOME_LABELS
from kernel.i18n import DEFAULT_LANGUAGE, N_, translate
from kernel.ledger import (
    CONSENT_LABELS,
    LIVING_LABELS,
    RESIDENT_STATUS_LABELS,
    RISK_LABELS,
    SEX_LABELS,
)
from kernel.roster import DUTY_OVERRIDE_LABELS
from kernel.visits import VISIT_CHECKLIST, VISIT_STATUS_LABELS

# kernel.i18n.LANGUAGES as a type, so the API schema lists the languages (tested equal).
Language = Literal["en", "zh-CN"]

DEVICE_LABELS: dict[str, str] = {
    DeviceType.BED_SENSOR: N_("Bed sensor"),
    DeviceType.CALL_BUTTON: N_("Call button"),
}


# The platform's parts on the duty screen's status strip (static/parts.js): the pipeline
# (gateway.presence part "pipeline", one per instance), the database (the live feed's own
# check) and notifications (the "jobs" process, which runs the escalation runner and the
# notification dispatcher).
PLATFORM_PART_LABELS: dict[str, str] = {
    "pipeline": N_("Pipeline"),
    "database": N_("Database"),
    "notifications": N_("Notifications"),
}


class Term(BaseModel):
    """One value of an enumeration and what it is called."""

    model_config = ConfigDict(frozen=True)

    value: str = Field(description="The value in the API and the database, e.g. `fall`.")
    label: str = Field(description='What the pages call it, e.g. "Fall detected".')


class StateTerm(Term):
    """An alert status or outcome, with the words a family member reads."""

    family: str | None = Field(description='In a family member\'s words, e.g. "A carer is '
                                           'responding"; null where there are none.')


class OutcomeTerm(StateTerm):
    """An outcome; `choosable` when a care worker may pick it when resolving."""

    choosable: bool


class VocabularyOut(BaseModel):
    """Every enumeration the pages show, in order (severities loudest first, outcomes in the
    order the resolve form offers them)."""

    model_config = ConfigDict(frozen=True)

    lang: str
    alert_types: list[Term]
    severities: list[Term]
    statuses: list[StateTerm]
    outcomes: list[OutcomeTerm]
    roles: list[Term]
    device_types: list[Term]
    audit_actions: list[Term]
    audit_outcomes: list[Term]
    duty_overrides: list[Term]
    visit_statuses: list[Term]
    visit_checklist: list[Term] = Field(description="The visit checklist, in the form's "
                                                    "order (kernel/visits.py).")
    risks: list[Term] = Field(description="Risk categories of the resident ledger.")
    living_situations: list[Term]
    sexes: list[Term]
    resident_statuses: list[Term]
    consent_kinds: list[Term]
    home_states: list[Term] = Field(description="A home's state on the wall screen's tiles, "
                                              "in order of precedence (dashboard/homes.py).")
    platform_parts: list[Term] = Field(description="The parts on the duty screen's status "
                                                   "strip.")
    channel_kinds: list[Term] = Field(description="Notification channels (e-mail, robots...).")
    notification_kinds: list[Term] = Field(description="Why a notification was sent.")
    delivery_statuses: list[Term] = Field(description="How delivering a notification went.")
    daily_features: list[Term] = Field(description="A resident's daily person features "
                                                   "(alerts/learning/features.py: the daily "
                                                   "routine chart, routine change, the digest).")
    device_features: list[Term] = Field(description="The daily features of the sensor's "
                                                    "health, shown apart from the person's.")


def vocabulary(lang: str = DEFAULT_LANGUAGE) -> VocabularyOut:
    """The document in `lang`."""

    def terms(labels: dict[str, str]) -> list[Term]:
        return [Term(value=str(v), label=translate(label, lang)) for v, label in labels.items()]

    def family(words: str | None) -> str | None:
        return translate(words, lang) if words else None

    return VocabularyOut(
        lang=lang,
        alert_types=terms(TYPE_LABELS),
        severities=terms(SEVERITY_LABELS),
        statuses=[StateTerm(value=s, label=translate(STATUS_LABELS[s], lang),
                            family=family(FAMILY_STATUS_WORDS.get(s)))
                  for s in AlertStatus],
        outcomes=[OutcomeTerm(value=o, label=translate(OUTCOME_LABELS[o], lang),
                              family=family(FAMILY_OUTCOME_WORDS[o]),
                              choosable=o in RESOLVE_OUTCOMES)
                  for o in Outcome],
        roles=terms(ROLE_LABELS),
        duty_overrides=terms(DUTY_OVERRIDE_LABELS),
        device_types=terms(DEVICE_LABELS),
        audit_actions=terms(AUDIT_ACTION_LABELS),
        audit_outcomes=terms(AUDIT_OUTCOME_LABELS),
        visit_statuses=terms(VISIT_STATUS_LABELS),
        visit_checklist=terms(VISIT_CHECKLIST),
        risks=terms(RISK_LABELS),
        living_situations=terms(LIVING_LABELS),
        sexes=terms(SEX_LABELS),
        resident_statuses=terms(RESIDENT_STATUS_LABELS),
        consent_kinds=terms(CONSENT_LABELS),
        home_states=terms(HOME_STATE_LABELS),
        platform_parts=terms(PLATFORM_PART_LABELS),
        channel_kinds=terms(CHANNEL_LABELS),
        notification_kinds=terms(NOTIFICATION_KIND_LABELS),
        delivery_statuses=terms(DELIVERY_LABELS),
        daily_features=terms({f.name: f.label for f in PERSON_FEATURES}),
        device_features=terms({f.name: f.label for f in DEVICE_FEATURES}),
    )


router = APIRouter(tags=["vocabulary"])


@router.get("/vocabulary", response_model=VocabularyOut)
async def get_vocabulary(
        _user: CurrentUser,
        lang: Annotated[Language, Query(description="Language (BCP 47).")] = "en",
) -> VocabularyOut:
    """The names of alert types, severities, statuses, outcomes, roles and device types in
    `lang`, for any role."""
    return vocabulary(lang)

"""The resident ledger's words and SQL (电子台账, issue 13), shared by the web API and the CLI.

The enumerations are defined once here with their labels (marked with `N_` for translation);
the vocabulary document carries them to the pages. The SQL is plain text with named
parameters, so the asynchronous API (dashboard.ledger) and the synchronous CLI
(eldercare.admin.ledger) run the very same statements.
"""

from __future__ import annotations

from enum import StrEnum

from psycopg import sql

from kernel.i18n import N_


class Sex(StrEnum):
    """A resident's sex as recorded in the ledger."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class LivingSituation(StrEnum):
    """Who the resident lives with: living alone is itself a risk the visits plan follows."""

    ALONE = "alone"
    WITH_SPOUSE = "with_spouse"
    WITH_FAMILY = "with_family"


class Risk(StrEnum):
    """Risk categories of the care programmes (失能, 失智, 高龄, 独居/孤寡, 空巢)."""

    DISABLED = "disabled"
    DEMENTIA = "dementia"
    VERY_OLD = "very_old"
    ALONE = "alone"
    EMPTY_NEST = "empty_nest"


class ResidentStatus(StrEnum):
    """Where the resident is in their care: only `discharged` stops monitoring."""

    ACTIVE = "active"
    IN_HOSPITAL = "in_hospital"
    DISCHARGED = "discharged"


class ConsentKind(StrEnum):
    """What a consent record is about."""

    MONITORING = "monitoring"
    FAMILY_NOTIFICATIONS = "family_notifications"


SEX_LABELS: dict[str, str] = {
    Sex.FEMALE: N_("Female"),
    Sex.MALE: N_("Male"),
    Sex.OTHER: N_("Other"),
}
LIVING_LABELS: dict[str, str] = {
    LivingSituation.ALONE: N_("Lives alone"),
    LivingSituation.WITH_SPOUSE: N_("Lives with spouse"),
    LivingSituation.WITH_FAMILY: N_("Lives with family"),
}
RISK_LABELS: dict[str, str] = {
    Risk.DISABLED: N_("Disabled (失能)"),
    Risk.DEMENTIA: N_("Dementia (失智)"),
    Risk.VERY_OLD: N_("Very old (高龄)"),
    Risk.ALONE: N_("Alone / no family (独居/孤寡)"),
    Risk.EMPTY_NEST: N_("Empty nest (空巢)"),
}
RESIDENT_STATUS_LABELS: dict[str, str] = {
    ResidentStatus.ACTIVE: N_("At home (active)"),
    ResidentStatus.IN_HOSPITAL: N_("In hospital"),
    ResidentStatus.DISCHARGED: N_("Discharged"),
}
CONSENT_LABELS: dict[str, str] = {
    ConsentKind.MONITORING: N_("Monitoring"),
    ConsentKind.FAMILY_NOTIFICATIONS: N_("Family notifications"),
}

# Limits of the ledger's values, defined once: the web form and API (dashboard.ledger.models)
# and the spreadsheet import (gateway.bulk_import) both check them, so a row the import
# accepts is one the form would accept too, and the edges are the same on both paths.
MIN_BIRTH_YEAR = 1880
MAX_BIRTH_YEAR = 2100
MAX_FULL_NAME = 200
MAX_ADDRESS = 500

# Ledger columns a PATCH may set, in the order the detail shows them (the door code is not
# among them as a readable column: it is written like the others but read only by reveal).
EDITABLE = ("full_name", "sex", "birth_year", "birth_date", "address", "access_notes",
            "door_code", "phone", "living_situation", "risks", "care_level", "health_notes",
            "gp", "status")

DETAIL_COLUMNS = ("id", "site_id", "full_name", "sex", "birth_year", "birth_date", "address",
                  "access_notes", "phone", "living_situation", "risks", "care_level",
                  "health_notes", "gp", "status", "active", "created_at", "updated_at")

SELECT_DETAIL = sql.SQL("SELECT {cols}, door_code IS NOT NULL FROM residents r "
                        "WHERE r.id = %(id)s").format(
    cols=sql.SQL(", ").join(sql.Identifier("r", c) for c in DETAIL_COLUMNS))

SELECT_CONTACTS = ("SELECT position, name, relation, phone, notified FROM resident_contacts "
                   "WHERE resident_id = %(id)s ORDER BY position")
DELETE_CONTACTS = "DELETE FROM resident_contacts WHERE resident_id = %(id)s"
INSERT_CONTACT = ("INSERT INTO resident_contacts (resident_id, position, name, relation, phone, "
                  "notified) VALUES (%(id)s, %(position)s, %(name)s, %(relation)s, %(phone)s, "
                  "%(notified)s)")

SELECT_CONSENTS = ("SELECT id, kind, granted, given_by, given_on, method, recorded_at "
                   "FROM resident_consents WHERE resident_id = %(id)s ORDER BY recorded_at, id")
INSERT_CONSENT = ("INSERT INTO resident_consents (resident_id, kind, granted, given_by, "
                  "given_on, method, recorded_by) VALUES (%(id)s, %(kind)s, %(granted)s, "
                  "%(given_by)s, %(given_on)s, %(method)s, %(recorded_by)s)")

SELECT_DOOR = "SELECT access_notes, door_code FROM residents WHERE id = %(id)s"

INSERT_RESIDENT = ("INSERT INTO residents (site_id, full_name) VALUES (%(site)s, %(full_name)s) "
                   "RETURNING id")


def update_statement(changes: dict[str, object]) -> tuple[sql.Composed, dict[str, object]]:
    """The UPDATE setting `changes` (keys from EDITABLE) on resident %(id)s; `active` follows
    the status, since the pipeline and the duty screen read `active`."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    sets: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in changes]
    if "status" in changes:
        sets.append(sql.SQL("active = ({} <> 'discharged')").format(sql.Placeholder("status")))
    sets.append(sql.SQL("updated_at = now()"))
    query = sql.SQL("UPDATE residents SET {} WHERE id = %(id)s").format(sql.SQL(", ").join(sets))
    return query, dict(changes)



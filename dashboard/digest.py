"""The daily digest of the duty screen and the daily routine chart of the resident page
(issue 15): residents whose last nights look unlike their usual (alerts/learning/outliers.py
writes the digest once a day; this only reads it), and a resident's daily features with
their usual band.

The digest names what changed in words, in the reader's language: each reason is one
N_() template filled with the feature's label and its recent and usual values, formatted
by features.format_value (the features are alerts/learning/features.py's, the one list
routine change and the outlier model use). Nothing here pages anyone.

The daily routine chart's usual band is the personal baseline routine change judges each
day against (baselines.baselines with RoutineSettings' window, minimum and gap), or the
population default before 14 days count - never a second computation.

Who may read the digest: administrators, and the duty officers of that site - it is a list
of the site's residents to look at in the planning of the day, a duty officer's task. Care
workers see each resident's chart on the resident page (as they see the vitals), not the
site-wide list; families never.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from alerts.answer_query import local_today, site_timezone
from alerts.learning import store
from alerts.learning.baselines import Baseline, baselines
from alerts.learning.features import (
    BY_NAME,
    FEATURES,
    PERSON_FEATURES,
    DayFeatures,
    Feature,
    axis_of,
    format_value,
)
from alerts.learning.routine import RoutineSettings
from alerts.model import ACTIVE_STATUSES, AlertType
from dashboard.answer_times import LangQuery, bounded_date
from dashboard.audit import AuditNote, audited
from dashboard.auth import CurrentUser
from dashboard.deps import AsyncConn, ConnDep, StateDep
from dashboard.language import api_language
from dashboard.models import RoutineChangeOut, routine_changes
from dashboard.params import IdPath, SiteQuery
from dashboard.scope import ScopeDep, not_found
from kernel.accounts import Role
from kernel.audit import Action
from kernel.i18n import DEFAULT_LANGUAGE, N_, translate

logger = logging.getLogger(__name__)

router = APIRouter(tags=["digest"])

BAND_SPREADS = 2.0  # the usual band: the baseline's median ± this many robust spreads
# Routine change's window, minimum and gap (not per-resident settings): the chart's band is
# the baseline routine change judges each day against.
ROUTINE = RoutineSettings()
REASON = N_("{feature} {recent} vs usual {usual}")
SUMMARY_NONE = N_("No resident's last nights look unlike their usual")
SUMMARY_ONE = N_("1 resident whose last nights look unlike their usual")
SUMMARY_MANY = N_("{count} residents whose last nights look unlike their usual")
SUMMARY_NOT_YET = N_("No digest yet: it is written each morning once the nights are "
                     "summarised")


def reason_text(feature: Feature, recent: float, usual: float, lang: str) -> str:
    """"Rise time 09:40 vs usual 07:10" in `lang` (the template is translated whole)."""
    def tr(text: str) -> str:
        return translate(text, lang)
    return tr(REASON).format(feature=tr(feature.label),
                             recent=format_value(feature, recent, tr),
                             usual=format_value(feature, usual, tr))


def summary_text(count: int | None, lang: str) -> str:
    """The digest's headline ("3 residents whose last nights look unlike their usual")."""
    if count is None:
        return translate(SUMMARY_NOT_YET, lang)
    if count == 0:
        return translate(SUMMARY_NONE, lang)
    if count == 1:
        return translate(SUMMARY_ONE, lang)
    return translate(SUMMARY_MANY, lang).format(count=count)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReasonOut(_Out):
    """One feature that differs: its mean over the nights scored against its usual."""

    feature: str = Field(description="The feature's name (vocabulary `daily_features`).")
    recent: float
    usual: float
    z: float = Field(description="Robust z-score: (recent - usual) / the usual spread.")
    text: str = Field(description='In words, e.g. "Rise time 09:40 vs usual 07:10".')


class DigestResidentOut(_Out):
    """A resident whose last nights look unlike their usual."""

    resident_id: int
    resident_name: str
    score: float = Field(description="The outlier model's mean anomaly score of the nights "
                                     "(higher = odder).")
    threshold: float = Field(description="The resident's own line for the score.")
    distance: float | None = Field(description="The nights' mean squared robust distance "
                                               "from usual.")
    distance_line: float | None = Field(description="The resident's own line for it.")
    nights: list[date]
    reasons: list[ReasonOut]


class DigestOut(_Out):
    """A site's daily digest (or, before the first one, `day` null and no residents)."""

    site_id: str
    site_timezone: str
    day: date | None
    computed_at: datetime | None
    scored: int = Field(description="Residents with a model that were scored.")
    skipped: int = Field(description="Residents switched off or with too little history.")
    summary: str
    residents: list[DigestResidentOut]


def _check_digest_access(user: Any, site: str | None) -> str:
    """The site to show: an administrator names it; a duty officer sees their own (another
    named: 403); every other role is refused."""
    if user.role is Role.ADMIN:
        if site is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "query parameter 'site' is required for an administrator")
        return str(site)
    if user.role is Role.DUTY_OFFICER and user.site_id and site in (None, user.site_id):
        return str(user.site_id)
    raise HTTPException(status.HTTP_403_FORBIDDEN,
                        "Only administrators and this site's duty officers see its digest")


async def _digest_row(conn: AsyncConn, site: str, day: date | None
                      ) -> tuple[Any, ...] | None:
    if day is None:
        cur = await conn.execute("SELECT day, computed_at, scored, skipped, entries FROM "
                                 "outlier_digests WHERE site_id = %s ORDER BY day DESC "
                                 "LIMIT 1", (site,))
    else:
        cur = await conn.execute("SELECT day, computed_at, scored, skipped, entries FROM "
                                 "outlier_digests WHERE site_id = %s AND day = %s",
                                 (site, day))
    return await cur.fetchone()


async def _names(conn: AsyncConn, site: str, ids: list[int]) -> dict[int, str]:
    """Names of the site's active residents among `ids` (one moved or gone is left out)."""
    cur = await conn.execute("SELECT id, full_name FROM residents WHERE site_id = %s AND "
                             "active AND id = ANY(%s)", (site, ids))
    return {int(r[0]): str(r[1]) for r in await cur.fetchall()}


def _resident(entry: dict[str, Any], name: str, lang: str) -> DigestResidentOut:
    reasons = [ReasonOut(feature=r["feature"], recent=r["recent"], usual=r["usual"], z=r["z"],
                         text=reason_text(BY_NAME[r["feature"]], r["recent"],
                                          r["usual"], lang))
               for r in entry["reasons"] if r["feature"] in BY_NAME]
    return DigestResidentOut(resident_id=entry["resident_id"], resident_name=name,
                             score=entry["score"], threshold=entry["threshold"],
                             distance=entry.get("distance"),
                             distance_line=entry.get("distance_line"),
                             nights=entry["nights"], reasons=reasons)


DayQuery = Annotated[date | None, AfterValidator(bounded_date), Query(
    description="The digest's local date at the site (default: the newest digest).")]


@router.get("/digest/outliers", response_model=DigestOut,
            responses={403: {"description": "Not an administrator or this site's duty "
                                            "officer"}, 404: {"description": "No such site"}})
async def get_outlier_digest(
        user: CurrentUser, conn: ConnDep,
        note: Annotated[AuditNote, audited(Action.DIGEST_READ, "site")],
        site: SiteQuery = None, day: DayQuery = None, lang: LangQuery = None, *,
        request: Request) -> DigestOut:
    """The residents of a site whose last nights look unlike their usual, with the
    features that differ most, in words; written once a day, never an alert."""
    words = lang or api_language(request)
    site = _check_digest_access(user, site)
    note.detail.update({"site": site, "day": day})
    zone = await site_timezone(conn, site)
    if zone is None:
        raise not_found("Site")
    row = await _digest_row(conn, site, day)
    if row is None:
        return DigestOut(site_id=site, site_timezone=zone, day=day, computed_at=None,
                         scored=0, skipped=0, summary=summary_text(None, words), residents=[])
    entries: list[dict[str, Any]] = list(row[4])
    names = await _names(conn, site, [int(e["resident_id"]) for e in entries])
    residents = [_resident(e, names[int(e["resident_id"])], words) for e in entries
                 if int(e["resident_id"]) in names]
    return DigestOut(site_id=site, site_timezone=zone, day=row[0], computed_at=row[1],
                     scored=row[2], skipped=row[3], summary=summary_text(len(residents), words),
                     residents=residents)


# --- a resident's daily features ------------------------------------------------------------

class BandOut(_Out):
    """The usual range of a person feature on a day: the baseline routine change judges the
    day against, median ± 2 robust spreads."""

    low: float
    median: float
    high: float
    personal: bool = Field(description="False: the population default (fewer than 14 "
                                       "counted days before it).")
    n_days: int = Field(description="Days that made the personal baseline.")
    low_text: str
    high_text: str


class DailyPointOut(_Out):
    """One day of a resident: each feature's value (null: not measured, or a person feature
    of a poorly covered day), its words, and each person feature's usual band."""

    day: date
    covered: bool = Field(description="The mat covered the day well enough for person "
                                      "features (else: a device fault, not the person).")
    alerted: bool = Field(description="An alert about the person was opened that day (left "
                                      "out of the usual).")
    values: dict[str, float | None]
    texts: dict[str, str | None] = Field(description="The values in words "
                                                     "(features.format_value).")
    usual: dict[str, BandOut | None] = Field(description="Person features only.")


class AxisOut(_Out):
    """How the chart's axis reads raw values: HH:MM of (offset + value) minutes for clock
    features (template null), else value / scale in the template ("{value} h")."""

    scale: float
    offset: float
    template: str | None


class FeatureOut(_Out):
    """A daily feature (alerts/learning/features.py): its name (label: the vocabulary's
    `daily_features`, device ones `device_features`), unit, kind and worrying direction."""

    key: str
    unit: str
    kind: str = Field(description="'person', or 'device': the sensor's health, shown apart.")
    direction: str = Field(description="The worrying direction: up, down or both.")
    axis: AxisOut


class RoutineFocusOut(_Out):
    """The routine-change alert the chart opens on: its feature, preselected, and its day,
    marked."""

    alert_id: int
    feature: str
    day: date
    active: bool = Field(description="Still open or acknowledged.")
    changes: list[RoutineChangeOut] = Field(
        default_factory=list,
        description="Every feature the alert carries (a feature that changed while it was "
                    "open joins it), oldest first, explained in the reader's language: the "
                    "page lists them and marks each one's day on its feature's chart.")


class DailyOut(_Out):
    """A resident's daily features over `days` days up to `until` (their local dates)."""

    resident_id: int
    timezone: str
    until: date
    days: int
    features: list[FeatureOut]
    points: list[DailyPointOut]
    routine_change: RoutineFocusOut | None = Field(
        description="The alert named by `alert` (this resident's routine change), else the "
                    "resident's newest active routine-change alert, else null.")


async def _resident_zone(conn: AsyncConn, resident_id: int) -> str:
    cur = await conn.execute("SELECT COALESCE(r.timezone, s.timezone) FROM residents r "
                             "JOIN sites s ON s.id = r.site_id WHERE r.id = %s",
                             (resident_id,))
    row = await cur.fetchone()
    return str(row[0]) if row else "UTC"


def band_of(f: Feature, b: Baseline, lang: str) -> BandOut:
    """The usual band of a baseline, with its ends in words."""
    def tr(text: str) -> str:
        return translate(text, lang)
    low, high = b.median - BAND_SPREADS * b.sigma(), b.median + BAND_SPREADS * b.sigma()
    if f.unit not in ("clock_noon", "clock_midnight"):
        low = max(low, 0.0)  # a count or a duration is never below zero ("usual -5 min")
    return BandOut(low=round(low, 3), median=round(b.median, 3), high=round(high, 3),
                   personal=b.personal, n_days=b.n_days, low_text=format_value(f, low, tr),
                   high_text=format_value(f, high, tr))


def daily_points(days: list[DayFeatures], shown_from: date, until: date, lang: str,
                 s: RoutineSettings = ROUTINE) -> list[DailyPointOut]:
    """Every date from `shown_from` to `until` (a day without a summary: no values), each
    person feature with the band of the baseline routine change judges that day against
    (`days`: the resident's, from the start of the first day's window)."""
    by_day = {d.day: d for d in days}

    def tr(text: str) -> str:
        return translate(text, lang)
    points = []
    for i in range((until - shown_from).days + 1):
        day = shown_from + timedelta(days=i)
        d = by_day.get(day)
        values = {f.name: d.value(f.name) if d else None for f in FEATURES}
        points.append(DailyPointOut(
            day=day, covered=bool(d and d.well_covered), alerted=bool(d and d.alerted),
            values=values,
            texts={f.name: None if (v := values[f.name]) is None else format_value(f, v, tr)
                   for f in FEATURES},
            usual={name: band_of(BY_NAME[name], b, lang) for name, b in baselines(
                days, day, PERSON_FEATURES, s.window_days, s.min_days, s.gap_days).items()}))
    return points


_FOCUS = """
SELECT id, details->>'feature', details->>'day', status = ANY(%(active)s), details
FROM alerts
WHERE resident_id = %(rid)s AND type = %(type)s AND details ? 'feature' AND details ? 'day'
  AND (id = %(alert)s OR (%(alert)s IS NULL AND status = ANY(%(active)s)))
ORDER BY opened_at DESC LIMIT 1
"""


async def routine_focus(conn: AsyncConn, resident_id: int, alert: int | None,
                        lang: str = DEFAULT_LANGUAGE) -> RoutineFocusOut | None:
    """The routine-change alert whose feature the chart opens on (see DailyOut), with every
    change it carries explained in `lang`."""
    cur = await conn.execute(_FOCUS, {"rid": resident_id, "alert": alert,
                                      "type": AlertType.ROUTINE_CHANGE.value,
                                      "active": [str(a) for a in ACTIVE_STATUSES]})
    row = await cur.fetchone()
    if row is None or row[1] not in BY_NAME:
        return None
    return RoutineFocusOut(alert_id=row[0], feature=row[1], day=date.fromisoformat(row[2]),
                           active=bool(row[3]), changes=[
                               c for c in routine_changes(row[4], lang) if c.feature in BY_NAME])


def feature_out(f: Feature, lang: str) -> FeatureOut:
    axis = axis_of(f, lambda text: translate(text, lang))
    return FeatureOut(key=f.name, unit=f.unit, kind=f.kind, direction=f.direction,
                      axis=AxisOut(scale=axis.scale, offset=axis.offset,
                                   template=axis.template))


@router.get("/residents/{resident_id}/daily", response_model=DailyOut, tags=["residents"])
async def get_daily(
        resident_id: IdPath, scope: ScopeDep, conn: ConnDep, state: StateDep,
        note: Annotated[AuditNote, audited(Action.VITALS_READ, "resident",
                                           resident="resident_id")],
        days: Annotated[int, Query(ge=7, le=366, description="How many days to show.")] = 30,
        until: Annotated[date | None, AfterValidator(bounded_date), Query(
            description="The last local date shown (default: today).")] = None,
        alert: Annotated[int | None, Query(
            ge=1, description="A routine-change alert of this resident to open on.")] = None,
        lang: LangQuery = None, *, request: Request,
) -> DailyOut:
    """A resident's daily features (alerts/learning/features.py: the person's, then the
    sensor's health) per day, each person feature with its usual band: the personal
    baseline routine change judges that day against (median ± 2 robust spreads), or the
    population default before 14 days count; and the routine-change alert to open on."""
    await scope.require_resident(conn, resident_id)
    words = lang or api_language(request)
    zone = await _resident_zone(conn, resident_id)
    until = until or local_today(state.clock(), zone)
    note.detail.update({"days": days, "until": until})
    shown_from = until - timedelta(days=days - 1)
    s = ROUTINE
    first = shown_from - timedelta(days=s.window_days + s.gap_days + 1)
    history = await store.load_days_async(conn, resident_id, first, until)
    return DailyOut(resident_id=resident_id, timezone=zone, until=until, days=days,
                    features=[feature_out(f, words) for f in FEATURES],
                    points=daily_points(history, shown_from, until, words, s),
                    routine_change=await routine_focus(conn, resident_id, alert, words))

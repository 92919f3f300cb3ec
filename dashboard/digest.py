"""The daily digest of the duty screen and the daily routine chart of the resident page
(issue 15): residents whose last nights look unlike their usual (alerts/learning/outliers.py
writes the digest once a day; this only reads it), and a resident's daily features with
their usual band.

The digest names what changed in words, in the reader's language: each reason is one
N_() template filled with the feature's label and its recent and usual values, formatted
by the feature's kind (a clock time, hours, a count, a rate). Nothing here pages anyone.

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
from alerts.learning.outliers import (
    DAILY_FEATURES,
    FEATURE_BY_KEY,
    MIN_DATA_MINUTES,
    DailyFeature,
    FeatureKind,
    feature_columns,
    usual_band,
)
from dashboard.answer_times import bounded_date
from dashboard.audit import AuditNote, audited
from dashboard.auth import CurrentUser
from dashboard.deps import AsyncConn, ConnDep, StateDep
from dashboard.language import api_language
from dashboard.params import IdPath, SiteQuery
from dashboard.scope import ScopeDep, not_found
from dashboard.vocabulary import Language
from kernel.accounts import Role
from kernel.audit import Action
from kernel.i18n import N_, translate

logger = logging.getLogger(__name__)

router = APIRouter(tags=["digest"])

BAND_WINDOW = 28  # days before each day that make its usual band (issue 15: 28-day median)
BAND_MIN_DAYS = 14

_UNITS: dict[FeatureKind, str] = {
    "clock": "{value}",
    "hours": N_("{value} h"),
    "count": "{value}",
    "rate": N_("{value} /min"),
    "number": "{value}",
}
REASON = N_("{feature} {recent} vs usual {usual}")
SUMMARY_NONE = N_("No resident's last nights look unlike their usual")
SUMMARY_ONE = N_("1 resident whose last nights look unlike their usual")
SUMMARY_MANY = N_("{count} residents whose last nights look unlike their usual")
SUMMARY_NOT_YET = N_("No digest yet: it is written each morning once the nights are "
                     "summarised")


def value_text(kind: FeatureKind, value: float, lang: str) -> str:
    """A feature value as people read it: a clock time "09:40", "7.5 h", "4.2", "62 /min"."""
    if kind == "clock":
        minutes = round(value) % (24 * 60)
        number = f"{minutes // 60:02d}:{minutes % 60:02d}"
    elif kind == "rate":
        number = f"{value:.0f}"
    else:
        number = f"{value:.1f}"
    return translate(_UNITS[kind], lang).format(value=number)


def reason_text(feature: DailyFeature, recent: float, usual: float, lang: str) -> str:
    """"Rise time 09:40 vs usual 07:10" in `lang` (the template is translated whole)."""
    return translate(REASON, lang).format(feature=translate(feature.label, lang),
                                          recent=value_text(feature.kind, recent, lang),
                                          usual=value_text(feature.kind, usual, lang))


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

    feature: str = Field(description="The feature's key (vocabulary `daily_features`).")
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
                         text=reason_text(FEATURE_BY_KEY[r["feature"]], r["recent"],
                                          r["usual"], lang))
               for r in entry["reasons"] if r["feature"] in FEATURE_BY_KEY]
    return DigestResidentOut(resident_id=entry["resident_id"], resident_name=name,
                             score=entry["score"], threshold=entry["threshold"],
                             distance=entry.get("distance"),
                             distance_line=entry.get("distance_line"),
                             nights=entry["nights"], reasons=reasons)


DayQuery = Annotated[date | None, AfterValidator(bounded_date), Query(
    description="The digest's local date at the site (default: the newest digest).")]
LangQuery = Annotated[Language | None, Query(
    description="Language of the words (BCP 47); default: the request's Accept-Language.")]


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
    """The usual range of a feature on a day, from the days before it."""

    low: float
    median: float
    high: float


class DailyPointOut(_Out):
    """One day of a resident: each feature's value (null: not measured) and usual band."""

    day: date
    covered: bool = Field(description="The day had enough data (else it is left out of "
                                      "the usual and of the digest: a device fault).")
    values: dict[str, float | None]
    usual: dict[str, BandOut | None]


class FeatureOut(_Out):
    """A daily feature: its key (label: vocabulary `daily_features`) and how values read."""

    key: str
    kind: FeatureKind


class DailyOut(_Out):
    """A resident's daily features over `days` days up to `until` (their local dates)."""

    resident_id: int
    timezone: str
    until: date
    days: int
    features: list[FeatureOut]
    points: list[DailyPointOut]


_DAILY = """
SELECT d.day, d.data_minutes >= %(min_minutes)s, {columns}
FROM resident_daily d
WHERE d.resident_id = %(rid)s AND d.day > %(since)s AND d.day <= %(until)s
ORDER BY d.day
"""


async def _resident_zone(conn: AsyncConn, resident_id: int) -> str:
    cur = await conn.execute("SELECT COALESCE(r.timezone, s.timezone) FROM residents r "
                             "JOIN sites s ON s.id = r.site_id WHERE r.id = %s",
                             (resident_id,))
    row = await cur.fetchone()
    return str(row[0]) if row else "UTC"


def daily_points(rows: list[tuple[Any, ...]], first: date, shown_from: date, until: date
                 ) -> list[DailyPointOut]:
    """Every date from `shown_from` to `until` (a day without a summary: no values), each
    feature with its band from the covered days among the BAND_WINDOW dates before it;
    `rows` (day, covered, values...) start at `first`."""
    by_day = {row[0]: row for row in rows}
    dates = [first + timedelta(days=i) for i in range((until - first).days + 1)]
    bands = []
    for j, feature in enumerate(DAILY_FEATURES):
        values = [row[2 + j] if (row := by_day.get(d)) and row[1] else None for d in dates]
        bands.append(usual_band(values, spread=feature.min_spread, window=BAND_WINDOW,
                                min_values=BAND_MIN_DAYS))
    points = []
    for i, day in enumerate(dates):
        if day < shown_from:
            continue
        row = by_day.get(day)
        points.append(DailyPointOut(
            day=day, covered=bool(row and row[1]),
            values={f.key: row[2 + j] if row else None for j, f in enumerate(DAILY_FEATURES)},
            usual={f.key: _band(bands[j][i]) for j, f in enumerate(DAILY_FEATURES)}))
    return points


def _band(band: tuple[float, float, float] | None) -> BandOut | None:
    return None if band is None else BandOut(low=band[0], median=band[1], high=band[2])


@router.get("/residents/{resident_id}/daily", response_model=DailyOut, tags=["residents"])
async def get_daily(
        resident_id: IdPath, scope: ScopeDep, conn: ConnDep, state: StateDep,
        note: Annotated[AuditNote, audited(Action.VITALS_READ, "resident",
                                           resident="resident_id")],
        days: Annotated[int, Query(ge=7, le=366, description="How many days to show.")] = 30,
        until: Annotated[date | None, AfterValidator(bounded_date), Query(
            description="The last local date shown (default: today).")] = None,
) -> DailyOut:
    """A resident's daily features (rise time, time in bed, night exits, resting heart
    rate, breathing, movement) per day, each with its usual band: the median of the 28
    covered days before it, plus or minus two robust standard deviations."""
    await scope.require_resident(conn, resident_id)
    zone = await _resident_zone(conn, resident_id)
    until = until or local_today(state.clock(), zone)
    note.detail.update({"days": days, "until": until})
    shown_from = until - timedelta(days=days - 1)
    first = shown_from - timedelta(days=BAND_WINDOW)
    cur = await conn.execute(_DAILY.format(columns=feature_columns()), {
        "rid": resident_id, "min_minutes": MIN_DATA_MINUTES, "until": until,
        "since": first - timedelta(days=1)})
    rows = list(await cur.fetchall())
    return DailyOut(resident_id=resident_id, timezone=zone, until=until, days=days,
                    features=[FeatureOut(key=f.key, kind=f.kind) for f in DAILY_FEATURES],
                    points=daily_points(rows, first, shown_from, until))

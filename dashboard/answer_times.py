"""Answer-time statistics of a site: the wall screen's "shift in numbers" and the daily/weekly
compliance report (JSON, CSV, XLSX; the printable page is /reports/answer-times).

Definitions: alerts/answer_times.py and docs/dashboard.md ("Answer times"). Periods are the
site's: a local calendar day, a local Monday-to-Monday week, the current roster shift.

Who may see what:
- administrators: every site;
- duty officers: their own site (shift numbers, report, exports);
- care workers: their own site's shift numbers, with only their own row among the workers
  (a colleague's speed is not theirs to read); no report, no export;
- family members: nothing (403).
Every read is recorded in the audit trail (report.read), every CSV/XLSX export as `export`
with the report, site, period and format.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from alerts import answer_query as query
from alerts.answer_times import (
    GROUP_LABELS,
    METRIC_LABELS,
    TEXT_LABELS,
    VERDICT_LABELS,
    Figures,
    Metric,
    Share,
    Verdict,
    answer_times,
)
from alerts.vocabulary import SEVERITY_LABELS
from dashboard.audit import AuditNote, audited
from dashboard.auth import CurrentUser
from dashboard.deps import AsyncConn, ConnDep, StateDep
from dashboard.language import api_language
from dashboard.models import EARLIEST, LATEST, UserOut
from dashboard.params import SITE_REGEX
from dashboard.scope import not_found
from dashboard.vocabulary import Language
from kernel.accounts import Role
from kernel.audit import Action
from kernel.i18n import DEFAULT_LANGUAGE, N_, translate

logger = logging.getLogger(__name__)
router = APIRouter(tags=["answer times"])

SitePath = Annotated[str, Path(pattern=SITE_REGEX)]
LangQuery = Annotated[Language | None, Query(
    description="Language of the labels (BCP 47); by default the request's (Accept-Language, "
                "else the language cookie, else English).")]
REPORT_ROLES = frozenset({Role.ADMIN, Role.DUTY_OFFICER})
SHIFT_ONLY_ROLES = frozenset({Role.CARE_WORKER, Role.DISPLAY})  # the wall's panel, own site
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ShareOut(BaseModel):
    """Acknowledged within `within_s` seconds: `within` of `decided` alerts."""

    model_config = ConfigDict(frozen=True)

    within_s: int
    target: float = Field(description="The standard's share, e.g. 0.975.")
    within: int
    decided: int = Field(description="Acknowledged, or unacknowledged and older than the "
                                     "limit (late).")
    share: float | None = Field(description="within / decided; null when nothing is decided.")
    verdict: Verdict


class FiguresOut(BaseModel):
    """The numbers of one group of alerts (times in seconds)."""

    model_config = ConfigDict(frozen=True)

    opened: int
    acknowledged: int
    unanswered: int
    cancelled: int
    auto_closed: int
    escalated: int
    within_60: ShareOut
    within_180: ShareOut
    ack_median_s: float | None
    ack_p90_s: float | None
    resolve_median_s: float | None
    resolve_p90_s: float | None


class SeverityFiguresOut(FiguresOut):
    """One severity's numbers."""

    severity: str


class WorkerFiguresOut(FiguresOut):
    """The numbers of the alerts one person acknowledged."""

    user_id: int
    username: str
    full_name: str | None


class LabelsOut(BaseModel):
    """The words of the panel and the report, in the requested language (defined once in
    alerts/answer_times.py; the pages never type them)."""

    model_config = ConfigDict(frozen=True)

    metrics: dict[str, str]
    verdicts: dict[str, str]
    groups: dict[str, str]
    texts: dict[str, str]


class AnswerTimesOut(BaseModel):
    """A site's answer-time numbers for one period."""

    model_config = ConfigDict(frozen=True)

    site_id: str
    timezone: str
    window: query.Window
    start: datetime
    end: datetime
    start_local: str = Field(description="The period's start, site time, YYYY-MM-DD HH:MM.")
    end_local: str
    now: datetime
    open_now: int = Field(description="The site's open or acknowledged alerts, whenever "
                                      "raised.")
    all: FiguresOut
    alarm_calls: FiguresOut = Field(description="SOS and fall: the standard's verdict.")
    by_severity: list[SeverityFiguresOut]
    by_worker: list[WorkerFiguresOut]
    labels: LabelsOut


def _share(share: Share) -> ShareOut:
    return ShareOut(within_s=share.within_s, target=share.target, within=share.within,
                    decided=share.decided, share=share.share, verdict=share.verdict)


def _fields(f: Figures) -> dict[str, object]:
    return {"opened": f.opened, "acknowledged": f.acknowledged, "unanswered": f.unanswered,
            "cancelled": f.cancelled, "auto_closed": f.auto_closed, "escalated": f.escalated,
            "within_60": _share(f.within_60), "within_180": _share(f.within_180),
            "ack_median_s": f.ack_median_s, "ack_p90_s": f.ack_p90_s,
            "resolve_median_s": f.resolve_median_s, "resolve_p90_s": f.resolve_p90_s}


def labels(lang: str) -> LabelsOut:
    """Every word of the panel and the report in `lang`."""

    def words(table: dict[str, str]) -> dict[str, str]:
        return {str(k): translate(v, lang) for k, v in table.items()}

    return LabelsOut(metrics=words(METRIC_LABELS), verdicts=words(VERDICT_LABELS),
                     groups=words(GROUP_LABELS), texts=words(TEXT_LABELS))


def _check_access(user: UserOut, site: str, *, report: bool) -> None:
    """Admins: any site; duty officers: their site; care workers and wall displays: their
    site's shift numbers only; everyone else 403."""
    if user.role is Role.ADMIN:
        return
    own = user.site_id == site
    if own and (user.role is Role.DUTY_OFFICER or (user.role in SHIFT_ONLY_ROLES
                                                   and not report)):
        return
    raise HTTPException(status.HTTP_403_FORBIDDEN,
                        N_("Only administrators and this site's duty officers see its answer-time "
                           "report") if report else N_("You cannot see this site's answer times"))


async def _zone(conn: AsyncConn, site: str) -> str:
    zone = await query.site_timezone(conn, site)
    if zone is None:
        raise not_found(N_("Site"))
    return zone


async def _numbers(conn: AsyncConn, site: str, where: query.SitePeriod, now: datetime,
                   user: UserOut, lang: str) -> AnswerTimesOut:
    rows = await query.alert_times(conn, site, where.period)
    numbers = answer_times(rows, where.period, now)
    by_worker = numbers.by_worker
    if user.role is Role.CARE_WORKER:  # their own numbers only
        by_worker = {k: v for k, v in by_worker.items() if k == user.id}
    people = await query.workers(conn, by_worker)
    return AnswerTimesOut(
        site_id=site, timezone=where.timezone, window=where.window,
        start=where.period.start, end=where.period.end,
        start_local=where.local(where.period.start), end_local=where.local(where.period.end),
        now=now, open_now=await query.open_now(conn, site),
        all=FiguresOut(**_fields(numbers.all)),
        alarm_calls=FiguresOut(**_fields(numbers.alarm_calls)),
        by_severity=[SeverityFiguresOut(severity=s, **_fields(f))
                     for s, f in numbers.by_severity.items()],
        by_worker=[WorkerFiguresOut(
            user_id=uid, username=people[uid].username if uid in people else f"user {uid}",
            full_name=people[uid].full_name if uid in people else None, **_fields(f))
            for uid, f in by_worker.items()],
        labels=labels(lang))


@router.get("/sites/{site}/answer-times/shift", response_model=AnswerTimesOut,
            dependencies=[audited(Action.REPORT_READ, "site", id_param="site")],
            responses={403: {"description": "Another site, or a family member"},
                       404: {"description": "No such site"}})
async def shift_numbers(site: SitePath, user: CurrentUser, conn: ConnDep, state: StateDep,
                        lang: LangQuery = None, *, request: Request) -> AnswerTimesOut:
    """The current shift's numbers (the wall screen's panel): the roster shift running now,
    else the last 12 hours."""
    chosen = lang or api_language(request)
    _check_access(user, site, report=False)
    zone = await _zone(conn, site)
    now = state.clock()
    where = await query.current_shift(conn, site, zone, now)
    return await _numbers(conn, site, where, now, user, chosen)


PeriodKind = Literal["day", "week"]


async def _report(conn: AsyncConn, site: str, user: UserOut, now: datetime, period: PeriodKind,
                  day: date | None, chosen: str) -> AnswerTimesOut:
    _check_access(user, site, report=True)
    zone = await _zone(conn, site)
    day = day or query.local_today(now, zone)
    where = query.day_period(day, zone) if period == "day" else query.week_period(day, zone)
    return await _numbers(conn, site, where, now, user, chosen)


PeriodQuery = Annotated[PeriodKind, Query(description="A local calendar day, or the local "
                                                      "week (Monday to Monday) holding `date`.")]


def bounded_date(value: date) -> date:
    """A calendar date the periods can be computed for (the API's time bounds)."""
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return value


DateQuery = Annotated[date | None, AfterValidator(bounded_date), Query(
    alias="date", description="A date of the site's calendar (default: today at the site).")]


@router.get("/sites/{site}/answer-times/report", response_model=AnswerTimesOut,
            dependencies=[audited(Action.REPORT_READ, "site", id_param="site")],
            responses={403: {"description": "Not an administrator or this site's duty "
                                            "officer"}, 404: {"description": "No such site"}})
async def report(site: SitePath, user: CurrentUser, conn: ConnDep, state: StateDep,
                 period: PeriodQuery = "day", day: DateQuery = None,
                 lang: LangQuery = None, *, request: Request) -> AnswerTimesOut:
    """The compliance report of a day or a week at the site."""
    return await _report(conn, site, user, state.clock(), period, day,
                         lang or api_language(request))


# ---- exports -------------------------------------------------------------------------------

def _value(figures: FiguresOut, metric: Metric) -> object:
    if metric is Metric.WITHIN_60:
        return figures.within_60.share
    if metric is Metric.WITHIN_180:
        return figures.within_180.share
    value: object = getattr(figures, metric.value)
    return value


def _groups(out: AnswerTimesOut, lang: str) -> Iterator[tuple[str, str, FiguresOut]]:
    words = out.labels
    yield words.groups["all"], "", out.all
    yield words.groups["alarm_calls"], "", out.alarm_calls
    for s in out.by_severity:
        label = SEVERITY_LABELS.get(s.severity)
        yield words.texts["severity"], translate(label, lang) if label else s.severity, s
    for w in out.by_worker:
        yield words.texts["worker"], w.full_name or w.username, w


def table(out: AnswerTimesOut, lang: str) -> Iterator[list[object]]:
    """The report as rows, header first: one row per group, severity and worker; shares as
    fractions, times in seconds, the verdicts of both targets as their labels."""
    words = out.labels
    header: list[object] = [words.texts["group"], words.texts["name"]]
    yield (header
           + [words.metrics[m.value] for m in Metric]
           + [words.texts["verdict_60"], words.texts["verdict_180"]])
    for group, name, figures in _groups(out, lang):
        yield ([group, name] + [_value(figures, m) for m in Metric]
               + [words.verdicts[figures.within_60.verdict.value],
                  words.verdicts[figures.within_180.verdict.value]])


def _title(out: AnswerTimesOut) -> list[str]:
    return [out.labels.texts["report_title"], out.site_id,
            f"{out.start_local} – {out.end_local} ({out.timezone})"]


# The XLSX sheet's tab (at most 31 characters, no []:*?/\\ in any language).
SHEET_TITLE = N_("answer-times")
# Excel reads a CSV file without a byte-order mark in the machine's code page (GBK on a
# Chinese Windows), garbling Chinese: a Chinese export starts with the UTF-8 BOM. English
# exports stay as they were (ASCII reads the same in any code page).
UTF8_BOM = "\ufeff"


def _csv_cell(value: object) -> object:
    """Text that a spreadsheet would run as a formula starts with a quote (as the audit
    export does); numbers and empty cells stay as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(out: AnswerTimesOut, lang: str) -> str:
    """The report as CSV: a title line (report, site, period in site time), then the table."""
    buffer = io.StringIO()
    if lang != DEFAULT_LANGUAGE:
        buffer.write(UTF8_BOM)
    writer = csv.writer(buffer)
    writer.writerow(_title(out))
    for row in table(out, lang):
        writer.writerow([_csv_cell(v) for v in row])
    return buffer.getvalue()


def to_xlsx(out: AnswerTimesOut, lang: str) -> bytes:
    """The report as an XLSX workbook: title rows, then the table with shares formatted as
    percentages and times as seconds."""
    from openpyxl import Workbook  # imported on use: the exports are rare
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = translate(SHEET_TITLE, lang)
    sheet.append(_title(out))
    sheet.append([])
    rows = list(table(out, lang))
    sheet.append(rows[0])
    for cell in sheet[3]:
        cell.font = Font(bold=True)
    share_columns = {i + 3 for i, m in enumerate(Metric)
                     if m in (Metric.WITHIN_60, Metric.WITHIN_180)}
    for row in rows[1:]:
        sheet.append([_csv_cell(v) if isinstance(v, str) else v for v in row])
        for column in share_columns:
            sheet.cell(row=sheet.max_row, column=column).number_format = "0.0%"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _filename(out: AnswerTimesOut, extension: str) -> str:
    day = out.start_local[:10]
    return f"answer-times-{out.site_id}-{out.window.value}-{day}.{extension}"


def _note_export(note: AuditNote, out: AnswerTimesOut, fmt: str) -> None:
    note.detail.update(report="answer_times", site=out.site_id, window=out.window.value,
                       start=out.start.isoformat(), end=out.end.isoformat(), format=fmt)


@router.get("/sites/{site}/answer-times/report.csv", response_class=Response, responses={
    200: {"content": {"text/csv": {}}, "description": "The report as CSV."},
    403: {"description": "Not an administrator or this site's duty officer"}})
async def report_csv(note: Annotated[AuditNote, audited(Action.EXPORT, "site", id_param="site")],
                     site: SitePath, user: CurrentUser, conn: ConnDep, state: StateDep,
                     period: PeriodQuery = "day", day: DateQuery = None,
                     lang: LangQuery = None, *, request: Request) -> Response:
    """The compliance report as CSV (recorded in the audit trail as an export)."""
    chosen = lang or api_language(request)
    out = await _report(conn, site, user, state.clock(), period, day, chosen)
    _note_export(note, out, "csv")
    return Response(to_csv(out, chosen), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{_filename(out, "csv")}"'})


@router.get("/sites/{site}/answer-times/report.xlsx", response_class=Response, responses={
    200: {"content": {XLSX_TYPE: {}}, "description": "The report as an XLSX workbook."},
    403: {"description": "Not an administrator or this site's duty officer"}})
async def report_xlsx(note: Annotated[AuditNote, audited(Action.EXPORT, "site",
                                                          id_param="site")],
                      site: SitePath, user: CurrentUser, conn: ConnDep, state: StateDep,
                      period: PeriodQuery = "day", day: DateQuery = None,
                      lang: LangQuery = None, *, request: Request) -> Response:
    """The compliance report as XLSX (recorded in the audit trail as an export)."""
    chosen = lang or api_language(request)
    out = await _report(conn, site, user, state.clock(), period, day, chosen)
    _note_export(note, out, "xlsx")
    return Response(to_xlsx(out, chosen), media_type=XLSX_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{_filename(out, "xlsx")}"'})

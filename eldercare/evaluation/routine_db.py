"""Routine change, judged through the services' own SQL and code on a real database.

The product path is bed telemetry -> `vitals_1m` (the minute rollup) -> `resident_daily`
(the daily summaries, `ingest.rollups.summarize_days`) -> the learning job
(`alerts.learning.job.run_learning`: day records, personal baselines, routine change,
`alerts.store.store_trigger`) -> `routine_change` alerts. The workers fold the readings into
the `vitals_1m` rows (`eldercare.evaluation.minutes`); this phase, in the parent:

1. starts a throwaway PostgreSQL+TimescaleDB (the embedded server `eldercare demo` runs,
   in a temporary directory, not durable) and migrates it - or uses the given URL;
2. creates the site, the residents and their devices, COPYs the rows in (`vitals_1m`,
   `device_status`), and stores the rule alerts of the run as configured (resolved), since
   days on which an alert about the person was opened are left out of baselines;
3. walks the local days in order, as the services would have seen each: at the day's
   `night_final_at` (12:30 local, ingest.rollups.night_final_at) it summarises that day with
   the data up to then (`summarize_days` with that `data_until`: the partial row the daily
   summaries job upserts then - the rise needs 30 minutes of data after the getting-up) and
   runs the learning job with the clock and the daily watermark injected there (it judges
   the night's features); at the local midnight that ends the day it summarises the day
   with all its data and runs the job again (the whole day's features). After each run it
   reads back what the run decided: the features `routine_state` records as alerted that
   day and not reported by an earlier run, and the alert they opened (or joined: a repeat)
   with its explanation; a decision's time is its alert's event time. A modelled care
   worker then resolves the open routine-change alerts (the book's `RESOLVE_AFTER_S` after
   they opened), as the direct run's book does for every alert.

The ablation "personal baselines off" judges the same day records (read with the job's own
query, `alerts.learning.store.load_days`) with the routine-change code's public pieces
(`judge_feature`), every feature's baseline being its population default.
"""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alerts.config import AlertSettings
from alerts.learning.baselines import WINDOW_DAYS, population_baseline
from alerts.learning.features import PERSON_FEATURES, DayFeatures, Feature
from alerts.learning.job import LearningSettings, day_end, routine_settings, run_learning
from alerts.learning.routine import FeatureState, RoutineChange, judge_feature
from alerts.learning.store import load_days
from eldercare.embedded import PostgresConfig, free_port, start_postgres
from eldercare.evaluation.book import RESOLVE_AFTER_S
from eldercare.evaluation.labels import ROUTINE_CHANGE
from eldercare.evaluation.minutes import STATUS_COLUMNS, VITALS_COLUMNS, RollupRows, with_resident
from eldercare.evaluation.rows import AlertRow
from eldercare.migrate import migrate
from gateway.schema import DeviceType
from ingest import rollups
from ingest.jobs import DAILY_JOB
from kernel import db
from kernel.sites import add_resident, add_site
from simulators.cohort import CohortSpec, build_resident

logger = logging.getLogger(__name__)

SITE = "eval"
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Judgement:
    """One routine-change decision: a feature of a resident judged changed on a day."""

    resident_id: int  # the cohort's id
    feature: str
    day: date
    # event time of its alert: when the feature became final - the day's night_final_at
    # (12:30 local) for a night feature, the local midnight that ends the day otherwise
    at: datetime
    repeat: bool = False  # the trigger joined a routine_change alert already open
    explanation: str = ""

    def row(self, severity: str = "warning") -> AlertRow:
        """As scored: a routine_change alert about this feature."""
        return AlertRow(self.resident_id, ROUTINE_CHANGE, self.at, severity,
                        detail=self.feature)


@dataclass
class RoutineResult:
    """What the database phase found and what it cost."""

    judgements: list[Judgement]
    ablation: list[Judgement] = field(default_factory=list)  # population defaults only
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step
    rows: dict[str, int] = field(default_factory=dict)  # rows written per table
    days_judged: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # processor time per step (_Steps)
    # The daily features the job judged, per cohort resident (the report's delay analysis,
    # eldercare.evaluation.tradeoff, judges them again with other thresholds).
    days: dict[int, list[DayFeatures]] = field(default_factory=dict)

    def alerts(self) -> list[AlertRow]:
        """Decisions that opened an alert (one row per feature named)."""
        return [j.row() for j in self.judgements if not j.repeat]

    def repeats(self) -> list[AlertRow]:
        """Decisions that joined an alert already open."""
        return [j.row() for j in self.judgements if j.repeat]


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh PostgreSQL+TimescaleDB in a temporary directory, migrated; its application
    role's URL. Stopped and deleted afterwards."""
    path = Path(tempfile.mkdtemp(prefix="eldercare-eval-pg-"))
    cfg = PostgresConfig(path, free_port(), secrets.token_hex(12), secrets.token_hex(12),
                         durable=False)
    proc = start_postgres(cfg)
    try:
        migrate(cfg.owner_url)
        yield cfg.url
    finally:
        proc.stop()
        shutil.rmtree(path, ignore_errors=True)


INPUTS = "routine-inputs.pickle"


@dataclass(frozen=True, slots=True)
class SavedInputs:
    """What the database phase starts from, saved by `eldercare eval --save-routine DIR`
    so that a change to the SQL or the routine-change code can be re-judged on the same
    cohort without re-running it (`python -m benchmarks.routine_rescore DIR`)."""

    spec: CohortSpec
    rows: list[RollupRows]
    rule_alerts: list[AlertRow]  # the default variant's rule alerts
    repeats: list[AlertRow]  # and their repeats
    habits: list[tuple[int, list[tuple[date, dtime | None, float | None]]]]
    ablation_residents: int


def save_inputs(directory: Path, spec: CohortSpec, runs: Sequence[Any], default: str,
                ablation_residents: int) -> Path:
    """Pickle the database phase's input (`runs`: the runner's ResidentRun) into
    `directory`; the path written. A developer's file: pickle, so load only your own."""
    directory.mkdir(parents=True, exist_ok=True)
    saved = SavedInputs(
        spec, [r.rollups[ROUTINE_CHANGE] for r in runs if ROUTINE_CHANGE in r.rollups],
        [a for r in runs for a in r.alerts.get(default, []) if a.type != ROUTINE_CHANGE],
        [a for r in runs for a in r.repeats.get(default, []) if a.type != ROUTINE_CHANGE],
        [(r.resident_id, list(r.habits)) for r in runs], ablation_residents)
    path = directory / INPUTS
    with path.open("wb") as f:
        pickle.dump(saved, f, protocol=pickle.HIGHEST_PROTOCOL)
    logger.info("routine change: saved the database phase's input to %s", path)
    return path


def load_inputs(directory: Path) -> SavedInputs:
    """What `save_inputs` wrote (trusted: your own file)."""
    with (directory / INPUTS).open("rb") as f:
        saved = pickle.load(f)  # noqa: S301 - the developer's own file
    if not isinstance(saved, SavedInputs):
        raise TypeError(f"{directory / INPUTS} is not a saved routine-change input")
    return saved


def backend_cpu_s(pid: int) -> float | None:
    """Processor time a local server process has used (Linux /proc), None elsewhere: the
    database server's work is not this process's CPU, and wall time on a shared machine
    says little."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class _Steps:
    """Wall time of each step, and processor time: this process's and, when the server
    runs on this machine, that of the connection's server process (`watch`)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.pid: int | None = None

    def watch(self, conn: db.Conn) -> None:
        """Count the processor time of this connection's server process."""
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        self.pid = int(row[0]) if row else None

    def _cpu(self) -> float:
        server = backend_cpu_s(self.pid) if self.pid is not None else None
        return time.process_time() + (server or 0.0)

    @contextmanager
    def step(self, name: str, log: bool = True) -> Iterator[None]:
        """Count a step's time (added to earlier runs of the same step; `log` False: a step
        run once per day, the total is logged by `log_totals`)."""
        t0, c0 = self.clock(), self._cpu()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + self.clock() - t0
        self.cpu[name] = self.cpu.get(name, 0.0) + self._cpu() - c0
        if log:
            self.log(name)

    def log(self, name: str) -> None:
        """Log a step's time so far."""
        logger.info("routine change: %s took %.1f s (%.1f s of processor time)", name,
                    self.seconds.get(name, 0.0), self.cpu.get(name, 0.0))


def judge_cohort(database_url: str, spec: CohortSpec, rows: Sequence[RollupRows],
                 rule_alerts: Iterable[AlertRow], settings: AlertSettings,
                 ablation_ids: Iterable[int] = (), *,
                 clock: Callable[[], float] = time.monotonic) -> RoutineResult:
    """Load the residents' rows into the (empty, migrated) database at `database_url`, run
    the daily summaries and the learning job day by day, and return its decisions (see the
    module docstring)."""
    steps = _Steps(clock)
    counts: dict[str, int] = {}
    with db.connect(database_url) as conn:
        steps.watch(conn)
        with steps.step("residents"):
            ids = _register(conn, spec, [r.resident_id for r in rows])
        with steps.step("copy"):
            counts.update(_copy(conn, rows, ids))
        with steps.step("rule alerts"):
            counts["alerts"] = _rule_alerts(conn, rule_alerts, ids)
        conn.commit()
    with db.connect(database_url, autocommit=True) as conn:
        steps.watch(conn)
        judged, days = _learn(conn, spec, ids, settings, steps)
        counts["resident_daily"] = _daily_rows(conn)
        with steps.step("ablation"):
            back = {v: k for k, v in ids.items()}
            wanted = [ids[k] for k in ablation_ids if k in ids]
            ablation = _population_only(conn, spec, wanted, back, settings)
        with steps.step("read days"):
            read = _days(conn, spec, back)
    return RoutineResult(judged, ablation, steps.seconds, counts, days, steps.cpu, read)


def _days(conn: db.Conn, spec: CohortSpec, back: dict[int, int]
          ) -> dict[int, list[DayFeatures]]:
    """Every resident's judged days as the job reads them, under the cohort's ids."""
    judged = judged_days(spec)
    found = load_days(conn, back, judged[0] - timedelta(days=WINDOW_DAYS), judged[-1])
    return {back[rid]: recs for rid, recs in found.items()}


def _register(conn: db.Conn, spec: CohortSpec, resident_ids: Sequence[int]) -> dict[int, int]:
    """The site, the residents (cohort id -> database id) and their devices."""
    add_site(conn, SITE, "Evaluation cohort", spec.timezone)
    ids: dict[int, int] = {}
    for rid in resident_ids:
        ids[rid] = add_resident(conn, SITE, f"Cohort resident {rid}")
        resident = build_resident(spec, rid)
        for device_id in resident.home.devices:
            typ = (DeviceType.BED_SENSOR if device_id in resident.home.beds
                   else DeviceType.CALL_BUTTON)
            conn.execute("INSERT INTO devices (id, site_id, resident_id, type, "
                         "credentials_hash) VALUES (%s, %s, %s, %s, '-')",
                         (device_id, SITE, ids[rid], typ.value))
    return ids


def _copy(conn: db.Conn, rows: Sequence[RollupRows], ids: dict[int, int]) -> dict[str, int]:
    """COPY every resident's minute rows and status reports in."""
    vitals = f"COPY vitals_1m ({', '.join(VITALS_COLUMNS)}) FROM STDIN"
    status = f"COPY device_status ({', '.join(STATUS_COLUMNS)}) FROM STDIN"
    with conn.cursor() as cur:
        with cur.copy(vitals) as cp:
            for r in rows:
                cp.write(with_resident(r.vitals, ids[r.resident_id]))
        with cur.copy(status) as cp:
            for r in rows:
                cp.write(with_resident(r.status, ids[r.resident_id]))
    return {"vitals_1m": sum(r.minutes for r in rows),
            "device_status": sum(r.reports for r in rows)}


def _rule_alerts(conn: db.Conn, alerts: Iterable[AlertRow], ids: dict[int, int]) -> int:
    """The run's rule alerts, resolved by the modelled care worker: the learning job leaves
    the days they opened on out of baselines."""
    resolve = timedelta(seconds=RESOLVE_AFTER_S)
    params = [(ids[a.resident_id], SITE, a.type, a.severity or "warning", a.at, a.at,
               a.count, a.at + resolve) for a in alerts
              if a.resident_id in ids and a.type != ROUTINE_CHANGE]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO alerts (resident_id, site_id, type, severity, status, "
                        "opened_at, last_seen, count, resolved_at) "
                        "VALUES (%s, %s, %s, %s, 'resolved', %s, %s, %s, %s)", params)
    return len(params)


def _daily_rows(conn: db.Conn) -> int:
    """Rows in resident_daily."""
    row = conn.execute("SELECT count(*) FROM resident_daily").fetchone()
    return int(row[0]) if row else 0


def judged_days(spec: CohortSpec) -> list[date]:
    """The local days the job judges: each one completed within the period."""
    tz = ZoneInfo(spec.timezone)
    first = spec.start.astimezone(tz).date()
    last = spec.end.astimezone(tz).date() - _DAY
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _learn(conn: db.Conn, spec: CohortSpec, ids: dict[int, int], settings: AlertSettings,
           steps: _Steps) -> tuple[list[Judgement], int]:
    """Each local day in order, as the services would have seen it: the daily summaries with
    the data up to the day's `night_final_at` (12:30 local) and the learning job then (it
    judges the night's features), the summaries with all the day's data and the job at the
    local midnight that ends it (the whole day's features); the decisions of each run."""
    back = {v: k for k, v in ids.items()}
    cfg = LearningSettings(alerts=settings)
    out: list[Judgement] = []
    reported: set[tuple[int, str, date]] = set()
    days = judged_days(spec)
    with conn.transaction():
        rollups.write_watermark(conn, rollups.ROLLUP_JOB, spec.end, spec.end)
    for day in days:
        morning = rollups.night_final_at(day, spec.timezone)
        for data_until, run_at in ((morning, morning), (spec.end, day_end(day, spec.timezone))):
            with steps.step("daily summaries", log=False), conn.transaction():
                # this day's row as the daily summaries job upserts it at `data_until`
                rollups.summarize_days(conn, morning, morning, data_until, data_until)
            with steps.step("learning job", log=False):
                out += _run_job(conn, day, run_at, back, cfg, reported)
    steps.log("daily summaries")
    steps.log("learning job")
    return out, len(days)


def _run_job(conn: db.Conn, day: date, at: datetime, back: dict[int, int],
             cfg: LearningSettings, reported: set[tuple[int, str, date]]) -> list[Judgement]:
    """The learning job with the clock and the daily watermark at `at`, its new decisions
    about `day`; then the modelled care worker resolves the open routine-change alerts."""
    with conn.transaction():
        rollups.write_watermark(conn, DAILY_JOB, at, at)
    run_learning(conn, at, cfg)
    found = [j for j in _decisions(conn, day, at, back)
             if (j.resident_id, j.feature, j.day) not in reported]
    reported.update((j.resident_id, j.feature, j.day) for j in found)
    with conn.transaction():  # the modelled care worker
        conn.execute("UPDATE alerts SET status = 'resolved', resolved_at = opened_at + "
                     "%s * interval '1 second' WHERE type = %s AND status <> 'resolved'",
                     (RESOLVE_AFTER_S, ROUTINE_CHANGE))
    return found


def _decisions(conn: db.Conn, day: date, at: datetime, back: dict[int, int]
               ) -> list[Judgement]:
    """The features the job judged changed on `day` (routine_state.last_alert_day), and
    whether their trigger opened an alert or joined an open one."""
    fired = conn.execute("SELECT resident_id, feature FROM routine_state "
                         "WHERE last_alert_day = %s ORDER BY resident_id, feature",
                         (day,)).fetchall()
    if not fired:
        return []
    # by resident and feature (one alert may name several features, or - should the store
    # keep one per feature - several alerts one each); a repeat's details are the open
    # alert's, so a feature not named falls back to the resident's alerts touched now
    named: dict[tuple[int, str], tuple[bool, str]] = {}
    touched: dict[int, bool] = {}
    for rid, opened, details in conn.execute(
            "SELECT resident_id, opened_at, details FROM alerts WHERE type = %s "
            "AND last_seen = %s ORDER BY id", (ROUTINE_CHANGE, at)).fetchall():
        repeat = opened != at
        touched[int(rid)] = touched.get(int(rid), True) and repeat
        for feat, words in _explanations(details).items():
            named.setdefault((int(rid), feat), (repeat, words))
    out = []
    for rid, feat in fired:
        key = (int(rid), str(feat))
        repeat, words = named.get(key, (touched.get(key[0], False), ""))
        out.append(Judgement(back[key[0]], key[1], day, at, repeat, words))
    return out


def _explanations(details: Any) -> dict[str, str]:
    """Feature -> explanation, from a routine_change alert's details."""
    if not isinstance(details, dict):
        return {}
    changes = details.get("changes") or [details]
    return {str(c.get("feature")): str(c.get("explanation", "")) for c in changes
            if isinstance(c, dict)}


def _population_only(conn: db.Conn, spec: CohortSpec, resident_ids: Sequence[int],
                     back: dict[int, int], settings: AlertSettings) -> list[Judgement]:
    """Routine change with personal baselines off: every day judged against the features'
    population defaults (the routine-change code judges personal baselines only, so the
    default is passed as one)."""
    if not resident_ids:
        return []
    days = judged_days(spec)
    history = load_days(conn, resident_ids, days[0], days[-1])
    rs = routine_settings(settings)
    out: list[Judgement] = []
    for rid, recs in history.items():
        states = {f.name: FeatureState(f.name) for f in PERSON_FEATURES}
        for d in recs:
            out += _judge_population(back[rid], d, states, rs, spec.timezone)
    return out


def decided_at(feature: Feature, day: date, tz: str) -> datetime:
    """When the job judges `feature` of local `day` - the event time of its alert: the
    morning the night is final (night features), the midnight ending the day (the rest)."""
    return (rollups.night_final_at(day, tz) if feature.settles == "morning"
            else day_end(day, tz))


def _judge_population(rid: int, d: DayFeatures, states: dict[str, FeatureState],
                      rs: Any, tz: str) -> list[Judgement]:
    out = []
    for f in PERSON_FEATURES:
        base = replace(population_baseline(f, d.day, window_days=rs.window_days,
                                           gap_days=rs.gap_days), personal=True)
        states[f.name], side, z = judge_feature(states[f.name], f, d, base, rs)
        if side is not None:
            value = d.value(f.name)
            change = RoutineChange(f.name, side, d.day, value if value is not None else 0.0,
                                   base.median, 1, 0.0, z)
            at = decided_at(f, d.day, tz)
            out.append(Judgement(rid, f.name, d.day, at, explanation=change.explanation()))
    return out

"""The multivariate second signal of issue 15: does a resident's last few nights, taken
together, look unlike their own usual? It feeds the duty officer's daily digest, never a
page (docs/alerts.md, "Daily digest").

Per resident, each day is a vector of the person features of alerts/learning/features.py
(PERSON_FEATURES: the one definition the baselines and routine change use too), read by
store.load_days. Training leaves out the days the baselines leave out: poorly covered days (a
failing sensor is not a changed person) and days that raised an alert about the person (a
night in hospital is not their usual). The vectors are standardised robustly against the
resident's own history (median and MAD, with the feature's MAD floor, as in the baselines, so
a habit that never varies, such as no night exits at all, does not turn one exit into
infinity), and a scikit-learn IsolationForest is fitted on them.

Why an IsolationForest and not a robust covariance (MinCovDet / EllipticEnvelope): with
14-90 days and discrete features (night exits are mostly 0, 1 or 2) the covariance is often
singular and its inverse meaningless; people's usual is often not one ellipse either
(weekday and weekend rhythms); an IsolationForest needs neither, and is cheap enough to fit
(under a second per resident). It gives no per-feature attribution, so the words of the
digest come from the robust z-scores of the same standardisation: the features furthest
from usual. Its limit: it does not extrapolate (a night far beyond anything seen scores like
the most extreme usual one), so beside it the squared robust distance (the sum of squared
z-scores) says how far from usual the nights lie.

Both lines are the resident's own: the mean of each measure over the last nights against
its (1 - sensitivity) quantile over the training days; either one above its line makes the
nights unlike usual. `sensitivity` changes the lines only, never the fitted model, so tuning
needs no refit.

Models are fitted off the request path, by the daily job (`run_digest`), with a fixed
random_state: the same days give the same model. Each is saved versioned with the window of
days it saw (table outlier_models, migration 0021); a saved model is reused until it is
REFIT_EVERY old, and a model of another MODEL_VERSION or pickled by another scikit-learn
version is never unpickled (pickles are not portable across versions): it is refitted,
deterministically, from the days still in resident_daily.
"""

from __future__ import annotations

import logging
import pickle
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
from psycopg.types.json import Jsonb

from alerts.config import AlertSettings, OutlierDigestSettings
from alerts.learning import store
from alerts.learning.baselines import MAD_SCALE, robust_stats
from alerts.learning.features import (
    PERSON_FEATURES,
    DayFeatures,
    Feature,
    feature_matrix,
)
from alerts.overrides import resident_settings
from kernel.db import Conn

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest

logger = logging.getLogger(__name__)

# 2: the shared features (features.PERSON_FEATURES, store.load_days) and their MAD floors,
# alerted days left out of training. A saved model of another version is refitted.
MODEL_VERSION = 2
TRAIN_DAYS = 90  # the history a model is fitted on (before the nights it scores)
REFIT_EVERY = timedelta(days=7)
KEEP_VERSIONS = 2  # ~150 kB each (100 trees, zlib): the newest and the one before
RANDOM_STATE = 15  # fixed: the same days always give the same model (issue 15)
N_ESTIMATORS = 100
MAX_REASONS = 3
DIGEST_AFTER_JOB = "resident_daily"  # ingest.jobs.DAILY_JOB: days before it are complete
DIGEST_JOB = "outlier_digest"  # the scheduled job's name (eldercare jobs)


def sklearn_version() -> str:
    """The installed scikit-learn's version. scikit-learn is imported only where a model is
    fitted or loaded (the jobs process), never by the web app that reads the feature list."""
    import sklearn

    return str(sklearn.__version__)


# --- the pure core -------------------------------------------------------------------------

def matrix(days: Sequence[DayFeatures]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Days as rows of the person features, NaN where a value does not count."""
    return feature_matrix(days, PERSON_FEATURES)


def usual_day(d: DayFeatures) -> bool:
    """Whether a day may train a model: the days a baseline counts (well covered, no alert
    about the person opened that day; baselines.counted_values)."""
    return d.well_covered and not d.alerted


@dataclass(frozen=True)
class Scaling:
    """The robust standardisation of one resident: per feature, the median and the spread
    (1.4826 x max(MAD, the feature's mad_floor): baselines.Baseline.sigma's rule)."""

    medians: tuple[float, ...]
    spreads: tuple[float, ...]

    @classmethod
    def of(cls, x: np.ndarray[Any, np.dtype[np.float64]],
           features: Sequence[Feature] = PERSON_FEATURES) -> Scaling:
        """The scaling of the rows `x` (NaN ignored; a feature never measured: 0 ± floor)."""
        medians, spreads = [], []
        for j, feature in enumerate(features):
            med, mad, n = robust_stats(x[:, j])
            medians.append(med if n else 0.0)
            spreads.append(MAD_SCALE * max(mad if n else 0.0, feature.mad_floor))
        return cls(tuple(medians), tuple(spreads))

    def z(self, x: np.ndarray[Any, np.dtype[np.float64]]
          ) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Robust z-scores of the rows `x`; a missing value is taken as usual (z = 0): not
        measured is not abnormal (coverage is checked before)."""
        z = (x - np.array(self.medians)) / np.array(self.spreads)
        return np.asarray(np.nan_to_num(z, nan=0.0), dtype=np.float64)


@dataclass(frozen=True)
class Fitted:
    """A resident's fitted model and everything needed to score with it."""

    scaling: Scaling
    forest: IsolationForest
    train_scores: tuple[float, ...]  # anomaly scores of the training days (higher = odder)
    train_distances: tuple[float, ...]  # their squared robust distances from usual
    window_start: date
    window_end: date
    n_days: int
    features: tuple[str, ...] = tuple(f.name for f in PERSON_FEATURES)
    sklearn_version: str = field(default_factory=lambda: sklearn_version())

    def params(self) -> dict[str, Any]:
        """What is stored beside the pickle (jsonb): enough to explain and to check it."""
        return {"model_version": MODEL_VERSION, "features": list(self.features),
                "medians": list(self.scaling.medians),
                "spreads": list(self.scaling.spreads), "train_scores": list(self.train_scores),
                "train_distances": list(self.train_distances),
                "sklearn_version": self.sklearn_version, "random_state": RANDOM_STATE,
                "n_estimators": N_ESTIMATORS, "pickle": "zlib"}


def anomaly(forest: IsolationForest, z: np.ndarray[Any, np.dtype[np.float64]]
            ) -> np.ndarray[Any, np.dtype[np.float64]]:
    """IsolationForest's anomaly score of each row (about 0.5 usual, towards 1 odd)."""
    return np.asarray(-forest.score_samples(z), dtype=np.float64)


def distance(z: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Each row's squared robust distance from usual (the sum of its squared z-scores): what
    the forest cannot say, how far beyond anything seen a night lies."""
    return np.asarray((z ** 2).sum(axis=1), dtype=np.float64)


def fit(train: Sequence[DayFeatures]) -> Fitted:
    """Fit a resident's model on their usual days (at least two; callers ask for more, and
    leave out the days `usual_day` refuses)."""
    if len(train) < 2:
        raise ValueError("a model needs at least two days")
    x = matrix(train)
    scaling = Scaling.of(x)
    z = scaling.z(x)
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=N_ESTIMATORS, random_state=RANDOM_STATE, n_jobs=1)
    forest.fit(z)
    scores = tuple(round(float(s), 6) for s in anomaly(forest, z))
    distances = tuple(round(float(d), 4) for d in distance(z))
    return Fitted(scaling, forest, scores, distances, train[0].day, train[-1].day, len(train))


@dataclass(frozen=True)
class Reason:
    """One feature that contributes: its recent mean against its usual (median)."""

    feature: str
    recent: float
    usual: float
    z: float


@dataclass(frozen=True)
class Finding:
    """A resident whose last nights look unlike their usual."""

    score: float  # the forest's mean anomaly score of the nights ...
    threshold: float  # ... and the resident's line for it
    distance: float  # the nights' mean squared robust distance ...
    distance_line: float  # ... and the resident's line for it
    nights: tuple[date, ...]
    reasons: tuple[Reason, ...]

    @property
    def strength(self) -> float:
        """How far past its line the stronger of the two signals is (orders the digest)."""
        return max(self.score / self.threshold, self.distance / max(self.distance_line, 1e-9))


def threshold(model: Fitted, sensitivity: float) -> float:
    """The score above which the recent nights are unusual: the (1 - sensitivity) quantile
    of the training days' scores."""
    return float(np.quantile(np.array(model.train_scores), 1.0 - sensitivity))


def distance_line(model: Fitted, sensitivity: float) -> float:
    """The same for the squared robust distance."""
    return float(np.quantile(np.array(model.train_distances), 1.0 - sensitivity))


def reasons(model: Fitted, recent: Sequence[DayFeatures], min_z: float) -> tuple[Reason, ...]:
    """The features furthest from usual over the recent days (mean robust z, at least
    `min_z` away), furthest first."""
    x = matrix(recent)
    out = []
    for j, key in enumerate(model.features):
        col = x[:, j][~np.isnan(x[:, j])]
        if not col.size:
            continue
        mean = float(col.mean())
        z = (mean - model.scaling.medians[j]) / model.scaling.spreads[j]
        if abs(z) >= min_z:
            out.append(Reason(key, round(mean, 3), round(model.scaling.medians[j], 3),
                              round(z, 2)))
    out.sort(key=lambda r: -abs(r.z))
    return tuple(out[:MAX_REASONS])


def score(model: Fitted, recent: Sequence[DayFeatures], cfg: OutlierDigestSettings
          ) -> Finding | None:
    """A finding when the recent days together look unlike the resident's usual, with at
    least one feature to name. Unlike: the forest's mean anomaly score of the nights above
    the resident's line (an unusual *combination*), or their mean squared robust distance
    above its line (a night beyond anything seen, which the forest scores no higher than the
    most extreme usual day, since its splits never reach past the training range)."""
    need = max(1, (cfg.recent_nights + 1) // 2)
    if len(recent) < need:
        return None  # too few good nights lately to say anything
    z = model.scaling.z(matrix(recent))
    mean, line = float(anomaly(model.forest, z).mean()), threshold(model, cfg.sensitivity)
    far, far_line = float(distance(z).mean()), distance_line(model, cfg.sensitivity)
    if mean <= line and far <= far_line:
        return None
    why = reasons(model, recent, cfg.min_z)
    if not why:
        return None  # odd as a whole but nothing a person could be told: leave it out
    return Finding(round(mean, 4), round(line, 4), round(far, 3), round(far_line, 3),
                   tuple(d.day for d in recent), why)


def split(days: Sequence[DayFeatures], digest_day: date, recent_nights: int
          ) -> tuple[list[DayFeatures], list[DayFeatures]]:
    """The training days (before the recent nights, at most TRAIN_DAYS, only usual days:
    well covered, no alert about the person) and the recent nights (the well-covered days
    among the `recent_nights` before `digest_day`), oldest first."""
    recent_from = digest_day - timedelta(days=recent_nights)
    train_from = recent_from - timedelta(days=TRAIN_DAYS)
    train = [d for d in days if train_from <= d.day < recent_from and usual_day(d)]
    recent = [d for d in days if recent_from <= d.day < digest_day and d.well_covered]
    return train, recent


def needs_refit(stored: StoredModel | None, train: Sequence[DayFeatures]) -> bool:
    """Whether to fit a new model: none yet, another MODEL_VERSION, other features or
    scikit-learn version, the
    saved one's window ended REFIT_EVERY before the current window, or after it (a past
    day's digest: that model saw the nights it would score)."""
    if stored is None or not train:
        return True
    params = stored.params
    return ("train_distances" not in params
            or params.get("model_version") != MODEL_VERSION
            or params.get("features") != [f.name for f in PERSON_FEATURES]
            or params.get("sklearn_version") != sklearn_version()
            or stored.window_end < train[-1].day - REFIT_EVERY
            or stored.window_end > train[-1].day)  # it saw the nights now scored (a past day)


# --- storage --------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredModel:
    """A saved model's row, before its pickle is trusted."""

    resident_id: int
    version: int
    fitted_at: datetime
    window_start: date
    window_end: date
    n_days: int
    params: dict[str, Any]
    blob: bytes

    def load(self) -> Fitted:
        """The model; only called when the stored scikit-learn version is ours."""
        from sklearn.ensemble import IsolationForest

        forest = pickle.loads(zlib.decompress(self.blob))  # noqa: S301 (our own table)
        if not isinstance(forest, IsolationForest):
            raise TypeError(f"model {self.resident_id}/{self.version} is not an IsolationForest")
        p = self.params
        return Fitted(Scaling(tuple(p["medians"]), tuple(p["spreads"])), forest,
                      tuple(p["train_scores"]), tuple(p["train_distances"]),
                      self.window_start, self.window_end,
                      self.n_days, tuple(p["features"]), str(p["sklearn_version"]))


def latest_model(conn: Conn, resident_id: int) -> StoredModel | None:
    """The resident's newest saved model, if any."""
    row = conn.execute(
        "SELECT resident_id, model_version, fitted_at, window_start, window_end, n_days, "
        "params, model FROM outlier_models WHERE resident_id = %s "
        "ORDER BY model_version DESC LIMIT 1", (resident_id,)).fetchone()
    if row is None:
        return None
    return StoredModel(row[0], row[1], row[2], row[3], row[4], row[5], dict(row[6]),
                       bytes(row[7]))


def save_model(conn: Conn, resident_id: int, model: Fitted, now: datetime) -> int:
    """Save `model` as the resident's next version (older ones beyond KEEP_VERSIONS are
    dropped); returns the version."""
    with conn.transaction():
        row = conn.execute("SELECT COALESCE(max(model_version), 0) + 1 FROM outlier_models "
                           "WHERE resident_id = %s", (resident_id,)).fetchone()
        version = int(row[0]) if row else 1
        conn.execute(
            "INSERT INTO outlier_models (resident_id, model_version, fitted_at, window_start, "
            "window_end, n_days, params, model) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (resident_id, version, now, model.window_start, model.window_end, model.n_days,
             Jsonb(model.params()), zlib.compress(pickle.dumps(model.forest, protocol=5))))
        conn.execute("DELETE FROM outlier_models WHERE resident_id = %s "
                     "AND model_version <= %s", (resident_id, version - KEEP_VERSIONS))
    return version


# --- the daily job ----------------------------------------------------------------------------

@dataclass
class DigestRun:
    """What one site's digest run did."""

    site_id: str
    day: date
    written: bool = False
    scored: int = 0
    skipped: int = 0
    fitted: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)


def model_for(conn: Conn, resident_id: int, train: Sequence[DayFeatures], now: datetime
              ) -> tuple[Fitted, bool]:
    """The resident's model for this window: the saved one, or a new fit (saved); and
    whether it was fitted now."""
    stored = latest_model(conn, resident_id)
    if stored is not None and not needs_refit(stored, train):
        return stored.load(), False
    model = fit(train)
    version = save_model(conn, resident_id, model, now)
    logger.info("outlier model of resident %d: version %d on %s..%s (%d days)", resident_id,
                version, model.window_start, model.window_end, model.n_days)
    return model, True


def resident_entry(conn: Conn, resident_id: int, cfg: OutlierDigestSettings,
                   digest_day: date, now: datetime, run: DigestRun) -> None:
    """Score one resident for the digest of `digest_day`, fitting first when needed."""
    if not cfg.enabled:
        run.skipped += 1
        return
    since = digest_day - timedelta(days=cfg.recent_nights + TRAIN_DAYS)
    days = store.load_days(conn, [resident_id], since, digest_day - timedelta(days=1))
    train, recent = split(days.get(resident_id, []), digest_day, cfg.recent_nights)
    if len(train) < cfg.min_nights:
        run.skipped += 1
        return
    model, fitted = model_for(conn, resident_id, train, now)
    run.fitted += fitted
    run.scored += 1
    finding = score(model, recent, cfg)
    if finding is not None:
        run.entries.append(entry_json(resident_id, finding))


def entry_json(resident_id: int, finding: Finding) -> dict[str, Any]:
    """A finding as stored in outlier_digests.entries (numbers and keys, no words: the API
    words them in the reader's language)."""
    return {"resident_id": resident_id, "score": finding.score,
            "threshold": finding.threshold, "distance": finding.distance,
            "distance_line": finding.distance_line, "strength": round(finding.strength, 4),
            "nights": [d.isoformat() for d in finding.nights],
            "reasons": [{"feature": r.feature, "recent": r.recent, "usual": r.usual, "z": r.z}
                        for r in finding.reasons]}


def digest_day(done_until: datetime, zone: str) -> date:
    """The day whose digest is due: the site's local date at `done_until` (every day before
    it has been summarised)."""
    return done_until.astimezone(ZoneInfo(zone)).date()


def run_site(conn: Conn, base: AlertSettings, site_id: str, day: date, now: datetime,
             *, force: bool = False) -> DigestRun:
    """Write the digest of `site_id` for `day` (once; `force` recomputes it)."""
    run = DigestRun(site_id, day)
    if not force and conn.execute("SELECT 1 FROM outlier_digests WHERE site_id = %s AND "
                                  "day = %s", (site_id, day)).fetchone():
        return run
    residents = conn.execute("SELECT id FROM residents WHERE site_id = %s AND active "
                             "ORDER BY id", (site_id,)).fetchall()
    for (rid,) in residents:
        try:
            resident_entry(conn, rid, resident_settings(conn, base, rid).outlier_digest, day,
                           now, run)
        except Exception:  # one resident's bad data must not cost the site its digest
            logger.exception("outlier digest: resident %d of %s failed", rid, site_id)
            run.skipped += 1
    run.entries.sort(key=lambda e: -float(e["strength"]))
    with conn.transaction():
        conn.execute(
            "INSERT INTO outlier_digests (site_id, day, computed_at, scored, skipped, entries) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (site_id, day) DO UPDATE SET "
            "computed_at = EXCLUDED.computed_at, scored = EXCLUDED.scored, "
            "skipped = EXCLUDED.skipped, entries = EXCLUDED.entries",
            (site_id, day, now, run.scored, run.skipped, Jsonb(run.entries)))
    run.written = True
    logger.info("outlier digest %s %s: %d of %d residents unlike their usual (%d fitted)",
                site_id, day, len(run.entries), run.scored, run.fitted)
    return run


def run_digest(conn: Conn, now: datetime, base: AlertSettings | None = None,
               *, force: bool = False) -> list[DigestRun]:
    """The scheduled job: for each site, the digest of the newest day whose previous days
    are all summarised (after the daily rollup, job_watermarks 'resident_daily'); a day
    already written is left alone, so the job runs as often as it likes."""
    row = conn.execute("SELECT done_until FROM job_watermarks WHERE job = %s",
                       (DIGEST_AFTER_JOB,)).fetchone()
    if row is None:
        return []  # no daily summaries yet
    base = base or AlertSettings()
    sites = conn.execute("SELECT id, timezone FROM sites ORDER BY id").fetchall()
    return [run_site(conn, base, site, digest_day(row[0], zone), now, force=force)
            for site, zone in sites]


def digest_job(base: AlertSettings) -> Callable[[Conn, datetime, object], list[DigestRun]]:
    """`run_digest` with the scheduler's job signature (ingest.jobs.JobFn), on the
    platform's alert settings (`base`) under each site's and resident's overrides."""
    def job(conn: Conn, now: datetime, _cfg: object) -> list[DigestRun]:
        return run_digest(conn, now, base)
    return job

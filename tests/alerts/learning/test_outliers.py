"""The outlier digest's pure core: a resident whose last nights shift on two features is
flagged with those features named; a steady one is not; the same days give the same model;
too little history or a switched-off resident gives nothing."""

from __future__ import annotations

import pickle
from datetime import date, timedelta

import numpy as np
import pytest

from alerts.config import OutlierDigestSettings
from alerts.learning import outliers
from alerts.learning.features import PERSON_FEATURES, DayFeatures

DIGEST_DAY = date(2026, 3, 1)
KEYS = [f.name for f in PERSON_FEATURES]


def day_of(day: date, values: dict[str, float | None], *, coverage: float = 1.0,
           alerted: bool = False) -> DayFeatures:
    """A resident's day with these person features (the others not measured)."""
    return DayFeatures(1, day, values, coverage, alerted)


def history(seed: int, n: int = 60, shift: dict[str, float] | None = None,
            shifted_nights: int = 3) -> list[DayFeatures]:
    """`n` days before DIGEST_DAY of an ordinary resident (rise ~07:00, 8.5 h in bed, about
    one night exit); the last `shifted_nights` moved by `shift` (feature -> added value)."""
    rng = np.random.default_rng(seed)
    days = []
    for i in range(n):
        day = DIGEST_DAY - timedelta(days=n - i)
        values: dict[str, float | None] = {
            "rise_time": 420 + rng.normal(0, 15),
            "time_in_bed_s": (8.5 + rng.normal(0, 0.4)) * 3600,
            "night_exits": float(rng.poisson(1.0)), "resting_hr": 60 + rng.normal(0, 2),
            "median_rr": 15 + rng.normal(0, 0.8), "restlessness": 10 + rng.normal(0, 2)}
        if shift and i >= n - shifted_nights:
            for key, delta in shift.items():
                values[key] = float(values[key] or 0.0) + delta
        days.append(day_of(day, values))
    return days


def run(days: list[DayFeatures], cfg: OutlierDigestSettings | None = None
        ) -> outliers.Finding | None:
    cfg = cfg or OutlierDigestSettings()
    train, recent = outliers.split(days, DIGEST_DAY, cfg.recent_nights)
    if not cfg.enabled or len(train) < cfg.min_nights:
        return None
    return outliers.score(outliers.fit(train), recent, cfg)


WORSE = {"rise_time": 150.0, "night_exits": 4.0}  # up 2.5 h later, four more exits
# 3 robust spreads of rise time (1.4826 x its 15 min MAD floor, as the baselines) and two
# more night exits (1.35 spreads of Poisson(1) exits)
MODERATE = {"rise_time": 67.0, "night_exits": 2.0}


def test_last_nights_shifted_on_two_features_are_flagged_with_those_features() -> None:
    finding = run(history(1, shift=WORSE))
    assert finding is not None
    assert finding.score > finding.threshold
    assert {r.feature for r in finding.reasons[:2]} == {"rise_time", "night_exits"}
    rise = next(r for r in finding.reasons if r.feature == "rise_time")
    assert rise.recent > rise.usual + 100 and rise.z > 2
    assert finding.nights == tuple(DIGEST_DAY - timedelta(days=k) for k in (3, 2, 1))


@pytest.mark.parametrize("seed", range(12))
def test_a_steady_resident_is_not_flagged(seed: int) -> None:
    assert run(history(seed)) is None


@pytest.mark.parametrize("seed", range(6))
def test_the_shift_is_found_whatever_the_noise(seed: int) -> None:
    assert run(history(100 + seed, shift=WORSE)) is not None
    assert run(history(300 + seed, shift=MODERATE)) is not None


def test_fitting_is_deterministic() -> None:
    train, recent = outliers.split(history(7, shift=WORSE), DIGEST_DAY, 3)
    a, b = outliers.fit(train), outliers.fit(train)
    assert a.train_scores == b.train_scores
    assert a.scaling == b.scaling
    z = a.scaling.z(outliers.matrix(recent))
    assert list(outliers.anomaly(a.forest, z)) == list(outliers.anomaly(b.forest, z))
    again = pickle.loads(pickle.dumps(a.forest))  # noqa: S301 (our own bytes)
    assert list(outliers.anomaly(again, z)) == list(outliers.anomaly(a.forest, z))


def test_too_little_history_gives_nothing() -> None:
    days = history(3, n=16, shift=WORSE)  # 13 usual nights + 3 recent: under 14
    assert run(days) is None
    assert run(history(3, n=40, shift=WORSE)) is not None  # with history, it is found


def test_switched_off_gives_nothing() -> None:
    assert run(history(1, shift=WORSE), OutlierDigestSettings(enabled=False)) is None


def test_sensitivity_moves_the_line_not_the_model() -> None:
    train, _ = outliers.split(history(5, shift={"rise_time": 45.0}), DIGEST_DAY, 3)
    model = outliers.fit(train)
    assert outliers.threshold(model, 0.01) >= outliers.threshold(model, 0.2)


def test_a_habit_that_never_varies_does_not_explode() -> None:
    """No night exit on any usual night: one exit is 1/(1.4826 x 0.5) robust SDs (the
    feature's MAD floor, as in the baselines), not infinity; a missing value counts as
    usual."""
    days = [day_of(d.day, {**d.values, "night_exits": 0.0, "resting_hr": None})
            for d in history(9)]
    model = outliers.fit(days[:-3])
    z = model.scaling.z(outliers.matrix([day_of(DIGEST_DAY, {
        "rise_time": 420.0, "time_in_bed_s": 8.5 * 3600, "night_exits": 1.0,
        "median_rr": 15.0, "restlessness": 10.0})]))
    assert z[0][KEYS.index("night_exits")] == pytest.approx(1 / (1.4826 * 0.5))
    assert z[0][KEYS.index("resting_hr")] == 0.0
    assert z[0][KEYS.index("bedtime")] == 0.0  # never measured: usual


def test_training_leaves_out_alerted_and_poorly_covered_days_as_baselines_do() -> None:
    """A night in hospital (alert opened) and a night the mat barely reported are not the
    person's usual: they train no model; a poorly covered recent night is not scored."""
    days = history(4)
    odd = {**days[10].values, "rise_time": 900.0}
    days[10] = day_of(days[10].day, odd, alerted=True)
    days[20] = day_of(days[20].day, odd, coverage=0.5)
    days[-1] = day_of(days[-1].day, days[-1].values, coverage=0.5)
    train, recent = outliers.split(days, DIGEST_DAY, 3)
    assert days[10] not in train and days[20] not in train
    assert len(train) == 57 - 2
    assert [d.day for d in recent] == [DIGEST_DAY - timedelta(days=k) for k in (3, 2)]
    assert outliers.fit(train).scaling.medians[KEYS.index("rise_time")] < 480


def test_too_few_recent_nights_gives_nothing() -> None:
    days = history(1, shift=WORSE)
    assert run(days[:-2]) is None  # only one of the last three nights had good data


def test_refit_when_the_features_or_version_change() -> None:
    train, _ = outliers.split(history(2), DIGEST_DAY, 3)
    model = outliers.fit(train)
    stored = outliers.StoredModel(1, 1, None, model.window_start, model.window_end,  # type: ignore[arg-type]
                                  model.n_days, model.params(), b"")
    assert not outliers.needs_refit(stored, train)
    assert outliers.needs_refit(stored, [*train, day_of(train[-1].day + timedelta(days=8),
                                                        train[-1].values)])
    older = outliers.StoredModel(1, 1, None, model.window_start, model.window_end,  # type: ignore[arg-type]
                                 model.n_days, {**model.params(), "sklearn_version": "0.1"},
                                 b"")
    assert outliers.needs_refit(older, train)
    version_1 = {**model.params(), "model_version": 1}  # the digest's own feature list
    assert outliers.needs_refit(outliers.StoredModel(
        1, 1, None, model.window_start, model.window_end, model.n_days, version_1, b""),  # type: ignore[arg-type]
        train)
    fewer = {**model.params(), "features": KEYS[:-1]}
    assert outliers.needs_refit(outliers.StoredModel(
        1, 1, None, model.window_start, model.window_end, model.n_days, fewer, b""),  # type: ignore[arg-type]
        train)


@pytest.mark.parametrize("seed", range(6))
def test_one_feature_far_beyond_usual_is_flagged_too(seed: int) -> None:
    """Up 1.5 h later three nights running: the forest alone scores this no higher than the
    most extreme usual day (its splits stop at the training range); the distance sees it."""
    finding = run(history(200 + seed, shift={"rise_time": 90.0}))
    assert finding is not None
    assert finding.reasons[0].feature == "rise_time"
    assert finding.distance > finding.distance_line


def test_a_model_saved_without_distances_is_refitted() -> None:
    train, _ = outliers.split(history(2), DIGEST_DAY, 3)
    model = outliers.fit(train)
    params = {k: v for k, v in model.params().items() if k != "train_distances"}
    stored = outliers.StoredModel(1, 1, None, model.window_start, model.window_end,  # type: ignore[arg-type]
                                  model.n_days, params, b"")
    assert outliers.needs_refit(stored, train)


def test_a_model_that_saw_the_scored_nights_is_not_used() -> None:
    """A past day's digest (eldercare alerts digest --day): a newer model's window holds
    the nights to score, so it is refitted on the days before them."""
    train, _ = outliers.split(history(2), DIGEST_DAY, 3)
    model = outliers.fit(train)
    stored = outliers.StoredModel(1, 1, None, model.window_start, model.window_end,  # type: ignore[arg-type]
                                  model.n_days, model.params(), b"")
    assert outliers.needs_refit(stored, train[:-2])

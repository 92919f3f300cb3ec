"""How often the outlier digest (alerts/learning/outliers.py) lists a synthetic resident:
the measured rates quoted in docs/alerts.md ("Daily digest"). Pure: no services, no clock.

Each resident has 60 days before the digest day from the unit tests' generator
(tests/alerts/learning/test_outliers.py `history`: rise ~07:00 ± 15 min, 8.5 ± 0.4 h in
bed, Poisson(1) night exits, resting heart rate 60 ± 2, breathing 15 ± 0.8, restlessness
10 ± 2; the other person features not measured), the last three nights moved by the
scenario's shift; default settings (sensitivity 0.05).

Run: `.venv/bin/python -m benchmarks.outlier_rates [--residents 100]`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta

import numpy as np

from alerts.config import OutlierDigestSettings
from alerts.learning import outliers
from alerts.learning.features import DayFeatures

DIGEST_DAY = date(2026, 3, 1)
SCENARIOS: dict[str, dict[str, float]] = {
    "steady": {},
    "up 1 h later": {"rise_time": 60.0},
    "resting heart rate +8/min": {"resting_hr": 8.0},
    "up 45 min later, two more night exits": {"rise_time": 45.0, "night_exits": 2.0},
    # three of the shared robust spreads of rise time (1.4826 x its 15 min MAD floor)
    "up 67 min later, two more night exits": {"rise_time": 67.0, "night_exits": 2.0},
    "up 1.5 h later": {"rise_time": 90.0},
}


def history(seed: int, shift: dict[str, float], n: int = 60,
            shifted: int = 3) -> list[DayFeatures]:
    """The unit tests' generator (see the module docstring)."""
    rng = np.random.default_rng(seed)
    days = []
    for i in range(n):
        values: dict[str, float | None] = {
            "rise_time": 420 + rng.normal(0, 15),
            "time_in_bed_s": (8.5 + rng.normal(0, 0.4)) * 3600,
            "night_exits": float(rng.poisson(1.0)), "resting_hr": 60 + rng.normal(0, 2),
            "median_rr": 15 + rng.normal(0, 0.8), "restlessness": 10 + rng.normal(0, 2)}
        if i >= n - shifted:
            for key, delta in shift.items():
                values[key] = float(values[key] or 0.0) + delta
        days.append(DayFeatures(1, DIGEST_DAY - timedelta(days=n - i), values, 1.0))
    return days


def listed(days: list[DayFeatures], cfg: OutlierDigestSettings) -> tuple[bool, bool]:
    """(listed by the digest, listed by the forest's line alone)."""
    train, recent = outliers.split(days, DIGEST_DAY, cfg.recent_nights)
    model = outliers.fit(train)
    finding = outliers.score(model, recent, cfg)
    z = model.scaling.z(outliers.matrix(recent))
    forest = (float(outliers.anomaly(model.forest, z).mean())
              > outliers.threshold(model, cfg.sensitivity)
              and bool(outliers.reasons(model, recent, cfg.min_z)))
    return finding is not None, forest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=100)
    args = parser.parse_args()
    cfg = OutlierDigestSettings()
    for offset, (name, shift) in enumerate(SCENARIOS.items()):
        both = forest = 0
        for seed in range(args.residents):
            a, b = listed(history(1000 * (offset + 1) + seed, shift), cfg)
            both += a
            forest += b
        sys.stdout.write(f"{name}: listed {100 * both / args.residents:.0f} % "
                         f"(forest alone {100 * forest / args.residents:.0f} %)\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

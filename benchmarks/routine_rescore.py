"""Re-judge routine change on a saved cohort (a developer's loop, not product code).

`eldercare eval ... --save-routine DIR` saves the database phase's input (the workers'
minute rows, the rule alerts, the learned habits). This runs only that phase again - a
throwaway PostgreSQL, the daily summaries SQL, the learning job day by day - with the code
and settings of the checkout, and prints routine change's scores (recall, median delay
from onset, false alerts per 30 resident-days, false by feature):

    python -m benchmarks.routine_rescore DIR [--ablation] [--json OUT]

A few minutes on the default cohort instead of the whole run (docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alerts.config import AlertSettings
from eldercare.evaluation import routine_db
from eldercare.evaluation.labels import ROUTINE_CHANGE, cohort_truth, habits_from
from eldercare.evaluation.scoring import score
from simulators.cohort import build_cohort

DAY_S = 86400.0


def rescore(directory: Path, ablation: bool = False) -> dict[str, Any]:
    """Judge the saved input again; routine change's figures."""
    saved = routine_db.load_inputs(directory)
    spec, base = saved.spec, AlertSettings()
    ablated = range(1, saved.ablation_residents + 1) if ablation else range(0)
    with routine_db.throwaway_database() as url:
        result = routine_db.judge_cohort(url, spec, saved.rows, saved.rule_alerts, base,
                                         ablated)
    truth = cohort_truth(build_cohort(spec).residents, spec, base, habits_from(saved.habits))
    alerts = saved.rule_alerts + result.alerts()
    s = score(alerts, truth.labels, truth.excusals, spec.resident_days, spec.residents,
              [ROUTINE_CHANGE], saved.repeats + result.repeats()).by_type[ROUTINE_CHANGE]
    false = _false_by_feature(result, truth.labels)
    delay = s.delay_median_s
    return {
        "residents": spec.residents, "days": spec.days, "seed": spec.seed,
        "owed": s.owed, "detected": s.detected, "recall": s.recall,
        "median_delay_days": None if delay is None else delay / DAY_S,
        "false": s.false_alerts,
        "false_per_30": s.false_alerts / spec.resident_days * 30,
        "false_by_feature": false, "seconds": result.seconds,
    }


def _false_by_feature(result: routine_db.RoutineResult, labels: Sequence[Any]
                      ) -> dict[str, int]:
    """Alerts outside every routine-change label's window, by feature (an approximation of
    the scorer's matching, for finding where false alerts come from)."""
    owed = [lab for lab in labels if lab.alert_type == ROUTINE_CHANGE and lab.expected]
    out: Counter[str] = Counter()
    for j in result.judgements:
        if not j.repeat and not any(lab.matches(j.resident_id, ROUTINE_CHANGE, j.at,
                                                j.feature) for lab in owed):
            out[j.feature] += 1
    return dict(out.most_common())


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.routine_rescore",
                                 description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("directory", type=Path)
    ap.add_argument("--ablation", action="store_true",
                    help="also judge the saved ablation residents with population defaults")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    figures = rescore(args.directory, args.ablation)
    text = json.dumps(figures, indent=2, default=str)
    sys.stdout.write(text + "\n")
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

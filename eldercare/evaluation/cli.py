"""`eldercare eval`: run the labelled cohort through the detection code and write the report."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eldercare.admin.audited import unaudited
from simulators.cohort import (
    DEFAULT_DAYS,
    DEFAULT_RESIDENTS,
    DEFAULT_TELEMETRY_PERIOD_S,
    CohortSpec,
)

Add = Callable[..., argparse.ArgumentParser]
DEFAULT_OUT = Path("data/evaluation")


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def register(sub: Any, add: Add) -> None:
    """Add `eval` to the CLI."""
    sp = add("eval", cmd_eval, "score the detectors on a labelled simulated cohort and write "
                               "a report (see docs/evaluation.md)", sub)
    sp.add_argument("--residents", type=_positive, default=DEFAULT_RESIDENTS)
    sp.add_argument("--days", type=_positive, default=DEFAULT_DAYS)
    sp.add_argument("--seed", type=int, default=1)
    sp.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"report directory (default {DEFAULT_OUT})")
    sp.add_argument("--e2e-sample", type=int, default=0, metavar="N",
                    help="also replay N residents x 1 day through MQTT and the pipeline and "
                         "compare their decisions with the direct run (needs the embedded "
                         "broker and database, as `eldercare demo` starts them)")
    sp.add_argument("--jobs", type=_positive, help="worker processes (default: one per core)")
    sp.add_argument("--ablation-residents", type=_positive, metavar="N",
                    help="run the ablation on residents 1..N only (default: all; each "
                         "ablation costs about one more detector pass)")
    sp.add_argument("--telemetry-period", type=float, default=DEFAULT_TELEMETRY_PERIOD_S,
                    help="seconds between bed readings (default %(default)s)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.add_argument("--no-routine", action="store_true",
                    help="skip routine change (its database phase: a throwaway PostgreSQL, "
                         "the daily summaries and the learning job); a quick run of the "
                         "rule detectors")
    sp.add_argument("--save-routine", type=Path, metavar="DIR",
                    help="also save the routine-change phase's input (the workers' minute "
                         "rows, the rule alerts, the learned habits) to DIR, to re-judge it "
                         "without re-running the cohort: `python -m benchmarks "
                         "routine_rescore DIR`")


@unaudited("reads and writes only simulated data and report files, no person's record")
def cmd_eval(args: argparse.Namespace) -> int:
    """Build the cohort, run it, score it, write the report."""
    from eldercare.evaluation.harness import evaluate
    from eldercare.evaluation.report import write_report

    if args.telemetry_period <= 0:
        print("error: --telemetry-period must be positive", file=sys.stderr)
        return 2
    spec = CohortSpec(residents=args.residents, days=args.days, seed=args.seed,
                      telemetry_period_s=args.telemetry_period)
    ev = evaluate(spec, jobs=args.jobs, progress=not args.no_progress,
                  ablation_residents=args.ablation_residents, routine=not args.no_routine,
                  save_routine=args.save_routine)
    if args.e2e_sample:
        from eldercare.evaluation.e2e import run_sample

        ev.e2e = run_sample(args, spec, args.e2e_sample)
    command = "eldercare eval " + " ".join(shlex.quote(a) for a in _shown_args(args))
    paths = write_report(ev, args.out, command)
    for p in paths:
        print(p)
    return 0


def _shown_args(args: argparse.Namespace) -> list[str]:
    out = [f"--residents={args.residents}", f"--days={args.days}", f"--seed={args.seed}"]
    if args.telemetry_period != DEFAULT_TELEMETRY_PERIOD_S:
        out.append(f"--telemetry-period={args.telemetry_period:g}")
    if args.ablation_residents:
        out.append(f"--ablation-residents={args.ablation_residents}")
    if args.e2e_sample:
        out.append(f"--e2e-sample={args.e2e_sample}")
    if args.no_routine:
        out.append("--no-routine")
    return out

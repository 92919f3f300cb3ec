"""`eldercare eval` end to end on a small cohort: the report files, the targets, the
ablation rows, and the routine-change rows: left empty with `--no-routine`, filled in by
the database phase otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eldercare.cli import main
from eldercare.evaluation.harness import evaluate
from eldercare.evaluation.report import LABELS, PLOTS, REPORT, TRUTH, write_report
from kernel import db
from simulators.cohort import CohortSpec
from tests.support.rollups import ROLLUP_TABLES


def test_a_small_cohort_writes_the_report(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["eval", "--residents", "3", "--days", "10", "--seed", "1", "--out", str(out),
                 "--jobs", "2", "--ablation-residents", "1", "--no-progress",
                 "--no-routine"]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in written) == sorted([REPORT, *PLOTS, TRUTH, LABELS])
    labels = [json.loads(line) for line in (out / LABELS).read_text().splitlines()]
    assert {row["kind"] for row in labels} >= {"owed", "control"}
    assert all(row["window_start"] <= row["window_end"] for row in labels)
    assert (out / TRUTH).read_text().count("\n") > 3 * 18
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / REPORT).read_text()
    assert "**Not the default cohort**: 3 residents x 10 days" in text
    assert "| sos recall | 100 % | 100.0 % | **pass** |" in text
    assert ("| routine change: recall | >= 80 % | – | not judged (--no-routine) | – |"
            in text)
    assert "| routine_change | 0 | not judged (--no-routine) |" in text
    assert "`eldercare eval --residents=3 --days=10 --seed=1 --ablation-residents=1 " \
           "--no-routine`" in text
    for variant in ("as configured", "persistence off", "hysteresis off",
                    "deduplication off", "personal baselines off | not wired"):
        assert f"| {variant}" in text
    assert "On residents 1–1 (10 resident-days; `--ablation-residents`)" in text
    assert "Not run (`--e2e-sample 0`)." in text


@pytest.mark.slow
def test_routine_change_is_judged_in_the_database(clean_db: str, owner_url: str,
                                                  tmp_path: Path) -> None:
    with db.connect(owner_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {ROLLUP_TABLES}")
    spec = CohortSpec(residents=2, days=32, seed=1)
    ev = evaluate(spec, jobs=2, progress=False, ablation_residents=1, database_url=clean_db)
    assert ev.routine is not None and ev.routine_wired
    assert ev.routine.days_judged == 32
    assert ev.routine.rows["resident_daily"] >= 2 * 32
    write_report(ev, tmp_path, "eldercare eval --residents=2 --days=32")
    text = (tmp_path / REPORT).read_text()
    assert "not wired" not in text
    assert "- Routine change: the services' daily summaries and learning job" in text
    assert "## Routine change (gradual changes, the learning job)" in text
    assert "| personal baselines off | " in text
    # Why the delay is what it is: the same days judged again with lower thresholds.
    assert ev.delay_limits is not None
    assert [r.threshold for r in ev.delay_limits.rows] == [2.0, 1.75, 1.5, 1.25]
    assert "### What a shorter delay costs" in text
    assert "| 2 (default) | " in text
    for row in ("routine change: median delay from onset",
                "routine change: false alerts per 30 resident-days"):
        line = next(x for x in text.splitlines() if x.startswith(f"| {row} |"))
        assert "**pass**" in line or "**MISS**" in line or "nothing detected" in line


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--residents", "0"])
    assert "must be at least 1" in capsys.readouterr().err

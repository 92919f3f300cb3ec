"""`eldercare eval` end to end on a small cohort: the report files, the targets, the
ablation rows and the routine-change rows left "not wired"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eldercare.cli import main
from eldercare.evaluation.report import LABELS, PLOTS, REPORT, TRUTH


def test_a_small_cohort_writes_the_report(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["eval", "--residents", "3", "--days", "10", "--seed", "1", "--out", str(out),
                 "--jobs", "2", "--ablation-residents", "1", "--no-progress"]) == 0
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
    assert "| routine change: recall | >= 80 % | – | not wired | – |" in text
    assert "| routine_change | 0 | not wired |" in text
    for variant in ("as configured", "persistence off", "hysteresis off",
                    "deduplication off", "personal baselines off | not wired"):
        assert f"| {variant}" in text
    assert "On residents 1–1 (10 resident-days; `--ablation-residents`)" in text
    assert "Not run (`--e2e-sample 0`)." in text


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--residents", "0"])
    assert "must be at least 1" in capsys.readouterr().err

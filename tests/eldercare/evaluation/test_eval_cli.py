"""`eldercare eval` end to end on a small cohort: the report files, the targets, the
ablation rows and the routine-change rows left "not wired"."""

from __future__ import annotations

from pathlib import Path

import pytest

from eldercare.cli import main
from eldercare.evaluation.report import PLOTS, REPORT


def test_a_small_cohort_writes_the_report(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["eval", "--residents", "3", "--days", "10", "--seed", "1", "--out", str(out),
                 "--jobs", "2", "--no-progress"]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in written) == sorted([REPORT, *PLOTS])
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
    assert "Not run (`--e2e-sample 0`)." in text


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--residents", "0"])
    assert "must be at least 1" in capsys.readouterr().err

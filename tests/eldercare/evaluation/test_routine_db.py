"""Routine change judged through the services' daily summaries and learning job, on the
real database, from per-minute rows as the workers hand them over."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from random import Random
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from alerts.config import AlertSettings
from eldercare.evaluation.minutes import MinuteRow, RollupRows, vitals_copy
from eldercare.evaluation.routine_db import judge_cohort, judged_days, load_inputs, save_inputs
from eldercare.evaluation.rows import AlertRow
from kernel import db
from simulators.cohort import CohortSpec
from tests.support.rollups import ROLLUP_TABLES

SPEC = CohortSpec(residents=2, days=45, seed=1)
ONSET_DAY = 30  # resident 1's night exits go from one to four a night from this night on


def minutes(spec: CohortSpec, rise_h: float, exits: int) -> list[MinuteRow]:
    """A resident in bed from 22:00 to `rise_h` (local, a few minutes' jitter), out of bed
    for 6 minutes once a night (at 02:00), and `exits` times a night from ONSET_DAY."""
    tz = ZoneInfo(spec.timezone)
    rng = Random(7)
    out: list[MinuteRow] = []
    t = spec.start
    first = spec.start.astimezone(tz).date()
    plan: dict[object, tuple[datetime, datetime, list[datetime]]] = {}
    while t < spec.end:
        local = t.astimezone(tz)
        night = (local - timedelta(hours=12)).date()  # the night starting that evening
        if night not in plan:
            bed = datetime.combine(night, datetime.min.time(), tz) + timedelta(
                hours=22, minutes=rng.randint(-10, 10))
            rise = bed - timedelta(hours=22) + timedelta(days=1, hours=rise_h,
                                                         minutes=rng.randint(-10, 10))
            n = exits if (night - first).days >= ONSET_DAY else 1
            outs = [bed + timedelta(hours=4 + i) for i in range(n)]
            plan[night] = (bed, rise, outs)
        bed, rise, outs = plan[night]
        in_bed = bed <= t < rise and not any(o <= t < o + timedelta(minutes=6) for o in outs)
        hr = 58.0 + rng.random() if in_bed else None
        rr = 14.0 + rng.random() if in_bed else None
        out.append(MinuteRow(t, hr, hr, hr, rr, rr, rr, 3.0 if in_bed else 0.0,
                             1.0 if in_bed else 0.0, 6, 6 if in_bed else 0, 6 if in_bed else 0))
        t += timedelta(minutes=1)
    return out


def rows(rid: int, ms: list[MinuteRow]) -> RollupRows:
    return RollupRows(rid, vitals_copy(ms), b"", len(ms), 0)


@pytest.mark.slow
def test_more_night_exits_raise_a_routine_change_through_the_learning_job(
        clean_db: str, owner_url: str) -> None:
    with db.connect(owner_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {ROLLUP_TABLES}")
    data = [rows(1, minutes(SPEC, 6.5, exits=4)), rows(2, minutes(SPEC, 9.0, exits=1))]
    # an alert about the person on day 5 of resident 2 (left out of its baselines)
    alerted = SPEC.start + timedelta(days=5, hours=2)
    result = judge_cohort(clean_db, SPEC, data,
                          [AlertRow(2, "not_up", alerted, "warning")], AlertSettings(), [2])
    first = judged_days(SPEC)[0]
    assert result.days_judged == len(judged_days(SPEC)) == SPEC.days
    assert result.rows["vitals_1m"] == sum(r.minutes for r in data)
    assert result.rows["resident_daily"] >= 2 * SPEC.days
    exits = [j for j in result.judgements if j.feature == "night_exits"]
    assert exits and {j.resident_id for j in exits} == {1}
    delay = (exits[0].day - first).days - ONSET_DAY
    assert 0 <= delay <= 3
    # the rise at 06:30, before the night ends at 07:00, is no night exit (no return to bed)
    assert exits[0].explanation.startswith("Night exits 4.0 vs usual 1.0")
    # judged the same morning: the alert's event time is when the night was final, 12:30
    assert exits[0].at == datetime.combine(exits[0].day, time(12, 30), ZoneInfo(SPEC.timezone))
    for j in result.judgements:  # the whole day's features after its midnight
        end = datetime.combine(j.day + timedelta(days=1), time(0), ZoneInfo(SPEC.timezone))
        assert j.at == (end if j.feature in ("time_in_bed_s", "away_s") else
                        datetime.combine(j.day, time(12, 30), ZoneInfo(SPEC.timezone)))
    assert not exits[0].repeat
    assert all(j.resident_id == 1 for j in result.judgements)  # the late riser is usual
    # personal baselines off: against the population's 06:00, the late riser alarms
    late = [j for j in result.ablation if j.feature == "rise_time"]
    assert late and all(j.resident_id == 2 for j in result.ablation)
    with db.connect(clean_db) as conn:
        n = conn.execute("SELECT count(*) FROM alerts WHERE type = 'routine_change' "
                         "AND status = 'resolved'").fetchone()
    opened = {(j.resident_id, j.at) for j in result.judgements if not j.repeat}
    assert n is not None and n[0] == len(opened)


def test_the_database_phase_input_is_saved_and_loaded_for_re_judging(tmp_path: Path) -> None:
    """`eldercare eval --save-routine DIR`: the rows, the default variant's rule alerts and
    repeats (no routine change: that is what is re-judged), the habits, the ablation size."""
    at = SPEC.start + timedelta(days=3)
    run = SimpleNamespace(
        resident_id=1, rollups={"routine_change": rows(1, minutes(SPEC, 6.5, exits=1)[:90])},
        alerts={"as_configured": [AlertRow(1, "not_up", at, "warning"),
                                  AlertRow(1, "routine_change", at, "warning")],
                "other": [AlertRow(1, "fall", at, "critical")]},
        repeats={"as_configured": [AlertRow(1, "not_up", at + timedelta(hours=1))]},
        habits=[(date(2026, 1, 2), time(6, 30), 57600.0)])
    save_inputs(tmp_path, SPEC, [run], "as_configured", 1)
    saved = load_inputs(tmp_path)
    assert saved.spec == SPEC and saved.ablation_residents == 1
    assert saved.rows == [run.rollups["routine_change"]]
    assert saved.rule_alerts == [AlertRow(1, "not_up", at, "warning")]
    assert saved.repeats == run.repeats["as_configured"]
    assert saved.habits == [(1, run.habits)]

"""The end-to-end sample: one resident's day through Mosquitto, the pipeline and PostgreSQL
gives the same stored alerts as the direct run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eldercare.evaluation.e2e import SampleResult, compare_sample, sample_spec
from simulators.cohort import CohortSpec
from tests.support.services import Broker

pytestmark = [pytest.mark.slow, pytest.mark.db, pytest.mark.mqtt]

# Which day is replayed (the day before yesterday) and when the pipeline receives it: the
# pipeline runs on a clock stopped at NOW, so any real date gives the same result.
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def test_one_resident_day_gives_the_same_alerts(clean_db: str, broker: Broker) -> None:
    spec = sample_spec(CohortSpec(residents=1, days=120, seed=1), NOW)
    assert spec.days == 1
    result = compare_sample(clean_db, broker.admin, broker.pipeline, spec, [1], tag="t1",
                            now=NOW)
    assert result.direct[1], "the sample day has incidents, so alerts"
    assert result.differences() == [], result.lines()
    assert "**Same decisions**" in "\n".join(result.lines())


def test_differences_set_last_will_stamping_apart() -> None:
    spec = CohortSpec(residents=1, days=1)
    direct = {1: [("device_offline", "2026-03-02T10:00:00.000+00:00"),
                  ("sos", "2026-03-02T11:00:00.000+00:00"),
                  ("device_offline", "2026-03-02T15:00:00.000+00:00")]}
    e2e = {1: [("device_offline", "2026-03-02T09:55:00.000+00:00"),  # will stamped earlier
               ("sos", "2026-03-02T11:00:00.000+00:00"),
               ("device_offline", "2026-03-02T15:30:00.000+00:00")]}  # later: a difference
    result = SampleResult(spec, direct, e2e)
    assert result.differences() == [
        "resident 1: device_offline at 2026-03-02T15:00:00.000+00:00 only in the direct run",
        "resident 1: device_offline at 2026-03-02T15:30:00.000+00:00 only through MQTT"]
    assert result.will_stamped() == [
        "resident 1: device_offline at 2026-03-02T10:00:00.000+00:00 (direct) and "
        "2026-03-02T09:55:00.000+00:00 (MQTT)"]
    assert not result.same

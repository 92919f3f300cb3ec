"""The end-to-end sample: one resident's day through Mosquitto, the pipeline and PostgreSQL
gives the same stored alerts as the direct run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eldercare.evaluation.e2e import compare_sample, sample_spec
from simulators.cohort import CohortSpec
from tests.support.services import Broker

pytestmark = [pytest.mark.slow, pytest.mark.db, pytest.mark.mqtt]

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # only sets which recent day is replayed


def test_one_resident_day_gives_the_same_alerts(clean_db: str, broker: Broker) -> None:
    spec = sample_spec(CohortSpec(residents=1, days=120, seed=1), NOW)
    assert spec.days == 1
    result = compare_sample(clean_db, broker.admin, broker.pipeline, spec, [1], tag="t1")
    assert result.direct[1], "the sample day has incidents, so alerts"
    assert result.differences() == [], result.lines()
    assert "**Same decisions**" in "\n".join(result.lines())

"""The feature definitions: one each, sensible directions, coverage, words."""

from __future__ import annotations

import math

import numpy as np

from alerts.learning.features import (
    BY_NAME,
    DEVICE_FEATURES,
    FEATURES,
    PERSON_FEATURES,
    DayFeatures,
    feature_matrix,
    format_value,
)
from tests.alerts.learning.support import DAY0


def test_every_feature_is_defined_once_with_a_direction_and_kind():
    assert len(BY_NAME) == len(FEATURES)
    assert [f.name for f in PERSON_FEATURES][:4] == ["bedtime", "rise_time", "time_in_bed_s",
                                                     "night_exits"]
    assert {f.name for f in DEVICE_FEATURES} == {"coverage", "offline_min", "min_battery"}
    for f in FEATURES:
        assert f.direction in ("up", "down", "both") and f.kind in ("person", "device")
        assert f.mad_floor > 0 and f.default_mad > 0
    assert BY_NAME["night_exits"].directions == ("up",)
    assert BY_NAME["time_in_bed_s"].directions == ("up", "down")
    assert BY_NAME["resting_hr"].direction == "up"


def test_a_poorly_covered_day_gives_no_person_features_but_keeps_device_ones():
    values = {"night_exits": 3.0, "coverage": 50.0, "offline_min": 720.0}
    poor = DayFeatures(1, DAY0, values, coverage=0.5)
    good = DayFeatures(1, DAY0, values, coverage=0.95)
    assert poor.value("night_exits") is None and good.value("night_exits") == 3.0
    assert poor.value("offline_min") == 720.0
    assert good.value("resting_hr") is None  # not measured


def test_feature_matrix_marks_what_does_not_count_as_nan():
    days = [DayFeatures(1, DAY0, {"night_exits": 2.0, "resting_hr": float("nan")}, 1.0),
            DayFeatures(1, DAY0, {"night_exits": 5.0}, 0.2)]
    m = feature_matrix(days, [BY_NAME["night_exits"], BY_NAME["resting_hr"]])
    assert m.shape == (2, 2) and m[0, 0] == 2.0
    assert math.isnan(m[0, 1]) and np.isnan(m[1]).all()


def test_values_read_as_a_care_worker_reads_them():
    assert format_value(BY_NAME["bedtime"], 630) == "22:30"  # minutes after noon
    assert format_value(BY_NAME["bedtime"], 750) == "00:30"  # past midnight: continuous
    assert format_value(BY_NAME["rise_time"], 425) == "07:05"
    assert format_value(BY_NAME["night_out_s"], 1500) == "25 min"
    assert format_value(BY_NAME["time_in_bed_s"], 30600) == "8.5 h"
    assert format_value(BY_NAME["night_exits"], 4.2) == "4.2"
    assert format_value(BY_NAME["resting_hr"], 61.04) == "61.0/min"

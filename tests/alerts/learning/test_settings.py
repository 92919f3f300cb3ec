"""A resident's routine-change settings: the override keys, their validation, and what the
job makes of them."""

from __future__ import annotations

import pytest

from alerts.config import AlertSettings, effective_settings
from alerts.learning.job import routine_settings
from alerts.model import AlertType, Severity
from alerts.overrides import OverrideError, validate_override


def test_defaults_are_on_at_normal_sensitivity_with_a_medium_severity():
    s = AlertSettings()
    assert s.routine_change.enabled and s.routine_change.sensitivity == 1.0
    assert s.severity_of(AlertType.ROUTINE_CHANGE) is Severity.WARNING
    assert s.refractory_of(AlertType.ROUTINE_CHANGE) == 0  # its own per-feature cooldown
    r = routine_settings(s)
    assert r.enabled and r.limit == pytest.approx(r.threshold) and r.cooldown_days == 7


def test_a_resident_override_switches_it_off_or_tunes_it():
    off = effective_settings(AlertSettings(), None, {"routine_change": {"enabled": False}})
    assert not routine_settings(off).enabled
    keen = effective_settings(AlertSettings(), {"routine_change": {"sensitivity": 2.0}}, None)
    assert routine_settings(keen).limit == pytest.approx(routine_settings(AlertSettings()).limit
                                                         / 2)
    assert keen.routine_change.enabled  # a nested key replaces only itself


@pytest.mark.parametrize("bad", [{"sensitivity": 0}, {"sensitivity": 10}, {"cooldown_days": 0},
                                 {"enabled": "maybe"}, {"sensitivty": 1.0}])
def test_invalid_routine_change_settings_are_refused(bad):
    with pytest.raises(OverrideError, match="routine_change"):
        validate_override(AlertSettings(), {"routine_change": bad})

"""Alert settings: the issue's defaults, override precedence and validation."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import psycopg
import pytest

from alerts.config import AlertSettings, effective_settings
from alerts.model import AlertType, Audience, Severity
from alerts.overrides import (
    OverrideError,
    clear_override,
    get_override,
    resident_settings,
    set_override,
    validate_override,
)
from eldercare.settings import Settings
from kernel import sites


def test_defaults_are_the_documented_ones() -> None:
    s = AlertSettings()
    assert s.sos_cancel_window_s == 30
    assert (s.night_start, s.night_end) == (time(22), time(7))
    assert (s.bed_exit_min_occupied_s, s.bed_exit_return_s) == (600, 1200)
    hr = s.heart_rate
    assert (hr.urgent_at_or_below, hr.urgent_at_or_above, hr.urgent_sustain_s) == (40, 131, 120)
    assert (hr.warning_at_or_above, hr.warning_sustain_s, hr.clear_after_s) == (111, 600, 300)
    rr = s.respiration
    assert (rr.urgent_at_or_below, rr.urgent_at_or_above, rr.warning_at_or_above) == (8, 25, 21)
    assert rr.warning_sustain_s == 900
    assert s.apnea_s == 20 and s.not_up_at == time(10) and s.long_absence_s == 12 * 3600
    assert s.offline_heartbeats == 3 and s.low_battery_percent == 20
    assert s.test_overdue_s == 7 * 86400
    critical = [(st.after_s, st.audience) for st in s.escalation[Severity.CRITICAL]]
    assert critical == [(60, Audience.SITE_WORKERS), (180, Audience.DUTY_OFFICERS),
                        (600, Audience.FAMILY)]
    assert [st.after_s for st in s.escalation[Severity.HIGH]] == [300, 900, 1800]
    assert s.refractory_of(AlertType.SOS) == 0 and s.refractory_of("unknown_type") == 0


def test_overrides_apply_in_order_and_nest() -> None:
    base = AlertSettings()
    site = {"heart_rate": {"urgent_at_or_above": 140}, "apnea_s": 30}
    resident = {"apnea_s": 25}
    s = effective_settings(base, site, resident)
    assert s.heart_rate.urgent_at_or_above == 140
    assert s.heart_rate.urgent_at_or_below == 40  # untouched sibling kept
    assert s.apnea_s == 25


@pytest.mark.parametrize("bad", [
    {"heart_rate": {"warning_at_or_above": 200}},  # bands out of order
    {"apnea_s": 0},
    {"no_such_threshold": 1},
    {"escalation": {"critical": [{"after_s": -1, "audience": "family"}]}},
])
def test_invalid_overrides_are_refused_with_a_reason(bad: dict[str, object]) -> None:
    with pytest.raises(OverrideError) as exc:
        validate_override(AlertSettings(), bad)
    assert str(exc.value)


def test_platform_settings_file_sets_alert_thresholds(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "eldercare.toml"
    cfg.write_text('[alerts]\napnea_s = 15\n[alerts.heart_rate]\nurgent_at_or_below = 35\n'
                   'urgent_at_or_above = 131\nwarning_at_or_above = 111\n'
                   'warning_sustain_s = 600\nnormal_low = 51\nnormal_high = 90\n')
    monkeypatch.setenv("ELDERCARE_SETTINGS_FILE", str(cfg))
    monkeypatch.setenv("ELDERCARE_ALERTS__LONG_ABSENCE_S", "3600")
    s = Settings()
    assert s.alerts.apnea_s == 15 and s.alerts.heart_rate.urgent_at_or_below == 35
    assert s.alerts.long_absence_s == 3600


def test_stored_overrides_site_then_resident(clean_db: str) -> None:
    base = AlertSettings()
    with psycopg.connect(clean_db, autocommit=True) as conn:
        sites.add_site(conn, "north", "North")
        rid = sites.add_resident(conn, "north", "Alice")
        other = sites.add_resident(conn, "north", "Bob")
        set_override(conn, base, {"apnea_s": 40, "long_absence_s": 7200}, site="north")
        set_override(conn, base, {"apnea_s": 30}, resident=rid)
        set_override(conn, base, {"heart_rate": {"urgent_sustain_s": 60}}, resident=rid)
        assert get_override(conn, resident=rid) == {
            "apnea_s": 30, "heart_rate": {"urgent_sustain_s": 60}}
        alice = resident_settings(conn, base, rid)
        assert (alice.apnea_s, alice.long_absence_s) == (30, 7200)
        assert alice.heart_rate.urgent_sustain_s == 60
        assert resident_settings(conn, base, other).apnea_s == 40
        with pytest.raises(OverrideError):
            set_override(conn, base, {"apnea_s": -5}, resident=rid)
        assert clear_override(conn, resident=rid)
        assert resident_settings(conn, base, rid).apnea_s == 40

"""The in-memory store: open, repeat, refractory suppression, resolution, dedup off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.config import AlertSettings
from alerts.model import AlertCancel, AlertClear, AlertTrigger, AlertType, Severity
from eldercare.evaluation.book import AlertBook

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HR = AlertType.HEART_RATE_HIGH


def trig(minutes: float, severity: Severity = Severity.WARNING, typ: AlertType = HR
         ) -> AlertTrigger:
    return AlertTrigger(1, "s", "bed", typ, severity, T0 + timedelta(minutes=minutes))


def clear(minutes: float, typ: AlertType = HR) -> AlertClear:
    return AlertClear(1, "s", typ, T0 + timedelta(minutes=minutes))


def test_repeat_upgrade_and_refractory_like_the_store() -> None:
    book = AlertBook(AlertSettings(), resolve_after_s=1800)
    book.apply([trig(0), trig(5, Severity.URGENT), trig(5, Severity.URGENT)])
    assert len(book.alerts) == 1
    assert book.alerts[0].severity == "urgent" and book.alerts[0].count == 2
    assert book.outcomes == {"opened": 1, "repeated": 1, "ignored": 1}
    book.apply([clear(10)])
    # resolved 30 min after opening (cleared before): a new trigger within the 1800 s
    # refractory period after that is suppressed, a later one opens a new alert
    book.apply([trig(45)])
    assert book.outcomes["suppressed"] == 1 and len(book.alerts) == 1
    book.apply([trig(61)])
    assert len(book.alerts) == 2


def test_an_uncleared_condition_keeps_its_alert_open() -> None:
    book = AlertBook(AlertSettings())
    book.apply([trig(0), trig(300)])
    assert len(book.alerts) == 1 and book.alerts[0].count == 2


def test_sos_never_clears_and_a_cancel_in_the_window_finishes_it() -> None:
    book = AlertBook(AlertSettings())
    sos = trig(0, Severity.CRITICAL, AlertType.SOS)
    book.apply([sos, AlertCancel(1, "s", "bed", T0 + timedelta(seconds=10), True)])
    assert book.outcomes["cancelled"] == 1
    book.apply([trig(1, Severity.CRITICAL, AlertType.SOS)])  # SOS: no refractory period
    assert len(book.alerts) == 2


def test_dedup_off_opens_every_trigger() -> None:
    book = AlertBook(AlertSettings(), dedup=False)
    book.apply([trig(0), trig(1), trig(2)])
    assert len(book.alerts) == 3

"""Alert store on the real database: one open alert per incident, redelivery is harmless."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.engine import event_trigger
from alerts.store import store_trigger
from eldercare import accounts, db
from gateway.records import EventRecord
from gateway.schema import EventType
from tests.helpers import count

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


def _resident(url: str) -> int:
    with db.connect(url) as conn:
        accounts.add_site(conn, "north", "North")
        return accounts.add_resident(conn, "north", "Agnes")


def sos(rid: int, seq: int, at: datetime, kind: EventType = EventType.SOS) -> EventRecord:
    return EventRecord(at, "btn-1", rid, "north", seq, kind, None, None, at)


def test_only_sos_and_fall_raise_immediate_alerts():
    assert event_trigger(sos(1, 1, T0)).severity == "critical"  # type: ignore[union-attr]
    assert event_trigger(sos(1, 1, T0, EventType.FALL)).type == "fall"  # type: ignore[union-attr]
    for kind in (EventType.TEST, EventType.BED_EXIT, EventType.SOS_CANCEL):
        assert event_trigger(sos(1, 1, T0, kind)) is None


def test_repeat_attaches_and_redelivery_is_ignored(clean_db):
    rid = _resident(clean_db)
    with db.connect(clean_db, autocommit=True) as conn:
        first = store_trigger(conn, event_trigger(sos(rid, 1, T0)))  # type: ignore[arg-type]
        again = store_trigger(conn, event_trigger(sos(rid, 1, T0)))  # type: ignore[arg-type]
        repeat = store_trigger(conn, event_trigger(  # type: ignore[arg-type]
            sos(rid, 2, T0 + timedelta(seconds=20))))
    assert first is not None and first.created
    assert again is not None and not again.created
    assert repeat is not None and repeat.alert_id == first.alert_id and not repeat.created
    assert count(clean_db, "SELECT count(*) FROM alerts") == 1
    assert count(clean_db, "SELECT count FROM alerts") == 2
    assert count(clean_db, "SELECT count(*) FROM alert_history WHERE action='opened'") == 1


def test_new_alert_after_resolution_and_old_redelivery_ignored(clean_db):
    rid = _resident(clean_db)
    with db.connect(clean_db, autocommit=True) as conn:
        first = store_trigger(conn, event_trigger(sos(rid, 1, T0)))  # type: ignore[arg-type]
        assert first is not None
        conn.execute("UPDATE alerts SET status='resolved' WHERE id=%s", (first.alert_id,))
        assert store_trigger(conn, event_trigger(sos(rid, 1, T0))) is None  # type: ignore[arg-type]
        later = store_trigger(conn, event_trigger(  # type: ignore[arg-type]
            sos(rid, 9, T0 + timedelta(hours=1))))
    assert later is not None and later.created and later.alert_id != first.alert_id

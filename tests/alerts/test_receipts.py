"""The receipt tracker: which stored alarms to confirm to their devices, and when."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts import receipts
from alerts.receipts import Receipt, ReceiptTracker
from gateway.records import EventRecord
from gateway.schema import EventType

T = datetime(2026, 1, 1, tzinfo=UTC)


def event(seq: int, typ: EventType = EventType.SOS, device: str = "btn-1",
          ts: datetime = T, flagged: datetime | None = None) -> EventRecord:
    return EventRecord(ts, device, 7, "north", seq, typ, None, flagged, T)


def test_an_alarm_is_confirmed_when_its_message_is_freed() -> None:
    tracker = ReceiptTracker()
    assert tracker.expect([event(5)], token=100)
    assert tracker.freed([1, 2, 3]) == []  # other messages
    tracker.alert_stored("btn-1", 5, alert_id=42)
    assert tracker.freed([100]) == [Receipt("north", "btn-1", 5, 42)]
    assert tracker.freed([100]) == [] and tracker.in_flight == 0


def test_only_sos_and_fall_with_a_token_get_receipts() -> None:
    tracker = ReceiptTracker()
    assert tracker.expect([event(1, EventType.FALL)], token=1)
    assert not tracker.expect([event(2, EventType.SOS_CANCEL)], token=2)
    assert not tracker.expect([event(3, EventType.TEST)], token=3)
    assert not tracker.expect([event(4)], token=None)  # QoS 0: nothing says when it is stored
    assert tracker.freed([1, 2, 3]) == [Receipt("north", "btn-1", 1, None)]


def test_a_repeat_is_confirmed_only_when_every_copy_in_flight_is_stored() -> None:
    """A repeat may be committed (its row is a duplicate) while the first copy's alert is still
    being stored: confirming then would let the device stop before the alert exists."""
    tracker = ReceiptTracker()
    tracker.expect([event(9)], token=1)
    tracker.expect([event(9)], token=2)  # the device's repeat, or a broker redelivery
    assert tracker.freed([2]) == []
    assert tracker.freed([1]) == [Receipt("north", "btn-1", 9, None)]
    tracker.expect([event(9)], token=3)  # a later repeat of the stored alarm: answered again
    assert tracker.freed([3]) == [Receipt("north", "btn-1", 9, None)]


def test_a_repeat_of_an_alarm_still_held_is_recognised_and_answered_by_the_held_copy() -> None:
    """The pipeline PUBACKs such a repeat at once instead of tracking it (receive window)."""
    tracker = ReceiptTracker()
    assert not tracker.repeats_held([event(9)])  # nothing held yet
    tracker.expect([event(9)], token=1)
    assert tracker.repeats_held([event(9)])
    later = T + timedelta(minutes=5)
    assert not tracker.repeats_held([event(9, ts=later)])  # same seq, new ts: a new alarm
    assert not tracker.repeats_held([event(9, device="btn-2")])
    assert not tracker.repeats_held([event(9, EventType.SOS_CANCEL)])
    assert not tracker.repeats_held([])
    assert tracker.freed([1]) == [Receipt("north", "btn-1", 9, None)]  # answers the repeat
    assert not tracker.repeats_held([event(9)])  # stored: a repeat now is tracked again


def test_a_flagged_clock_repeat_is_matched_on_the_device_ts() -> None:
    """With an implausible device clock the row time is the receive time, new for each copy."""
    tracker = ReceiptTracker()
    wrong = datetime(2001, 1, 1, tzinfo=UTC)
    tracker.expect([event(3, ts=T, flagged=wrong)], token=1)
    assert tracker.repeats_held([event(3, ts=T + timedelta(minutes=1), flagged=wrong)])


def test_a_discarded_message_gets_no_receipt() -> None:
    tracker = ReceiptTracker()
    tracker.expect([event(9)], token=1)
    tracker.expect([event(9)], token=2)
    tracker.discard(2)  # e.g. it became a dead letter
    tracker.discard(None)
    assert tracker.freed([2]) == []
    assert tracker.freed([1]) == [Receipt("north", "btn-1", 9, None)]


def test_alert_ids_kept_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(receipts, "ALERT_IDS_KEPT", 2)
    tracker = ReceiptTracker()
    for seq in (1, 2, 3):
        tracker.alert_stored("btn-1", seq, alert_id=seq * 10)
    for token, seq in enumerate((1, 3), start=1):
        tracker.expect([event(seq)], token=token)
    assert tracker.freed([1, 2]) == [Receipt("north", "btn-1", 1, None),
                                     Receipt("north", "btn-1", 3, 30)]


def test_a_rescued_alarms_repeat_is_matched_on_the_ts_text_it_was_sent_with() -> None:
    """A rescued alarm (malformed ts) is stored at its receive time, new for each copy; its
    repeats carry the same ts text, which is what identifies them."""
    tracker = ReceiptTracker()
    tracker.expect([replace(event(4, ts=T), rescued_ts="2026-12-06T22:00:00+0800")], token=1)
    again = replace(event(4, ts=T + timedelta(minutes=1)), rescued_ts="2026-12-06T22:00:00+0800")
    assert tracker.repeats_held([again])
    other = replace(again, rescued_ts="2026-12-06T22:05:00+0800")
    assert not tracker.repeats_held([other])

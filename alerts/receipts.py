"""End-to-end alarm receipts: tell a device its alarm is stored, so it stops repeating it.

A broker's PUBACK proves only that the broker took the message; a broker crash before its next
snapshot loses it. So, as telecare alarm protocols do (SCAIP, CLC/TS 50134-9), a device repeats
an alarm (`sos`, `fall`; same `seq` and `ts`) until the platform answers with an
`alarm_received` command, and the platform sends that only once the alarm is durable: its
device_events row AND its alert committed. The pipeline's ack gate already knows that moment
(a message's ack token is freed only when ingest and the alert path have both released it),
so the tracker hangs receipts on tokens.

Every copy of an alarm (a broker redelivery or a device repeat) is answered, also one the
platform stored long ago; a copy that arrives while an earlier copy of the same alarm is
still being stored is answered only when both are done, because only then is the alert
committed. A device's repeat of an alarm whose earlier copy is still held is not tracked at
all (`repeats_held`): the pipeline acknowledges it at once and the held copy's receipt
answers it, so repeats during a database outage cannot fill the events session's receive
window. See docs/protocol.md ("alarm_received") and docs/alerts.md.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.records import EventRecord, Record
from gateway.schema import EventType

ALARM_EVENTS = frozenset({EventType.SOS, EventType.FALL})
ALERT_IDS_KEPT = 10_000  # (device, seq) -> alert id, newest first: a receipt names its alert

# site, device id, seq, device ts: the ts tells a copy from a new alarm of a reset counter
_Key = tuple[str, str, int, datetime | str]  # site, device, seq, device ts (or rescued ts text)


@dataclass(frozen=True, slots=True)
class Receipt:
    """An `alarm_received` to send: the alarm `seq` of `device_id` (at `site`) is stored."""

    site: str
    device_id: str
    seq: int
    alert_id: int | None


class ReceiptTracker:
    """Which ack tokens carry alarms, and which alerts they opened or joined (thread-safe).

    The pipeline calls `expect` when it takes a message, `freed` with the tokens the ack gate
    frees (ingest and alerts committed) and `alert_stored` when the alert worker stores a
    trigger. Memory is bounded by the messages in flight plus `ALERT_IDS_KEPT` ids.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[int, _Key] = {}
        self._waiting: dict[_Key, int] = {}  # copies of one alarm still being stored
        self._alert_ids: OrderedDict[tuple[str, int], int] = OrderedDict()

    def expect(self, records: Sequence[Record], token: int | None) -> bool:
        """Note a taken message's alarm (if it is one); True if a receipt will follow.

        A QoS 0 message has no token, so nothing tells when it is stored: no receipt (the
        contract requires QoS 1 for events; the device simply repeats).
        """
        key = _alarm_key(records)
        if token is None or key is None:
            return False
        with self._lock:
            self._by_token[token] = key
            self._waiting[key] = self._waiting.get(key, 0) + 1
        return True

    def repeats_held(self, records: Sequence[Record]) -> bool:
        """True if the message is a copy of an alarm whose earlier copy is still being stored.

        That copy's receipt (sent once it is stored) answers this one too, and its row would
        be a duplicate: the pipeline may acknowledge such a repeat at once instead of holding
        it in the receive window (see `Pipeline._take`).
        """
        key = _alarm_key(records)
        if key is None:
            return False
        with self._lock:
            return key in self._waiting

    def discard(self, token: int | None) -> None:
        """Forget a token whose message was not stored as taken (e.g. it became a dead letter)."""
        if token is None:
            return
        with self._lock:
            key = self._by_token.pop(token, None)
            if key is not None:
                self._settle(key)

    def alert_stored(self, device_id: str, seq: int, alert_id: int) -> None:
        """The alert worker stored the trigger of alarm `seq`: its receipt names `alert_id`."""
        with self._lock:
            self._alert_ids[(device_id, seq)] = alert_id
            self._alert_ids.move_to_end((device_id, seq))
            while len(self._alert_ids) > ALERT_IDS_KEPT:
                self._alert_ids.popitem(last=False)

    def freed(self, tokens: Iterable[int]) -> list[Receipt]:
        """The receipts that became due now that `tokens` are committed and acknowledged."""
        if not self._by_token:  # the common case: a batch of telemetry, no alarm in flight
            return []
        out: list[Receipt] = []
        with self._lock:
            for token in tokens:
                key = self._by_token.pop(token, None)
                if key is not None and self._settle(key):
                    site, device_id, seq, _ = key
                    out.append(Receipt(site, device_id, seq,
                                       self._alert_ids.get((device_id, seq))))
        return out

    def _settle(self, key: _Key) -> bool:
        """One copy of alarm `key` is done; True when no copy of it is still being stored."""
        left = self._waiting[key] - 1
        if left > 0:
            self._waiting[key] = left
            return False
        del self._waiting[key]
        return True

    @property
    def in_flight(self) -> int:
        """Alarm messages taken and not yet stored."""
        return len(self._by_token)


def _alarm_key(records: Sequence[Record]) -> _Key | None:
    """The alarm a message carries (site, device, seq, device ts), None if it carries none.

    One message is one event, or readings/status only: the first record tells (and a
    500-sample batch costs one check on the hot path, not 500). The device ts is the
    flagged `device_time` when the row time had to be the receive time (which differs
    between copies), or the `ts` text of a rescued alarm, as in the detector's `_redelivered`.
    """
    rec = records[0] if records else None
    if not isinstance(rec, EventRecord) or rec.type not in ALARM_EVENTS:
        return None
    if rec.rescued_ts is not None:  # a rescued alarm's row time is its receive time
        return (rec.site, rec.device_id, rec.seq, rec.rescued_ts)
    return (rec.site, rec.device_id, rec.seq,
            rec.time if rec.device_time is None else rec.device_time)

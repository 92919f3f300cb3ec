"""A device's alarm outbox: sos and fall repeated until the platform confirms them.

Pure (the caller passes the device time), kept apart from the MQTT device so the retry
rule of docs/protocol.md is read and tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.schema import DeviceEvent, EventType

ALARM_EVENTS = frozenset({EventType.SOS, EventType.FALL})
ALARM_RETRY_FIRST_S = 2.0  # docs/protocol.md: repeat after 2, 4, 8 ... s
ALARM_RETRY_CAP_S = 60.0


@dataclass
class _Unconfirmed:
    """An alarm in the outbox: when it is repeated next, and the pause after that."""

    event: DeviceEvent
    due: datetime
    pause_s: float


class AlarmOutbox:
    """Alarms sent but not yet confirmed by `alarm_received`, repeated with backoff.

    A PUBACK only proves the broker took the alarm; a broker crash can still lose it. So the
    device repeats the same message (same seq and ts) after 2, 4, 8 ... s, capped at 60 s,
    until the platform confirms it has stored it. Pure: the caller passes the device time.
    """

    def __init__(self, first_s: float = ALARM_RETRY_FIRST_S,
                 cap_s: float = ALARM_RETRY_CAP_S) -> None:
        self._first_s = first_s
        self._cap_s = cap_s
        self._waiting: dict[int, _Unconfirmed] = {}  # seq -> alarm

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, seq: object) -> bool:
        return seq in self._waiting

    def add(self, event: DeviceEvent, now: datetime) -> None:
        """Keep an alarm (just sent, or kept to send on reconnect) until it is confirmed."""
        self._waiting[event.seq] = _Unconfirmed(
            event, now + timedelta(seconds=self._first_s), self._first_s)

    def confirm(self, seq: int) -> bool:
        """The platform stored alarm `seq`: stop repeating it. False if it was not waiting."""
        return self._waiting.pop(seq, None) is not None

    def due(self, now: datetime) -> list[DeviceEvent]:
        """The alarms to repeat now, in seq order; each is scheduled again, twice as late."""
        out: list[DeviceEvent] = []
        for seq in sorted(self._waiting):
            entry = self._waiting[seq]
            if entry.due <= now:
                out.append(entry.event)
                entry.pause_s = min(entry.pause_s * 2, self._cap_s)
                entry.due = now + timedelta(seconds=entry.pause_s)
        return out

    def events(self) -> list[DeviceEvent]:
        """Every unconfirmed alarm, in seq order (sent again on every reconnect)."""
        return [self._waiting[seq].event for seq in sorted(self._waiting)]

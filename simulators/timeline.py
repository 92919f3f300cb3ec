"""The pure stream of what every device does, in simulated-time order.

`fleet_timeline` merges, per home, the bed readings (incidents applied), the status
heartbeats, the button events and the connectivity changes of the incidents into one
time-ordered iterator of `Action`s. The I/O engine replays it onto the simulated devices;
tests read it directly (a dry run: same seed, same actions).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from operator import attrgetter
from random import Random
from typing import Literal, NamedTuple

from gateway.schema import EventType
from simulators.incidents import HomeScript, IncidentType
from simulators.resident import MatReading, derive_seed


class ActionKind(StrEnum):
    """What a device does at one instant."""

    READING = "reading"
    STATUS = "status"
    EVENT = "event"
    OFFLINE = "offline"
    ONLINE = "online"


class Action(NamedTuple):
    """One thing one device does at simulated time `t`. (A named tuple, not a frozen
    dataclass: a cohort's stream makes one per reading, and a tuple is made in a third of
    the time.)"""

    t: datetime
    device_id: str
    kind: ActionKind
    reading: MatReading | None = None
    event: EventType | None = None
    battery_scale: float = 1.0
    detail: str | None = None


_EVENTS = {IncidentType.SOS: EventType.SOS, IncidentType.FALL: EventType.FALL}
Spread = Literal["random", "even"]
_EMPTY = MatReading(False, None, None, 0)


def _periodic(start: datetime, end: datetime | None, first: float, period: float
              ) -> Iterator[datetime]:
    step = timedelta(seconds=period)
    t = start + timedelta(seconds=first)
    while end is None or t < end:
        yield t
        t += step


def _readings(script: HomeScript, bed: str, times: Iterator[datetime]) -> Iterator[Action]:
    quiet: datetime | None = None  # readings before it are sent, and empty
    reading = ActionKind.READING
    for t in times:
        if quiet is not None and t < quiet:
            yield Action(t, bed, reading, reading=_EMPTY)
        elif not script.dead_at(bed, t):
            r = script.reading_at(t)
            yield Action(t, bed, reading, reading=r)
            # nobody in bed: ask how long that lasts (the empty readings then cost nothing)
            quiet = None if r.occupied else script.empty_until(bed, t)


def _statuses(script: HomeScript, dev: str, times: Iterator[datetime]) -> Iterator[Action]:
    for t in times:
        if not script.offline_at(dev, t):
            yield Action(t, dev, ActionKind.STATUS,
                         battery_scale=script.battery_scale(dev, t))


def incident_actions(script: HomeScript, start: datetime, end: datetime | None
                     ) -> list[Action]:
    """Button events and connectivity changes of a home's incidents, in [start, end)."""
    out: list[Action] = []
    for inc in script.incidents:
        if inc.device_id is None:
            continue
        if inc.type in _EVENTS:
            out.append(Action(inc.start, inc.device_id, ActionKind.EVENT,
                              event=_EVENTS[inc.type], detail=f"simulated {inc.type.value}"))
        elif inc.type is IncidentType.DEVICE_OFFLINE:
            out += [Action(inc.start, inc.device_id, ActionKind.OFFLINE),
                    Action(inc.end, inc.device_id, ActionKind.ONLINE)]
        elif inc.type is IncidentType.BATTERY_DRAIN:
            out += [Action(inc.end, inc.device_id, ActionKind.OFFLINE, battery_scale=0.0),
                    Action(inc.time_param("replaced_at"), inc.device_id, ActionKind.ONLINE)]
    return sorted((a for a in out if a.t >= start and (end is None or a.t < end)),
                  key=lambda a: a.t)


def fleet_timeline(scripts: Sequence[HomeScript], start: datetime, end: datetime | None, *,
                   telemetry_period_s: float, heartbeat_s: float | None, seed: int,
                   spread: Spread = "random") -> Iterator[Action]:
    """Every device's actions of every home, merged in time order (deterministic).

    Bed phases are random within one period (`random`) or evenly spaced across the fleet
    (`even`, for a steady load); `heartbeat_s=None` sends no heartbeats.
    """
    return merge_actions(fleet_streams(scripts, start, end, telemetry_period_s=telemetry_period_s,
                                       heartbeat_s=heartbeat_s, seed=seed, spread=spread))


def merge_actions(streams: Iterable[Iterable[Action]]) -> Iterator[Action]:
    """Time-ordered streams merged in time order; at equal times, in the order of `streams`."""
    return heapq.merge(*streams, key=_BY_TIME)


_BY_TIME = attrgetter("t")


def fleet_streams(scripts: Sequence[HomeScript], start: datetime, end: datetime | None, *,
                  telemetry_period_s: float, heartbeat_s: float | None, seed: int,
                  spread: Spread = "random") -> list[Iterable[Action]]:
    """The time-ordered streams `fleet_timeline` merges (a caller adding streams of its own
    merges them all at once)."""
    if telemetry_period_s <= 0:
        raise ValueError("telemetry_period_s must be positive")
    rng = Random(derive_seed("timeline", seed))
    beds = [(s, b) for s in scripts for b in s.home.beds]
    streams: list[Iterable[Action]] = []
    for i, (script, bed) in enumerate(beds):
        first = (i * telemetry_period_s / len(beds) if spread == "even"
                 else rng.uniform(0, telemetry_period_s))
        streams.append(_readings(script, bed,
                                 _periodic(start, end, first, telemetry_period_s)))
    for script in scripts:
        if heartbeat_s is not None:
            for dev in script.home.devices:
                first = heartbeat_s * rng.uniform(0.5, 1.0)
                streams.append(_statuses(script, dev, _periodic(start, end, first,
                                                                heartbeat_s)))
        streams.append(incident_actions(script, start, end))
    return streams

"""Where the relative is now, in plain words: a pure function of the latest facts and now.

The platform has a bed mat and a call button, no door sensor, so presence is inferred from
the bed alone: occupied -> in bed; empty -> up and about; empty for `away_after` or more ->
probably out of the house. A bed sensor that is marked offline, or that has sent nothing
for `stale_after`, makes every such guess unsafe: the state is then "sensor offline", and
says "the centre has been told" only when an open device_offline alert proves it.
Times are local to the site (24-hour clock), with "yesterday" or the date when the moment
is not today, so "since 22:14" is never ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard.family.words import NO_SINCE, STATE_WORDS, YESTERDAY
from kernel.i18n import DEFAULT_LANGUAGE, translate

STALE_AFTER = timedelta(minutes=15)
AWAY_AFTER = timedelta(hours=3)


@dataclass(frozen=True, slots=True)
class BedFacts:
    """What the database knows about a resident's bed right now.

    `has_sensor`: an active bed sensor is registered. `online`/`last_seen`: its status row.
    `latest`/`occupied`: the newest reading. `run_since`: when the current occupied/empty
    run began (how long the present state has lasted; dashboard.family.store debounces it).
    `offline_alert_at`: opening time of an open or acknowledged device_offline alert for the
    bed sensor, if any.
    """

    has_sensor: bool
    online: bool | None = None
    last_seen: datetime | None = None
    latest: datetime | None = None
    occupied: bool | None = None
    run_since: datetime | None = None
    offline_alert_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PresenceState:
    """The relative's state: a kind (for styling), since when, and the sentence."""

    kind: str
    since: datetime | None
    text: str


def local_clock(at: datetime, now: datetime, tz: ZoneInfo, lang: str = DEFAULT_LANGUAGE
                ) -> str:
    """`22:14`, `22:14 yesterday` or `2026-12-05 22:14`, in the site's zone, 24-hour (issue
    14's rule: ISO-like dates, no month names to translate)."""
    local, today = at.astimezone(tz), now.astimezone(tz).date()
    clock = f"{local:%H:%M}"
    if local.date() == today:
        return clock
    if local.date() == today - timedelta(days=1):
        return translate(YESTERDAY, lang).format(time=clock)
    return f"{local:%Y-%m-%d} {clock}"


def presence(facts: BedFacts, now: datetime, tz: ZoneInfo, *,
             stale_after: timedelta = STALE_AFTER,
             away_after: timedelta = AWAY_AFTER,
             lang: str = DEFAULT_LANGUAGE) -> PresenceState:
    """The state in plain words in `lang` (module docstring: the rules and why)."""
    state = _presence(facts, now, stale_after, away_after)
    words = STATE_WORDS[state.kind]
    if state.since is None:
        return PresenceState(state.kind, None, translate(NO_SINCE[state.kind], lang))
    return PresenceState(state.kind, state.since, translate(words, lang).format(
        since=local_clock(state.since, now, tz, lang)))


def _presence(facts: BedFacts, now: datetime, stale_after: timedelta,
              away_after: timedelta) -> PresenceState:
    """Which state, since when (its `text` left empty: `presence` says it)."""
    if not facts.has_sensor:
        return _state("no_sensor", None)
    silent = facts.latest is None or now - facts.latest > stale_after
    if facts.offline_alert_at is not None:
        return _state("offline_reported", _offline_since(facts))
    if facts.online is False or (silent and facts.latest is not None):
        return _state("offline", _offline_since(facts))
    if facts.latest is None or facts.occupied is None:
        return _state("no_data", None)
    since = facts.run_since or facts.latest
    if facts.occupied:
        return _state("in_bed", since)
    return _state("away" if now - since >= away_after else "up", since)


def _offline_since(facts: BedFacts) -> datetime | None:
    """When the sensor was last heard from (its last reading or status), else when the
    centre's alert opened."""
    heard = [t for t in (facts.latest, facts.last_seen) if t is not None]
    return max(heard) if heard else facts.offline_alert_at


def _state(kind: str, since: datetime | None) -> PresenceState:
    return PresenceState(kind, since, "")

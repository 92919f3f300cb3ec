"""The live feed's database source: `LISTEN alerts` and `LISTEN sessions` on one connection.

The `alerts_notify` trigger sends the id of every inserted or updated alert; each notified row
is fetched once (batched, through the pool) and fanned out as an `alert` event to the
subscribers whose scope admits it, family members getting the family view. The `sessions`
notification (migration 0007) ends a revoked or deleted session's streams at once.

The connection is held with exponential backoff and a ping when quiet. This loop is one of the
platform's LISTEN-with-backoff loops (issue 12): it is to move onto the shared worker of
`kernel/listen.py`, keeping its handlers (`_session_ended`, `_note_change`) as they are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from uuid import UUID

import psycopg
from psycopg.rows import class_row
from psycopg_pool import PoolTimeout

from dashboard.alert_rows import ALERT_COLUMNS, ALERT_FROM
from dashboard.deps import Pool
from dashboard.live.hub import Hub
from dashboard.live.scopes import SESSION_ENDED, KnownScopes
from dashboard.live.settings import StreamSettings
from dashboard.live.sse import sse
from dashboard.models import AlertOut, FamilyAlertOut, family_alert

logger = logging.getLogger(__name__)

CHANNEL = "alerts"
SESSIONS_CHANNEL = "sessions"  # revoked or deleted sessions (migration 0007)

_FETCH = f"""
SELECT {ALERT_COLUMNS}, a.uid
{ALERT_FROM}
WHERE a.id = ANY(%(ids)s)
ORDER BY a.id
"""


class StreamAlert(AlertOut):
    """An alert as pushed on the stream: the list item plus the pipeline's `uid`."""

    uid: UUID | None = None


class FamilyStreamAlert(FamilyAlertOut):
    """The family view of an alert as pushed on the stream, with the pipeline's `uid` so the
    page can match it to the pending event it replaces."""

    uid: UUID | None = None


def _family_event(alert: StreamAlert) -> bytes:
    """The `alert` event a family member receives: the family view, never staff internals."""
    view = FamilyStreamAlert(**family_alert(alert).model_dump(), uid=alert.uid)
    return sse("alert", view.model_dump_json())


class Backoff:
    """Exponential reconnect delays with jitter, from `low` up to `high` seconds."""

    def __init__(self, low: float, high: float) -> None:
        self._low, self._high = low, high
        self._next = low

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self._next = self._low

    def delay(self) -> float:
        """The next delay (0.5x to 1x of the current step); doubles the step."""
        step = self._next
        self._next = min(self._high, self._next * 2)
        return step * (0.5 + secrets.randbelow(1000) / 2000)


class DatabaseListener:
    """Holds the feed's LISTEN connection and fans out the alerts it is told about.

    `up` says whether the connection is listening; `on_state` is called when that changes.
    `pool` gives the feed's pool (None once the feed has stopped), used for fetching rows.
    """

    def __init__(self, url: str, hub: Hub, known: KnownScopes,
                 pool: Callable[[], Pool | None], on_state: Callable[[bool], None]) -> None:
        self.up = False
        self._url = url
        self._hub = hub
        self._known = known
        self._pool = pool
        self._on_state = on_state
        self._changed: set[int] = set()
        self._have_changes = asyncio.Event()
        self._settings = StreamSettings()
        self._backoff = Backoff(self._settings.backoff_min_s, self._settings.backoff_max_s)

    def configure(self, settings: StreamSettings) -> None:
        """Take the feed's settings as they are when it starts (tests replace them before),
        and start the backoff again from its shortest delay."""
        self._settings = settings
        self._backoff = Backoff(settings.backoff_min_s, settings.backoff_max_s)

    def _set_up(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        if up:
            self._backoff.reset()
            logger.info("alert stream: listening for alert changes")
        self._on_state(up)

    async def listen_forever(self) -> None:
        """Hold the one LISTEN connection; reconnect with backoff whenever it is lost."""
        warned = False
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                if self.up or not warned:  # once per outage
                    logger.warning("alert stream: no database (%s); retrying with backoff",
                                   _first_line(exc))
                    warned = True
            except Exception:
                logger.exception("alert stream: listener failed; restarting it")
            self._set_up(False)
            await asyncio.sleep(self._backoff.delay())

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=max(1, int(self._settings.db_timeout_s)),
            application_name="eldercare-dashboard-listen")
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            await conn.execute(f"LISTEN {SESSIONS_CHANNEL}")
            self._set_up(True)
            while True:
                async for note in conn.notifies(timeout=self._settings.db_ping_s):
                    if note.channel == SESSIONS_CHANNEL:
                        self._session_ended(note.payload)
                    else:
                        self._note_change(note.payload)
                # Quiet for a while: prove the connection is still alive.
                await asyncio.wait_for(conn.execute("SELECT 1"), self._settings.db_timeout_s)

    def _session_ended(self, payload: str) -> None:
        """A session was revoked (logout, deactivation) or deleted: end its streams now, and
        forget its user's cached scope so an outage cannot let the token back in."""
        try:
            note = json.loads(payload)
            session_id, user_id = UUID(str(note["session"])), int(note["user"])
            reason = str(note.get("reason") or SESSION_ENDED)[:100]
        except (ValueError, KeyError, TypeError):
            logger.warning("alert stream: ignoring session notification %r", payload[:80])
            return
        self._known.forget(user_id)
        if closed := self._hub.close_session(session_id, reason):
            logger.info("alert stream: ended %d stream(s) of user %d: %s", closed, user_id,
                        reason)

    def _note_change(self, payload: str) -> None:
        try:
            self._changed.add(int(payload))
        except ValueError:
            logger.warning("alert stream: ignoring notification %r", payload[:40])
            return
        self._have_changes.set()

    async def fetch_forever(self) -> None:
        """Fetch every changed alert once (batched) and fan it out."""
        while True:
            await self._have_changes.wait()
            self._have_changes.clear()
            ids, self._changed = sorted(self._changed), set()
            try:
                alerts = await self._fetch(ids)
            except (PoolTimeout, psycopg.Error) as exc:
                logger.warning("alert stream: could not fetch %d changed alert(s) (%s); "
                               "asking screens to reload", len(ids), _first_line(exc))
                self._resync()
                continue
            except Exception:  # e.g. a row the model cannot read: never stop the feed
                logger.exception("alert stream: reading changed alerts %s failed", ids[:10])
                self._resync()
                continue
            for alert in alerts:
                self._hub.publish(sse("alert", alert.model_dump_json()), alert.site_id,
                                  alert.resident_id, family_data=_family_event(alert))

    def _resync(self) -> None:
        """Tell every screen that it missed changes and should reload its list."""
        self._hub.publish_all(sse("resync", json.dumps({"reason": "missed changes"})))

    async def _fetch(self, ids: list[int]) -> list[StreamAlert]:
        pool = self._pool()
        if pool is None:
            raise PoolTimeout("the alert stream has stopped")
        async with (pool.connection(timeout=self._settings.db_timeout_s) as conn,
                    conn.cursor(row_factory=class_row(StreamAlert)) as cur):
            await cur.execute(_FETCH, {"ids": ids})
            return await cur.fetchall()


def _first_line(exc: BaseException) -> str:
    """The first line of an error message (libpq's run over several lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

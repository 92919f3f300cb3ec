"""The live feed's database source: `LISTEN alerts` and `LISTEN sessions` on one connection.

The `alerts_notify` trigger sends the id of every inserted or updated alert; each notified row
is fetched once (batched, through the pool) and fanned out as an `alert` event to the
subscribers whose scope admits it, family members getting the family view. The `sessions`
notification (migration 0007) ends a revoked or deleted session's streams at once.

The connection is held by the kernel's LISTEN-with-backoff loop (`kernel.listen.AsyncListener`,
the same loop as the registry's, the escalation runner's and the dispatcher's), with jittered
backoff and a bounded `SELECT 1` when quiet; this module keeps what is the feed's own: what
a notification means (`_session_ended`, `_note_change`) and what an outage shows (`up`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from functools import partial
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
from kernel.db import AsyncConn
from kernel.listen import AsyncListener, Backoff, Notify, random_share

logger = logging.getLogger(__name__)

ALERTS_TOPIC = "alerts"  # notify topic: an alert was inserted or updated (its id)
SESSIONS_TOPIC = "sessions"  # notify topic: a session was revoked or deleted (migration 0007)

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


def _family_event(alert: StreamAlert, lang: str) -> bytes:
    """The `alert` event a family member receives: the family view, never staff internals,
    its sentences in the reader's language."""
    view = FamilyStreamAlert(**family_alert(alert, lang).model_dump(), uid=alert.uid)
    return sse("alert", view.model_dump_json())


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
        self._backoff = _backoff(self._settings)
        self._warned = False

    def configure(self, settings: StreamSettings) -> None:
        """Take the feed's settings as they are when it starts (tests replace them before),
        and start the backoff (and the once-per-outage warning) afresh."""
        self._settings = settings
        self._backoff = _backoff(settings)
        self._warned = False

    def _set_up(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        if up:
            logger.info("alert stream: listening for alert changes")
        self._on_state(up)

    async def listen_forever(self) -> None:
        """Hold the one LISTEN connection; reconnect with backoff whenever it is lost."""
        await AsyncListener(self._connect, (ALERTS_TOPIC, SESSIONS_TOPIC),
                            backoff=self._backoff, on_notify=self._notified,
                            on_lost=self._lost, idle_s=self._settings.db_ping_s,
                            on_connect=self._connected, on_idle=self._ping).run()

    async def _connect(self) -> AsyncConn:
        return await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=max(1, int(self._settings.db_timeout_s)),
            application_name="eldercare-dashboard-listen")

    async def _connected(self, _conn: AsyncConn) -> None:
        self._set_up(True)

    async def _ping(self, conn: AsyncConn) -> None:
        """Quiet for a while: prove the connection is still alive (a dead one raises)."""
        await asyncio.wait_for(conn.execute("SELECT 1"), self._settings.db_timeout_s)

    def _notified(self, note: Notify) -> None:
        if note.channel == SESSIONS_TOPIC:
            self._session_ended(note.payload)
        else:
            self._note_change(note.payload)

    def _lost(self, exc: Exception, _delay: float) -> None:
        """Warn once per outage (a database that is down is expected, not a bug); anything
        else is logged with its traceback. Called inside the listener's `except` block."""
        if isinstance(exc, (psycopg.Error, OSError, TimeoutError)):
            if self.up or not self._warned:  # once per outage
                logger.warning("alert stream: no database (%s); retrying with backoff",
                               _first_line(exc))
                self._warned = True
        else:
            logger.exception("alert stream: listener failed; restarting it")
        self._set_up(False)

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
                                  alert.resident_id, family_data=partial(_family_event, alert))

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


def _backoff(settings: StreamSettings) -> Backoff:
    """Reconnect delays from the settings, each a random 50-100 % share so that many web
    processes that lost the same database do not come back in step."""
    return Backoff(settings.backoff_min_s, settings.backoff_max_s, jitter=random_share)


def _first_line(exc: BaseException) -> str:
    """The first line of an error message (libpq's run over several lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

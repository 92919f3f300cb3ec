"""Database connections with the platform's session settings.

Part of the shared kernel. Migrations are the composition root's (eldercare.migrate).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

Conn = psycopg.Connection[Any]
"""A connection as every module uses it (rows as tuples unless a row factory is given)."""
AsyncConn = psycopg.AsyncConnection[Any]
"""The same for asyncio code (the web app, the notification dispatcher)."""


CONNECT_TIMEOUT_S = 10
"""How long opening a connection may take by default. A server that accepts the TCP
connection but never answers (stopped with SIGSTOP, a stuck disk, a half-dead network) would
otherwise hold the caller for ever: a pipeline restarted during such an outage must give up
and start from its cached registry, so that alarms still reach the live feed."""


def connect(database_url: str, autocommit: bool = False, connect_timeout: int | None = None
            ) -> psycopg.Connection[tuple[object, ...]]:
    """Open one connection with the platform's session settings. `connect_timeout` (seconds)
    bounds the wait for a server that accepts the TCP connection but does not answer
    (psycopg enforces libpq's connect_timeout itself): the URL's own `connect_timeout` if it
    has one, else `CONNECT_TIMEOUT_S`."""
    if connect_timeout is None and "connect_timeout" not in conninfo_to_dict(database_url):
        connect_timeout = CONNECT_TIMEOUT_S
    extra: dict[str, Any] = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
    return psycopg.connect(database_url, autocommit=autocommit,
                           options="-c timezone=UTC -c application_name=eldercare", **extra)

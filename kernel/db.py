"""Database connections with the platform's session settings.

Part of the shared kernel. Migrations are the composition root's (eldercare.migrate).
"""

from __future__ import annotations

from typing import Any

import psycopg

Conn = psycopg.Connection[Any]
"""A connection as every module uses it (rows as tuples unless a row factory is given)."""
AsyncConn = psycopg.AsyncConnection[Any]
"""The same for asyncio code (the web app, the notification dispatcher)."""


def connect(database_url: str, autocommit: bool = False, connect_timeout: int | None = None
            ) -> psycopg.Connection[tuple[object, ...]]:
    """Open one connection with the platform's session settings; `connect_timeout` (seconds)
    bounds the wait for a server that accepts the TCP connection but does not answer."""
    extra: dict[str, Any] = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
    return psycopg.connect(database_url, autocommit=autocommit,
                           options="-c timezone=UTC -c application_name=eldercare", **extra)

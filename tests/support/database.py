"""Short queries on the real test database, each on a fresh autocommit connection."""

from __future__ import annotations

from typing import Any

from kernel import db


def count(database_url: str, sql: str, *params: object) -> int:
    """Run a COUNT query."""
    with db.connect(database_url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return int(str(row[0])) if row else 0


def query_one(database_url: str, query: str, *params: object) -> tuple[Any, ...] | None:
    """First row of a query."""
    with db.connect(database_url, autocommit=True) as conn:
        return conn.execute(query, params).fetchone()


def execute(database_url: str, query: str, *params: object) -> None:
    """Run one statement (test set-up only)."""
    with db.connect(database_url, autocommit=True) as conn:
        conn.execute(query, params)

"""The platform VAPID key pair: generated once, shared through platform_keys."""

from __future__ import annotations

import asyncio
import base64

import psycopg

from alerts.notify.vapid import (
    VAPID_PUBLIC_KEY_NAME,
    load_or_create_vapid,
    public_key_b64url,
    public_key_b64url_async,
    public_key_of,
)
from kernel import db
from tests.alerts.notify.seed import sql


def decode(b64: str) -> bytes:
    return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))


def test_generated_once_and_shared(clean_db):
    with db.connect(clean_db, autocommit=True) as conn:
        first = public_key_b64url(conn)
    with db.connect(clean_db) as conn:  # another process, in a transaction
        again = public_key_of(load_or_create_vapid(conn))
    assert first == again
    point = decode(first)
    assert len(point) == 65 and point[0] == 4  # uncompressed P-256 point
    assert sql(clean_db, "SELECT count(*) FROM platform_keys") == [(2,)]
    assert sql(clean_db, "SELECT value FROM platform_keys WHERE name = %s",
               VAPID_PUBLIC_KEY_NAME) == [(first,)]


def test_async_variant_agrees(clean_db):
    async def fetch() -> str:
        async with await psycopg.AsyncConnection.connect(clean_db, autocommit=True) as conn:
            return await public_key_b64url_async(conn)

    created = asyncio.run(fetch())
    with db.connect(clean_db, autocommit=True) as conn:
        assert public_key_b64url(conn) == created
    assert asyncio.run(fetch()) == created

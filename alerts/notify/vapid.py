"""The platform's VAPID key pair (Web Push), generated once and kept in `platform_keys` so the
web app (applicationServerKey) and every dispatcher use the same one."""

from __future__ import annotations

import base64
import logging

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from kernel.db import AsyncConn, Conn

logger = logging.getLogger(__name__)


VAPID_KEY_NAME = "vapid_private_key"
VAPID_PUBLIC_KEY_NAME = "vapid_public_key"  # read by the web app (applicationServerKey)

_SELECT = "SELECT value FROM platform_keys WHERE name = %s"
_INSERT = ("INSERT INTO platform_keys (name, value) VALUES (%s, %s) "
           "ON CONFLICT (name) DO NOTHING")
# The public row always follows the private key that won.
_PUBLISH = ("INSERT INTO platform_keys (name, value) VALUES (%s, %s) ON CONFLICT (name) "
            "DO UPDATE SET value = EXCLUDED.value WHERE platform_keys.value <> EXCLUDED.value")


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_private_key_b64url() -> str:
    """A fresh P-256 private key as its raw 32-byte scalar, base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def vapid_from_value(value: str) -> Vapid02:
    """The VAPID signer for a stored private key."""
    return Vapid02.from_raw(value.encode())


def public_key_of(vapid: Vapid02) -> str:
    """The uncompressed public point, base64url (the browser's applicationServerKey)."""
    point = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return b64url(point)


def load_or_create_vapid(conn: Conn) -> Vapid02:
    """The platform VAPID signer, generating and storing the key pair on first use (two
    processes racing agree on one key; the public key is stored as `vapid_public_key` too).
    Commits unless called inside an open transaction."""
    with conn.transaction():
        row = conn.execute(_SELECT, (VAPID_KEY_NAME,)).fetchone()
        if row is None:
            conn.execute(_INSERT, (VAPID_KEY_NAME, new_private_key_b64url()))
            row = conn.execute(_SELECT, (VAPID_KEY_NAME,)).fetchone()
            logger.info("generated the platform VAPID key pair")
        assert row is not None
        vapid = vapid_from_value(str(row[0]))
        conn.execute(_PUBLISH, (VAPID_PUBLIC_KEY_NAME, public_key_of(vapid)))
    return vapid


def public_key_b64url(conn: Conn) -> str:
    """The platform VAPID public key for `PushManager.subscribe({applicationServerKey})`."""
    return public_key_of(load_or_create_vapid(conn))


async def public_key_b64url_async(conn: AsyncConn) -> str:
    """`public_key_b64url` for the web app's async connections."""
    async with conn.transaction():
        row = await (await conn.execute(_SELECT, (VAPID_KEY_NAME,))).fetchone()
        if row is None:
            await conn.execute(_INSERT, (VAPID_KEY_NAME, new_private_key_b64url()))
            row = await (await conn.execute(_SELECT, (VAPID_KEY_NAME,))).fetchone()
            logger.info("generated the platform VAPID key pair")
        assert row is not None
        public = public_key_of(vapid_from_value(str(row[0])))
        await conn.execute(_PUBLISH, (VAPID_PUBLIC_KEY_NAME, public))
    return public

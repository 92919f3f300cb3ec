"""Registry administration: sites, residents, devices (with broker accounts) and users."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from pwdlib import PasswordHash
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from gateway.broker_admin import BrokerAdmin, MqttEndpoint
from gateway.schema import DeviceType, device_topic_prefix, is_valid_device_id, is_valid_site


class Role(StrEnum):
    """What a person may do and see (users.role)."""

    ADMIN = "admin"
    DUTY_OFFICER = "duty_officer"
    CARE_WORKER = "care_worker"
    FAMILY = "family"


ROLES = tuple(r.value for r in Role)
_hasher = PasswordHash.recommended()
MIN_PASSWORD_LENGTH = 12
MIN_PASSWORD_SCORE = 3  # zxcvbn's 0-4 scale
MAX_USERNAME = 150  # the login form refuses longer names (dashboard.models.Username)


class RegistryError(ValueError):
    """A registry change that cannot be made; the message says why."""


def hash_password(password: str) -> str:
    """Hash a person's password (Argon2id)."""
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords from leaked-password corpora, as shipped (and kept
    up to date) by zxcvbn; loaded once, on the first password check."""
    return frozenset(str(p) for p in FREQUENCY_LISTS["passwords"])


# Login names: ASCII letters, digits and . _ @ + -, starting with a letter or digit (an e-mail
# address or a phone number fits). ASCII only, because case-insensitive comparison must mean
# the same in Python (the login throttle) and in PostgreSQL (lower() in the lookup and the
# unique index): for "İ" or "ſ" they disagree, which let look-alike names ("carer-eaſt")
# through and gave each look-alike spelling its own throttle budget. Display names
# (full_name) may be in any script.
_USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")


def is_valid_username(username: str) -> bool:
    """True for a login name `check_username` accepts."""
    return (len(username) <= MAX_USERNAME and username.isascii()
            and _USERNAME_RE.fullmatch(username) is not None)


def username_key(username: str) -> str:
    """The one case-insensitive form of a login name, as the login lookup, its throttle and
    the unique index (lower(username)) compare it; exact for valid (ASCII) names."""
    return username.lower()


def check_username(username: str) -> None:
    """Refuse a login name the platform cannot compare safely (see _USERNAME_RE)."""
    if not is_valid_username(username):
        raise RegistryError(
            f"username must be 1 to {MAX_USERNAME} characters: letters A-Z, digits and "
            ". _ @ + - (starting with a letter or digit); put the person's name in "
            "--full-name")


def check_password_policy(password: str, username: str = "") -> None:
    """Refuse a password that is easy to guess: shorter than MIN_PASSWORD_LENGTH, one of the
    common passwords (compared case-insensitively), or the username itself. Every way of
    setting a password goes through here, so the policy is one place."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RegistryError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if password.casefold() in _common_passwords():
        raise RegistryError("password is one of the most common passwords; choose another")
    if username and password.casefold() == username.casefold():
        raise RegistryError("password must not be the username")
    # Long but guessable ("123456789012", "passwordpassword", "qwertyuiopas"): zxcvbn's
    # estimate (keyboard walks, repeats, sequences, dictionary words, the username) must reach
    # score 3 (about 10^8 guesses). Only the first 100 characters are scored (cost bound).
    strength = zxcvbn(password[:100], user_inputs=[username] if username else [])
    if strength["score"] < MIN_PASSWORD_SCORE:
        hint = strength["feedback"]["warning"] or "add more words or characters"
        raise RegistryError(f"password is too easy to guess ({hint.rstrip('.')}); "
                            "choose a longer or less predictable one")


def verify_password(password: str, password_hash: str) -> bool:
    """Check a person's password against its hash."""
    try:
        return bool(_hasher.verify(password, password_hash))
    except Exception:  # malformed hash: treat as a failed login
        return False


def hash_device_secret(secret: str) -> str:
    """Hash a device secret. Secrets are 128+ random bits, so a fast salted SHA-256 is enough."""
    salt = secrets.token_hex(8)
    return f"sha256${salt}${hashlib.sha256((salt + secret).encode()).hexdigest()}"


def verify_device_secret(secret: str, stored: str) -> bool:
    """Check a device secret against its stored hash."""
    try:
        _, salt, digest = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(digest, hashlib.sha256((salt + secret).encode()).hexdigest())


_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1024)  # bounded: names come from HTTP requests too
def is_valid_timezone(name: str) -> bool:
    """True for an IANA time zone this machine knows (night and morning rules use it); not
    the tz database's helper files (`localtime` is this server's zone, not the resident's)."""
    if name in _NOT_ZONES or name.startswith(("posix/", "right/")):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def add_site(conn: psycopg.Connection[Any], site_id: str, name: str, timezone: str = "UTC"
             ) -> None:
    """Create a site (idempotent)."""
    if not is_valid_site(site_id):
        raise RegistryError(f"site id {site_id!r} must be 1-32 of a-z, 0-9 and '-'")
    if not is_valid_timezone(timezone):
        raise RegistryError(f"unknown time zone {timezone!r}: use an IANA name such as "
                            "'Asia/Shanghai' or 'Europe/Berlin'")
    conn.execute("INSERT INTO sites (id, name, timezone) VALUES (%s, %s, %s) "
                 "ON CONFLICT (id) DO NOTHING", (site_id, name, timezone))


def add_resident(conn: psycopg.Connection[Any], site_id: str, full_name: str,
                 address: str | None = None, birth_year: int | None = None) -> int:
    """Create a resident at a site; return the new id."""
    if conn.execute("SELECT 1 FROM sites WHERE id = %s", (site_id,)).fetchone() is None:
        raise RegistryError(f"no site {site_id!r}; create it first")
    row = conn.execute(
        "INSERT INTO residents (site_id, full_name, address, birth_year) "
        "VALUES (%s, %s, %s, %s) RETURNING id", (site_id, full_name, address, birth_year),
    ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class DeviceCredentials:
    """What an installer needs to configure a device (the password is shown once)."""

    device_id: str
    type: str
    site: str
    resident_id: int
    username: str
    password: str
    topic_prefix: str
    mqtt_host: str
    mqtt_port: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return asdict(self)


def new_device_id(device_type: DeviceType) -> str:
    """A fresh random device id with a readable prefix."""
    prefix = "bed" if device_type is DeviceType.BED_SENSOR else "btn"
    return f"{prefix}-{secrets.token_hex(5)}"


def add_device(conn: psycopg.Connection[Any], admin: BrokerAdmin, broker: MqttEndpoint,
               resident_id: int, device_type: DeviceType, device_id: str | None = None
               ) -> DeviceCredentials:
    """Register a device for a resident and create its broker account, live."""
    row = conn.execute("SELECT site_id FROM residents WHERE id = %s AND active",
                       (resident_id,)).fetchone()
    if row is None:
        raise RegistryError(f"no active resident with id {resident_id}")
    site = str(row[0])
    device_id = device_id or new_device_id(device_type)
    if not is_valid_device_id(device_id):
        raise RegistryError(f"device id {device_id!r} must be 1-64 of A-Z, a-z, 0-9, '_', '-'")
    password = secrets.token_urlsafe(18)
    with conn.transaction():
        try:
            conn.execute(
                "INSERT INTO devices (id, site_id, resident_id, type, credentials_hash) "
                "VALUES (%s, %s, %s, %s, %s)",
                (device_id, site, resident_id, device_type.value, hash_device_secret(password)),
            )
        except psycopg.errors.UniqueViolation:
            raise RegistryError(f"device {device_id!r} is already registered") from None
        # Create the broker account inside the transaction: if it fails, nothing is stored.
        admin.add_device(device_id, site, password)
    return DeviceCredentials(device_id, device_type.value, site, resident_id, device_id,
                             password, device_topic_prefix(site, device_id), broker.host,
                             broker.port)


def add_user(conn: psycopg.Connection[Any], username: str, password: str, role: str,
             site_id: str | None = None, full_name: str = "", on_duty: bool = False,
             residents: list[int] | None = None) -> int:
    """Create a person's account; family members are linked to their residents."""
    if role not in ROLES:
        raise RegistryError(f"role must be one of {', '.join(ROLES)}")
    if role in ("duty_officer", "care_worker") and not site_id:
        raise RegistryError(f"a {role} needs --site")
    if role == "family" and not residents:
        raise RegistryError("a family member needs at least one --resident")
    check_username(username)
    check_password_policy(password, username)
    _check_username_free(conn, username)
    _check_residents_exist(conn, residents or [])
    try:
        row = conn.execute(
            "INSERT INTO users (username, password_hash, full_name, role, site_id, on_duty) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (username, hash_password(password), full_name, role, site_id, on_duty),
        ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise RegistryError(f"user {username!r} already exists") from None
    except psycopg.errors.ForeignKeyViolation:
        raise RegistryError(f"no site {site_id!r}") from None
    assert row is not None
    user_id = int(row[0])
    for resident_id in residents or []:
        conn.execute("INSERT INTO family_contacts (user_id, resident_id) VALUES (%s, %s) "
                     "ON CONFLICT DO NOTHING", (user_id, resident_id))
    return user_id


def _check_username_free(conn: psycopg.Connection[Any], username: str) -> None:
    """Usernames are unique regardless of case (the login form ignores case), so `Admin`
    cannot be created beside `admin`; the unique index on lower(username) backs this up."""
    row = conn.execute("SELECT username FROM users WHERE lower(username) = %s",
                       (username_key(username),)).fetchone()
    if row is None:
        return
    if str(row[0]) == username:
        raise RegistryError(f"user {username!r} already exists")
    raise RegistryError(f"user {username!r} already exists as {str(row[0])!r} "
                        "(usernames are not case-sensitive)")


def _check_residents_exist(conn: psycopg.Connection[Any], residents: list[int]) -> None:
    """A clear error for a resident id that does not exist (instead of a foreign-key
    violation after the account was half made)."""
    if not residents:
        return
    rows = conn.execute("SELECT id FROM residents WHERE id = ANY(%s)", (residents,)).fetchall()
    known = {int(r[0]) for r in rows}
    for resident_id in residents:
        if resident_id not in known:
            raise RegistryError(f"resident {resident_id} does not exist")


def set_user_active(conn: psycopg.Connection[Any], username: str, active: bool) -> int:
    """Activate or deactivate an account (by username, case-insensitively); return its id.

    Deactivating revokes every session of the account at once (a trigger on users, so any
    path that deactivates does it); activating again does not revive them: the person logs
    in anew.
    """
    row = conn.execute("UPDATE users SET active = %s WHERE lower(username) = %s "
                       "RETURNING id", (active, username_key(username))).fetchone()
    if row is None:
        raise RegistryError(f"user {username!r} does not exist")
    return int(row[0])

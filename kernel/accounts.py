"""People and their accounts: roles, login names, password policy and hashing, device
secret hashes, and creating or (de)activating users.

Part of the shared kernel: every feature package may use it; it imports none of them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from enum import StrEnum
from functools import lru_cache
from typing import Any

import psycopg
from pwdlib import PasswordHash
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from kernel.i18n import N_, Said


class Role(StrEnum):
    """What a person may do and see (users.role)."""

    ADMIN = "admin"
    DUTY_OFFICER = "duty_officer"
    CARE_WORKER = "care_worker"
    FAMILY = "family"
    # A wall display's own account (dashboard/displays.py): no password, read-and-acknowledge
    # only; never given to a person.
    DISPLAY = "display"


# The roles a person's account may be given (a display account is made by setting up a wall
# display, never by hand).
ROLES = tuple(r.value for r in Role if r is not Role.DISPLAY)
# What each role is called on the pages (translated with kernel.i18n.translate).
ROLE_LABELS: dict[str, str] = {
    Role.ADMIN: N_("Administrator"),
    Role.DUTY_OFFICER: N_("Duty officer"),
    Role.CARE_WORKER: N_("Care worker"),
    Role.FAMILY: N_("Family"),
    Role.DISPLAY: N_("Wall display"),
}


def role_word(role: str) -> Said:
    """A role inside a sentence: its id in English (as the API always said it), its label in
    other languages ("护理员" rather than "care_worker")."""
    return Said.word(role, ROLE_LABELS.get(role, role))


_hasher = PasswordHash.recommended()
MIN_PASSWORD_LENGTH = 12
MIN_PASSWORD_SCORE = 3  # zxcvbn's 0-4 scale
MAX_USERNAME = 150  # the login form refuses longer names (dashboard.models.Username)


class RegistryError(ValueError):
    """A registry change that cannot be made; the message says why and `field` names the
    value that was refused ("username", "password", "role", "site_id", "residents"), so the
    web API can show the message next to that field. Messages never name CLI flags: the
    same words reach the API and the pages."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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
        raise RegistryError(Said(N_(
            "username must be 1 to {max} characters: letters A-Z, digits and "
            ". _ @ + - (starting with a letter or digit); the person's own name goes in "
            "the full name"), max=MAX_USERNAME), "username")


def check_password_policy(password: str, username: str = "") -> None:
    """Refuse a password that is easy to guess: shorter than MIN_PASSWORD_LENGTH, one of the
    common passwords (compared case-insensitively), or the username itself. Every way of
    setting a password goes through here, so the policy is one place."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RegistryError(Said(N_("password must be at least {min} characters"),
            min=MIN_PASSWORD_LENGTH), "password")
    if password.casefold() in _common_passwords():
        raise RegistryError(N_("password is one of the most common passwords; choose "
                               "another"), "password")
    if username and password.casefold() == username.casefold():
        raise RegistryError(N_("password must not be the username"), "password")
    # Long but guessable ("123456789012", "passwordpassword", "qwertyuiopas"): zxcvbn's
    # estimate (keyboard walks, repeats, sequences, dictionary words, the username) must reach
    # score 3 (about 10^8 guesses). Only the first 100 characters are scored (cost bound).
    strength = zxcvbn(password[:100], user_inputs=[username] if username else [])
    if strength["score"] < MIN_PASSWORD_SCORE:
        hint = strength["feedback"]["warning"] or "add more words or characters"
        raise RegistryError(Said(N_("password is too easy to guess ({hint}); choose a longer or "
                               "less predictable one"), hint=hint.rstrip(".")),
                            "password")


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


def add_user(conn: psycopg.Connection[Any], username: str, password: str, role: str,
             site_id: str | None = None, full_name: str = "", on_duty: bool = False,
             residents: list[int] | None = None) -> int:
    """Create a person's account; family members are linked to their residents."""
    if role not in ROLES:
        raise RegistryError(Said(N_("role must be one of {roles}"), roles=", ".join(ROLES)),
                            "role")
    if role in ("duty_officer", "care_worker") and not site_id:
        raise RegistryError(Said(N_("a {role} needs a site"), role=role_word(role)),
                            "site_id")
    if role == "family" and not residents:
        raise RegistryError(N_("a family member needs at least one resident"), "residents")
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
        raise RegistryError(Said(N_("user {name!r} already exists"), name=username),
                            "username") from None
    except psycopg.errors.ForeignKeyViolation:
        raise RegistryError(Said(N_("no site {site!r}"), site=site_id), "site_id") from None
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
        raise RegistryError(Said(N_("user {name!r} already exists"), name=username),
                            "username")
    raise RegistryError(Said(N_("user {name!r} already exists as {other!r} (usernames are not "
                           "case-sensitive)"), name=username, other=str(row[0])),
                        "username")


def _check_residents_exist(conn: psycopg.Connection[Any], residents: list[int]) -> None:
    """A clear error for a resident id that does not exist (instead of a foreign-key
    violation after the account was half made)."""
    if not residents:
        return
    rows = conn.execute("SELECT id FROM residents WHERE id = ANY(%s)", (residents,)).fetchall()
    known = {int(r[0]) for r in rows}
    for resident_id in residents:
        if resident_id not in known:
            raise RegistryError(Said(N_("resident {id} does not exist"), id=resident_id),
                                "residents")


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


def generate_password() -> str:
    """A temporary password an administrator hands over once: 4 random words' worth of
    entropy (~100 bits) in a form that reads out over the phone (groups of lowercase letters
    and digits). It passes check_password_policy."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    groups = ["".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4)]
    return "-".join(groups)


def reset_password(conn: psycopg.Connection[Any], username: str,
                   password: str | None = None) -> tuple[int, str]:
    """Give an account a temporary password the person must change at their next login
    (generated when `password` is None); end its sessions and remove its second factor (the
    way back for someone who lost their authenticator). Returns the id and the password."""
    row = conn.execute("SELECT id, username FROM users WHERE lower(username) = %s",
                       (username_key(username),)).fetchone()
    if row is None:
        raise RegistryError(f"user {username!r} does not exist")
    temporary = password if password is not None else generate_password()
    check_password_policy(temporary, str(row[1]))
    conn.execute("UPDATE users SET password_hash = %s, must_change_password = true, "
                 "totp_enabled = false, totp_secret = NULL WHERE id = %s",
                 (hash_password(temporary), row[0]))
    conn.execute("UPDATE sessions SET revoked_at = now(), revoked_reason = 'password reset' "
                 "WHERE user_id = %s AND revoked_at IS NULL", (row[0],))
    return int(row[0]), temporary

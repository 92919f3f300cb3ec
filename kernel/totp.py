"""Time-based one-time passwords (RFC 6238, via pyotp): the optional second factor of staff
accounts. Pure functions of (secret, code, instant) so tests choose the time."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

ISSUER = "Eldercare"
STEP_S = 30
# One step either side: a phone clock a little off, or a code typed as it changed.
WINDOW = 1


def new_secret() -> str:
    """A fresh random base32 secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI an authenticator app scans (as a QR code) to enrol."""
    return pyotp.TOTP(secret, interval=STEP_S).provisioning_uri(name=username,
                                                                 issuer_name=ISSUER)


def code_at(secret: str, instant: datetime) -> str:
    """The code an authenticator shows at `instant` (tests and the page's self-check)."""
    return pyotp.TOTP(secret, interval=STEP_S).at(instant)


def totp_step(secret: str, code: str, instant: datetime) -> int | None:
    """The time step whose code `code` is, within WINDOW steps of `instant`; None when it is
    none of them. Callers remember the step so a code is never accepted twice."""
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret, interval=STEP_S)
    now_step = int(instant.timestamp()) // STEP_S
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None

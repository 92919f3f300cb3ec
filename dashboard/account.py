"""My account: change my password, enrol a TOTP second factor; and accepting a family
invitation (the one public route here: the one-time token is the credential).

These routes take the session directly (CurrentSession), not CurrentUser, because a session
that must first change its password or enrol TOTP may still use them (dashboard.auth).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import segno
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dashboard import language
from dashboard.audit import audited
from dashboard.auth import CurrentSession
from dashboard.deps import ConnDep
from dashboard.errors import FieldRefusal, words_of
from dashboard.models import Password
from dashboard.staff import invite_hash
from dashboard.vocabulary import Language
from kernel.accounts import RegistryError, check_password_policy, hash_password, verify_password
from kernel.audit import Action
from kernel.i18n import DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES, N_
from kernel.totp import new_secret, provisioning_uri, totp_step

logger = logging.getLogger(__name__)
router = APIRouter(tags=["auth"])


class PasswordChangeIn(BaseModel):
    """The current password (proof it is you) and the new one."""

    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: Password


class TotpEnrolOut(BaseModel):
    """What an authenticator app needs: scan `qr_svg` or type `secret`."""

    model_config = ConfigDict(frozen=True)

    secret: str
    otpauth_uri: str
    qr_data_uri: str = Field(description="The otpauth URI as an SVG QR code (data: URI, for "
                                         "an <img>).")


class TotpCodeIn(BaseModel):
    """A code from the authenticator app."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[0-9]{6}$")


class TotpStateOut(BaseModel):
    """Whether the second factor is on."""

    model_config = ConfigDict(frozen=True)

    totp_enabled: bool


class InviteAcceptIn(BaseModel):
    """The token from the invitation link and the password the relative chooses."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    password: Password




@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT,
             dependencies=[audited(Action.PASSWORD_CHANGE, "user")],
             responses={400: {"description": "Wrong current password"},
                        422: {"description": "New password refused by the policy"}})
async def change_password(body: PasswordChangeIn, session: CurrentSession,
                          conn: ConnDep) -> None:
    """Change your password; your other sessions end (this one stays)."""
    user = session.user
    cur = await conn.execute("SELECT password_hash FROM users WHERE id = %s", (user.id,))
    row = await cur.fetchone()
    if row is None or not await run_in_threadpool(verify_password, body.current_password,
                                                  str(row[0])):
        raise FieldRefusal("current_password", N_("Your current password is wrong"),
                           status_code=status.HTTP_400_BAD_REQUEST)
    if body.new_password == body.current_password:
        raise FieldRefusal("new_password",
                           N_("the new password must differ from the current one"))
    try:
        check_password_policy(body.new_password, user.username)
    except RegistryError as exc:
        raise FieldRefusal("new_password", words_of(exc)) from None
    password_hash = await run_in_threadpool(hash_password, body.new_password)
    async with conn.transaction():
        await conn.execute("UPDATE users SET password_hash = %s, must_change_password = false "
                           "WHERE id = %s", (password_hash, user.id))
        await conn.execute(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = 'password changed' "
            "WHERE user_id = %s AND id <> %s AND revoked_at IS NULL",
            (user.id, session.claims.session_id))
    logger.info("user %s changed their password", user.username)


@router.post("/me/totp", response_model=TotpEnrolOut,
             dependencies=[audited(Action.PASSWORD_CHANGE, "user")],
             responses={409: {"description": "Already enrolled (an administrator resets it)"}})
async def enrol_totp(session: CurrentSession, conn: ConnDep) -> TotpEnrolOut:
    """Start enrolling a second factor: a new secret, shown once, on until confirmed."""
    user = session.user
    secret = new_secret()
    cur = await conn.execute("UPDATE users SET totp_secret = %s WHERE id = %s "
                             "AND NOT totp_enabled", (secret, user.id))
    if cur.rowcount == 0:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            N_("A second factor is already set up; an administrator's password "
                               "reset removes it"))
    uri = provisioning_uri(secret, user.username)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, dark="#000", light="#fff")
    return TotpEnrolOut(secret=secret, otpauth_uri=uri, qr_data_uri=qr)


@router.post("/me/totp/confirm", response_model=TotpStateOut,
             dependencies=[audited(Action.PASSWORD_CHANGE, "user")],
             responses={400: {"description": "Wrong code, or no enrolment started"}})
async def confirm_totp(body: TotpCodeIn, session: CurrentSession,
                       conn: ConnDep) -> TotpStateOut:
    """Turn the second factor on with a first code from the app; every later login then
    needs a code."""
    user = session.user
    cur = await conn.execute("SELECT totp_secret FROM users WHERE id = %s AND NOT totp_enabled",
                             (user.id,))
    row = await cur.fetchone()
    if row is None or row[0] is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, N_("Start the enrolment first"))
    step = totp_step(str(row[0]), body.code, datetime.now(UTC))
    if step is None:
        raise FieldRefusal("code", N_("That code does not match; check the phone's clock and "
                                      "try again"), status_code=status.HTTP_400_BAD_REQUEST)
    await conn.execute("UPDATE users SET totp_enabled = true, totp_last_step = %s "
                       "WHERE id = %s", (step, user.id))
    logger.info("user %s enrolled a second factor", user.username)
    return TotpStateOut(totp_enabled=True)


@router.post("/auth/invite", status_code=status.HTTP_204_NO_CONTENT,
             responses={400: {"description": "Unknown, used or expired invitation"},
                        422: {"description": "Password refused by the policy"}})
async def accept_invite(body: InviteAcceptIn, conn: ConnDep) -> None:
    """Set your password with an invitation link (once, within 72 hours); then log in."""
    cur = await conn.execute(
        "SELECT i.user_id, u.username FROM account_invites i JOIN users u ON u.id = i.user_id "
        "WHERE i.token_hash = %s AND i.used_at IS NULL AND i.expires_at > now() AND u.active",
        (invite_hash(body.token),))
    row = await cur.fetchone()
    if row is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            N_("This invitation is unknown, used or expired; ask the centre "
                               "for a new one"))
    try:
        check_password_policy(body.password, str(row[1]))
    except RegistryError as exc:
        raise FieldRefusal("password", words_of(exc)) from None
    password_hash = await run_in_threadpool(hash_password, body.password)
    async with conn.transaction():
        used = await conn.execute("UPDATE account_invites SET used_at = now() "
                                  "WHERE token_hash = %s AND used_at IS NULL",
                                  (invite_hash(body.token),))
        if used.rowcount == 0:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, N_("This invitation was just used"))
        await conn.execute("UPDATE users SET password_hash = %s, must_change_password = false "
                           "WHERE id = %s", (password_hash, row[0]))
    logger.info("family account %s set its password by invitation", row[1])


class LanguageTerm(BaseModel):
    """A language the platform speaks, named in its own words (English, 简体中文)."""

    value: str
    label: str


class LanguageOut(BaseModel):
    """My language: what the pages and my notifications use, and whether I chose it."""

    language: str = Field(description="BCP 47 tag, e.g. `zh-CN`.")
    chosen: bool = Field(description="False: it follows my browser (updated at each login).")
    languages: list[LanguageTerm]


class LanguageIn(BaseModel):
    """Choose a language, or null to follow the browser again."""

    model_config = ConfigDict(extra="forbid")

    language: Language | None = Field(description="`en`, `zh-CN`, or null (follow the "
                                                  "browser).")


def _language_out(lang: str, chosen: bool) -> LanguageOut:
    return LanguageOut(language=lang, chosen=chosen,
                       languages=[LanguageTerm(value=code, label=LANGUAGE_NAMES[code])
                                  for code in LANGUAGES])


@router.get("/me/language", response_model=LanguageOut)
async def my_language(session: CurrentSession, conn: ConnDep) -> LanguageOut:
    """The language the pages and my notifications use."""
    cur = await conn.execute("SELECT language, language_chosen FROM users WHERE id = %s",
                             (session.user.id,))
    row = await cur.fetchone()
    if row is None:
        return _language_out(DEFAULT_LANGUAGE, False)
    return _language_out(str(row[0]), bool(row[1]))


@router.put("/me/language", response_model=LanguageOut)
async def choose_language(body: LanguageIn, session: CurrentSession, conn: ConnDep,
                          request: Request) -> LanguageOut:
    """Choose my language for the pages and my notifications (null: follow my browser,
    whose language this request carries)."""
    chosen = body.language is not None
    lang = body.language or language.api_language(request)
    await conn.execute("UPDATE users SET language = %s, language_chosen = %s WHERE id = %s",
                       (lang, chosen, session.user.id))
    logger.info("user %s: language %s (%s)", session.user.username, lang,
                "chosen" if chosen else "follows the browser")
    return _language_out(lang, chosen)

"""Refused input in words a person reads, placed on the field that was wrong.

Every refusal of a request's content reaches the client in one shape, whatever refused it
(FastAPI's request validation, a pydantic validator, the password policy, a taken login
name)::

    {"detail": "<one line for a message bar>",
     "errors": [{"loc": ["body", "phone"], "type": "string_pattern_mismatch",
                 "msg": "phone: digits, spaces, + and - only, 3-32 characters"}]}

`loc` and `type` are kept so a page puts each message next to its field
(static/form_errors.js); `msg` names the field and says what is allowed, never pydantic's
own wording ("String should match pattern '^...$'"), which is written for programmers.

Every message is said in the language of the request (`dashboard.language.api_language`:
the pages send theirs as Accept-Language): the words are English texts marked with `N_`,
translated here, in one place, just before answering. Routes raise `HTTPException` with a
marked fixed text, or a `kernel.i18n.Said` when the sentence has values
(`Said(N_("... {minutes} ..."), minutes=5)`), which is translated before it is filled in;
`http_error` below says either in the reader's language. English answers are the English
texts themselves. Machine-readable parts (`loc`, `type`, headers, status codes) are never
translated.

This module is the one place that turns pydantic's error types into those words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboard.language import api_language
from kernel.accounts import RegistryError
from kernel.i18n import DEFAULT_LANGUAGE, N_, Said, say, translate
from kernel.sites import SITE_PATTERN

# What a pattern allows, for each pattern a request model uses (tests/dashboard/
# test_errors.py checks that every pattern in the OpenAPI document is listed here).
PATTERN_WORDS: dict[str, str] = {
    rf"^{SITE_PATTERN}$": N_("lowercase letters a-z, digits and - only, 1-32 characters"),
    r"^[a-z0-9-]{1,32}$": N_("lowercase letters a-z, digits and - only, 1-32 characters"),
    r"^[a-z0-9][a-z0-9-]{0,62}$": N_(
        "lowercase letters a-z, digits and -, starting with a letter or digit, "
        "1-63 characters"),
    r"^[0-9+() .-]*$": N_("digits, spaces, + ( ) . and - only"),
    r"^[0-9]{6}$": N_("exactly 6 digits"),
    r"^[0-9]{0,8}$": N_("digits only, at most 8"),
    r"^[A-Za-z0-9_-]+$": N_("letters A-Z, digits, _ and - only"),
    r"^[A-Za-z0-9_-]{1,64}$": N_("letters A-Z, digits, _ and - only, 1-64 characters"),
    r"^[a-z0-9_]{1,32}$": N_("lowercase letters a-z, digits and _ only, 1-32 characters"),
    r"^[^\x00-\x1f]+$": N_("text without control characters"),
    "^password$": N_("the word 'password'"),
}

# Each pydantic error type (https://docs.pydantic.dev/latest/errors/validation_errors/) as
# plain words; `{...}` are filled from the error's context.
TYPE_WORDS: dict[str, str] = {
    "missing": N_("required"),
    "string_too_short": N_("at least {min_length} characters"),
    "string_too_long": N_("at most {max_length} characters"),
    "string_type": N_("must be text"),
    "string_unicode": N_("must be text"),
    "int_parsing": N_("must be a whole number"),
    "int_type": N_("must be a whole number"),
    "int_from_float": N_("must be a whole number"),
    "float_parsing": N_("must be a number"),
    "float_type": N_("must be a number"),
    "finite_number": N_("must be a number"),
    "decimal_parsing": N_("must be a number"),
    "bool_parsing": N_("must be yes or no (true or false)"),
    "bool_type": N_("must be yes or no (true or false)"),
    "greater_than_equal": N_("must be {ge} or more"),
    "greater_than": N_("must be more than {gt}"),
    "less_than_equal": N_("must be {le} or less"),
    "less_than": N_("must be less than {lt}"),
    "multiple_of": N_("must be a multiple of {multiple_of}"),
    "enum": N_("must be one of {expected}"),
    "literal_error": N_("must be one of {expected}"),
    "date_parsing": N_("must be a date (YYYY-MM-DD)"),
    "date_type": N_("must be a date (YYYY-MM-DD)"),
    "date_from_datetime_parsing": N_("must be a date (YYYY-MM-DD)"),
    "date_from_datetime_inexact": N_("must be a date (YYYY-MM-DD) without a time"),
    "datetime_parsing": N_("must be a date and time (YYYY-MM-DDTHH:MM with an offset)"),
    "datetime_type": N_("must be a date and time (YYYY-MM-DDTHH:MM with an offset)"),
    "datetime_from_date_parsing": N_("must be a date and time (YYYY-MM-DDTHH:MM with an "
                                     "offset)"),
    "timezone_aware": N_("must include a time-zone offset, e.g. +08:00"),
    "time_parsing": N_("must be a time of day (HH:MM)"),
    "time_type": N_("must be a time of day (HH:MM)"),
    "too_short": N_("needs at least {min_length} entries"),
    "too_long": N_("at most {max_length} entries"),
    "list_type": N_("must be a list"),
    "dict_type": N_("must be an object"),
    "model_type": N_("must be an object"),
    "model_attributes_type": N_("must be an object"),
    "extra_forbidden": N_("is not a field of this form"),
    "json_invalid": N_("the request is not valid JSON"),
    "json_type": N_("the request is not valid JSON"),
    "url_parsing": N_("must be a web address (URL)"),
    "url_scheme": N_("must be a web address (URL)"),
    "url_type": N_("must be a web address (URL)"),
    "uuid_parsing": N_("must be an identifier (UUID)"),
    "uuid_type": N_("must be an identifier (UUID)"),
}
# Each field name of the API's requests in words (translated like every marked text); the
# English words are the name itself with spaces (tests/dashboard/test_api_language.py
# checks that every field of the OpenAPI document is listed here).
FIELD_WORDS: dict[str, str] = {
    "access_notes": N_("access notes"), "action": N_("action"), "active": N_("active"),
    "actor": N_("actor"), "address": N_("address"), "alert": N_("alert"),
    "alert_id": N_("alert id"), "alerts": N_("alerts"), "assigned_to": N_("assigned to"),
    "at": N_("at"), "day": N_("day"), "days": N_("days"), "auth": N_("auth"),
    "before": N_("before"), "birth_date": N_("birth date"),
    "birth_year": N_("birth year"), "body": N_("body"), "bucket": N_("bucket"),
    "care_level": N_("care level"), "channel_id": N_("channel id"), "checklist": N_("checklist"),
    "code": N_("code"), "contacts": N_("contacts"), "current_password": N_("current password"),
    "cursor": N_("cursor"), "date": N_("date"), "device_id": N_("device id"),
    "display_id": N_("display id"), "door_code": N_("door code"), "dry_run": N_("dry run"),
    "due_on": N_("due on"), "endpoint": N_("endpoint"), "ends_local": N_("ends local"),
    "file": N_("file"), "findings": N_("findings"), "follow_up": N_("follow up"),
    "follow_up_note": N_("follow up note"), "from": N_("from"), "full_name": N_("full name"),
    "given_by": N_("given by"), "given_on": N_("given on"), "gp": N_("gp"),
    "grant_type": N_("grant type"), "granted": N_("granted"), "health_notes": N_("health notes"),
    "high_risk_interval_days": N_("high risk interval days"), "id": N_("id"),
    "include_revoked": N_("include revoked"), "interval_days": N_("interval days"),
    "keys": N_("keys"), "kind": N_("kind"), "lang": N_("lang"), "language": N_("language"),
    "limit": N_("limit"), "living_situation": N_("living situation"), "method": N_("method"),
    "min_severity": N_("min severity"), "name": N_("name"), "new_consents": N_("new consents"),
    "new_password": N_("new password"), "note": N_("note"), "notified": N_("notified"),
    "offset": N_("offset"), "on_duty": N_("on duty"), "online": N_("online"), "open": N_("open"),
    "outcome": N_("outcome"), "overdue": N_("overdue"), "override": N_("override"),
    "p256dh": N_("p256dh"), "password": N_("password"), "period": N_("period"),
    "phone": N_("phone"), "q": N_("q"), "quiet_end": N_("quiet end"),
    "quiet_start": N_("quiet start"), "relation": N_("relation"), "resident": N_("resident"),
    "resident_id": N_("resident id"), "residents": N_("residents"), "risk": N_("risk"),
    "risks": N_("risks"), "role": N_("role"), "scope": N_("scope"), "secret": N_("secret"),
    "session_id": N_("session id"), "severity": N_("severity"), "sex": N_("sex"),
    "shift_id": N_("shift id"), "since": N_("since"), "site": N_("site"),
    "site_id": N_("site id"), "starts_local": N_("starts local"), "status": N_("status"),
    "subscription": N_("subscription"), "target": N_("target"), "timezone": N_("timezone"),
    "to": N_("to"), "token": N_("token"), "totp": N_("totp"), "type": N_("type"),
    "until": N_("until"), "user_id": N_("user id"), "username": N_("username"),
    "visit_id": N_("visit id"), "worker": N_("worker"),
}
PATTERN_UNKNOWN = N_("not in the expected form")
INVALID = N_("invalid value")
FIELD_MESSAGE = N_("{field}: {problem}")
_LOCATIONS = {"query": N_("query parameter"), "path": N_("path parameter"),
              "body": N_("form field"), "header": N_("header"), "cookie": N_("cookie")}
_PREFIXES = ("Value error, ", "Assertion failed, ")


def field_name(loc: Sequence[Any], lang: str = DEFAULT_LANGUAGE) -> str:
    """The field a `loc` names, as a person reads it: ("body", "birth_year") -> "birth year";
    a nested one by its last name ("body", "contacts", 0, "phone") -> "phone" (in `lang`
    when the catalog has the field's words)."""
    names = [str(part) for part in loc[1:] if isinstance(part, str)]
    if not names:
        return ""
    return translate(FIELD_WORDS.get(names[-1], names[-1].replace("_", " ")), lang)


def _expected(ctx: Mapping[str, Any]) -> str:
    return str(ctx.get("expected", "")).replace(" or ", ", ")


def problem(error: Mapping[str, Any], lang: str = DEFAULT_LANGUAGE) -> str:
    """What is wrong with the value, in plain words in `lang`, without the field's name."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return translate(PATTERN_WORDS.get(str(ctx.get("pattern", "")), PATTERN_UNKNOWN), lang)
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return translate(TYPE_WORDS["missing"], lang)
    words = TYPE_WORDS.get(kind)
    if words is not None:
        try:
            return translate(words, lang).format(**{**ctx, "expected": _expected(ctx)})
        except (KeyError, IndexError, ValueError):
            pass  # raised by hand without its context: the sentence it came with
    # A validator's own sentence (value_error, assertion_error, a PydanticCustomError):
    # already written for people; pydantic only prefixes it with its class of error.
    text = error.get("msg") or INVALID
    if isinstance(text, Said):  # a FieldRefusal's sentence, with its values
        return text.said_in(lang)
    cause = ctx.get("error")  # a validator's exception: its own sentence, maybe a Said
    if isinstance(cause, Exception) and cause.args and isinstance(cause.args[0], Said):
        return cause.args[0].said_in(lang)
    text = str(text)
    for prefix in _PREFIXES:
        text = text.removeprefix(prefix)
    return translate(text, lang)


def readable(error: Mapping[str, Any], lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """One error in the API's shape: loc and type as FastAPI gives them, msg for people."""
    loc = list(error.get("loc") or ())
    name = field_name(loc, lang)
    what = problem(error, lang)
    return {"loc": loc, "type": error.get("type", "value_error"),
            "msg": translate(FIELD_MESSAGE, lang).format(field=name, problem=what)
            if name else what}


def _line(error: Mapping[str, Any], lang: str) -> str:
    """The error for the one-line `detail`, e.g. "form field 'phone': digits, ..."."""
    loc = [str(part) for part in error.get("loc") or ()]
    where = translate(_LOCATIONS.get(loc[0], loc[0]), lang) if loc else ""
    name = ".".join(part for part in loc[1:] if not part.isdigit())
    if name and lang != DEFAULT_LANGUAGE:  # the field in words rather than its JSON path
        name = field_name(list(error.get("loc") or ()), lang) or name
    text = problem(error, lang)
    value = error.get("input")
    if loc and loc[0] in ("query", "path") and isinstance(value, str | int):
        # never echo form input: it may be a password
        text = translate(N_("{problem} (got {value!r})"), lang).format(problem=text, value=value)
    return translate(N_("{where} '{name}': {problem}"), lang).format(
        where=where, name=name, problem=text) if name else text


def refusal_body(errors: Sequence[Mapping[str, Any]], detail: str | None = None,
                 lang: str = DEFAULT_LANGUAGE) -> Any:
    """The JSON body of a refusal in `lang`: `detail` (one line) and the field-level
    `errors`."""
    line = say(detail, lang) if detail is not None else translate(
        N_("Invalid request: {problems}"), lang).format(
        problems=translate(N_("; "), lang).join(_line(e, lang) for e in errors))
    return jsonable_encoder({"detail": line, "errors": [readable(e, lang) for e in errors]})


class FieldRefusal(Exception):  # noqa: N818 (a refusal, answered like a validation error)
    """A request the platform refuses because of one field's value, found after pydantic's
    checks (the password policy, a taken login name, a role without a site): answered in the
    same shape as a validation error, with its own status (422 or 409)."""

    def __init__(self, field: str, message: str, *, kind: str = "value_error",
                 status_code: int = status.HTTP_422_UNPROCESSABLE_CONTENT,
                 where: str = "body") -> None:
        super().__init__(message)
        self.loc = (where, field)
        self.message = message
        self.kind = kind
        self.status_code = status_code


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with a readable `detail` line plus the field-level errors (without inputs), in
    the request's language."""
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                        content=refusal_body(list(exc.errors()), lang=api_language(request)))


async def field_refusal(request: Request, exc: FieldRefusal) -> JSONResponse:
    """The refusal's status, its message as `detail`, and the one field-level error."""
    error = {"loc": exc.loc, "type": exc.kind, "msg": exc.message}
    return JSONResponse(status_code=exc.status_code,
                        content=refusal_body([error], detail=exc.message,
                                             lang=api_language(request)))


# Starlette's own details (an unknown path, a method a route does not have).
STARLETTE_DETAILS = (N_("Not Found"), N_("Method Not Allowed"))


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's answer to an HTTPException, its `detail` said in the request's language
    (a marked text or a `Said` sentence; status and headers as raised)."""
    lang = api_language(request)
    if lang != DEFAULT_LANGUAGE and isinstance(exc.detail, str):
        exc = HTTPException(exc.status_code, say(exc.detail, lang), headers=exc.headers)
    return await http_exception_handler(request, exc)


def registry_refusal(exc: RegistryError, field: str,
                     status_code: int = status.HTTP_422_UNPROCESSABLE_CONTENT) -> FieldRefusal:
    """A registry's refusal (kernel.accounts) on the field it names, else on `field` (its
    `Said` sentence kept, so it is answered in the reader's language)."""
    return FieldRefusal(exc.field or field, words_of(exc), status_code=status_code)


def words_of(exc: Exception) -> str:
    """An exception's message as raised: its `Said` sentence when it was given one (which
    `str(exc)` would flatten to English), else its text."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)

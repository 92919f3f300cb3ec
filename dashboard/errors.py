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
The words are marked with `N_` so issue 14 can translate them; they are English here.

This module is the one place that turns pydantic's error types into those words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from kernel.accounts import RegistryError
from kernel.i18n import N_
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
PATTERN_UNKNOWN = N_("not in the expected form")
INVALID = N_("invalid value")
FIELD_MESSAGE = N_("{field}: {problem}")
_LOCATIONS = {"query": N_("query parameter"), "path": N_("path parameter"),
              "body": N_("form field"), "header": N_("header"), "cookie": N_("cookie")}
_PREFIXES = ("Value error, ", "Assertion failed, ")


def field_name(loc: Sequence[Any]) -> str:
    """The field a `loc` names, as a person reads it: ("body", "birth_year") -> "birth year";
    a nested one by its last name ("body", "contacts", 0, "phone") -> "phone"."""
    names = [str(part) for part in loc[1:] if isinstance(part, str)]
    return names[-1].replace("_", " ") if names else ""


def _expected(ctx: Mapping[str, Any]) -> str:
    return str(ctx.get("expected", "")).replace(" or ", ", ")


def problem(error: Mapping[str, Any]) -> str:
    """What is wrong with the value, in plain words, without the field's name."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return PATTERN_WORDS.get(str(ctx.get("pattern", "")), PATTERN_UNKNOWN)
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return TYPE_WORDS["missing"]
    words = TYPE_WORDS.get(kind)
    if words is not None:
        try:
            return words.format(**{**ctx, "expected": _expected(ctx)})
        except (KeyError, IndexError, ValueError):
            pass  # raised by hand without its context: the sentence it came with
    # A validator's own sentence (value_error, assertion_error, a PydanticCustomError):
    # already written for people; pydantic only prefixes it with its class of error.
    text = str(error.get("msg") or INVALID)
    for prefix in _PREFIXES:
        text = text.removeprefix(prefix)
    return text


def readable(error: Mapping[str, Any]) -> dict[str, Any]:
    """One error in the API's shape: loc and type as FastAPI gives them, msg for people."""
    loc = list(error.get("loc") or ())
    name = field_name(loc)
    what = problem(error)
    return {"loc": loc, "type": error.get("type", "value_error"),
            "msg": FIELD_MESSAGE.format(field=name, problem=what) if name else what}


def _line(error: Mapping[str, Any]) -> str:
    """The error for the one-line `detail`, e.g. "form field 'phone': digits, ..."."""
    loc = [str(part) for part in error.get("loc") or ()]
    where = _LOCATIONS.get(loc[0], loc[0]) if loc else ""
    name = ".".join(part for part in loc[1:] if not part.isdigit())
    text = problem(error)
    value = error.get("input")
    if loc and loc[0] in ("query", "path") and isinstance(value, str | int):
        text += f" (got {value!r})"  # never echo form input: it may be a password
    return f"{where} '{name}': {text}" if name else text


def refusal_body(errors: Sequence[Mapping[str, Any]], detail: str | None = None) -> Any:
    """The JSON body of a refusal: `detail` (one line) and the field-level `errors`."""
    line = detail if detail is not None else (
        N_("Invalid request: ") + "; ".join(_line(e) for e in errors))
    return jsonable_encoder({"detail": line, "errors": [readable(e) for e in errors]})


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


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with a readable `detail` line plus the field-level errors (without inputs)."""
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                        content=refusal_body(list(exc.errors())))


async def field_refusal(_request: Request, exc: FieldRefusal) -> JSONResponse:
    """The refusal's status, its message as `detail`, and the one field-level error."""
    error = {"loc": exc.loc, "type": exc.kind, "msg": exc.message}
    return JSONResponse(status_code=exc.status_code,
                        content=refusal_body([error], detail=exc.message))


def registry_refusal(exc: RegistryError, field: str,
                     status_code: int = status.HTTP_422_UNPROCESSABLE_CONTENT) -> FieldRefusal:
    """A registry's refusal (kernel.accounts) on the field it names, else on `field`."""
    return FieldRefusal(exc.field or field, str(exc), status_code=status_code)

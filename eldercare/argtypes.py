"""Argument types shared by the command line's parsers (eldercare/cli.py, eldercare/admin/)."""

from __future__ import annotations

import argparse
from datetime import datetime

from pydantic import TypeAdapter, ValidationError

from dashboard.models import PhoneText

_PHONE: TypeAdapter[str] = TypeAdapter(PhoneText)


def aware_datetime(text: str) -> datetime:
    """An ISO 8601 date-time with an explicit offset: a naive one would be read in the
    machine's time zone, and the same command would simulate different hours elsewhere."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset (e.g. Z or +08:00)")
    return value


def phone_number(text: str) -> str:
    """A phone number by the web app's one rule (dashboard.models.PhoneText), so the command
    line cannot store a number the pages would refuse or a tel: link could not dial."""
    try:
        return _PHONE.validate_python(text.strip())
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise argparse.ArgumentTypeError(f"{text!r}: {reason}") from None

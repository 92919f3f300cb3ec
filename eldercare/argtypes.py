"""Argument types shared by the command line's parsers (eldercare/cli.py, eldercare/admin/)."""

from __future__ import annotations

import argparse
from datetime import datetime


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

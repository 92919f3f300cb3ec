"""Moved to tests/support/live.py (kept so that imports of the old path still work)."""
from tests.support.live import *  # noqa: F403

"""Moved to tests/support/ (wait, database, homes, pipeline); kept for branches in flight."""
from tests.support.database import count
from tests.support.homes import Home, seed_home
from tests.support.pipeline import running_pipeline
from tests.support.wait import wait_until

__all__ = ["Home", "count", "running_pipeline", "seed_home", "wait_until"]

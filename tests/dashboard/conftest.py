"""Dashboard fixtures: a seeded two-site world on the real database, an app client, and the
page tests' served dashboard, browser and screenshots."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from kernel import accounts
from tests.support.dashboard import World, app_client, cached_hash, require_browser, seed_world
from tests.support.live import CHROMIUM, Screenshots, Served, serving_live
from tests.support.services import Broker


@pytest.fixture
def world(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> World:
    """The seeded world on an emptied database."""
    monkeypatch.setattr(accounts, "hash_password", cached_hash)
    return seed_world(clean_db)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (psycopg's async driver)."""
    return "asyncio"


@pytest.fixture
async def client(clean_db: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for a fresh app on the emptied database."""
    async with app_client(clean_db) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The headless browser of the page tests (failing the test when it is not installed)."""
    require_browser(CHROMIUM)
    return CHROMIUM


@pytest.fixture
def server(world: World, clean_db: str, broker: Broker) -> Iterator[Served]:
    """The page tests' dashboard: served by uvicorn with its live feed on the database and
    the alert bus, on the seeded world (a module that needs another app defines its own)."""
    with serving_live(clean_db, broker.pipeline) as srv:
        yield srv


@pytest.fixture
def screenshot(tmp_path: Path) -> Screenshots:
    """`screenshot(page, "name")`: a full-page NAME.png kept with the test's artifacts."""
    return Screenshots(tmp_path)

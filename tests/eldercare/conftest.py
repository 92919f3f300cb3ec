"""Fixtures of the composition-root tests (the `eldercare` command, demo, serve, supervision)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import IN_PROCESS_KEYS, cli_env
from tests.support.services import Broker, tmpdir


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    """A data folder for one `eldercare demo`/`serve` run (embedded services drop privileges
    when the tests run as root, so it is world-readable)."""
    path = tmpdir("eldercare-demo-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env(clean_db: str, broker: Broker) -> dict[str, str]:
    """The environment of an `eldercare` child process on the test database and broker."""
    return cli_env(clean_db, broker)


@pytest.fixture
def cli_db(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, clean_db: str) -> str:
    """`eldercare.cli.main` in this process, on the test database and broker."""
    for key in IN_PROCESS_KEYS:
        monkeypatch.setenv(key, env[key])
    return clean_db

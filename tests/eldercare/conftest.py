"""Fixtures of the composition-root tests (the `eldercare` command, demo, serve, supervision)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import tmpdir


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    """A data folder for one `eldercare demo`/`serve` run (embedded services drop privileges
    when the tests run as root, so it is world-readable)."""
    path = tmpdir("eldercare-demo-")
    yield path
    shutil.rmtree(path, ignore_errors=True)

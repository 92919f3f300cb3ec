"""The page tests fail, never skip, when their browser is missing (a skip looked green)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dashboard import require_browser


def test_missing_browser_fails_the_test(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="need Debian's Chromium"):
        require_browser(tmp_path / "no-chromium")


def test_present_browser_passes(tmp_path: Path) -> None:
    browser = tmp_path / "chromium"
    browser.touch()
    require_browser(browser)

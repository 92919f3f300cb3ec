"""The ECharts file is served by the app itself from the npm package installed at setup
(dashboard/charts_ui.py): only the allow-listed file, with its content type and cache
headers; anything else, or the file missing, is a 404."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dashboard.app import create_app
from dashboard.charts_ui import CHARTS_DIR, CHARTS_URL, charts_available
from tests.support.dashboard import SECRET
from tests.support.live import running_server

ASSET = f"{CHARTS_URL}/echarts.esm.min.mjs"


@pytest.fixture(scope="module")
def charts_installed() -> Path:
    """The ECharts files (scripts/bootstrap.sh installs them); missing ones fail."""
    if not charts_available(CHARTS_DIR):
        pytest.fail(f"no ECharts files in {CHARTS_DIR}: run scripts/bootstrap.sh",
                    pytrace=False)
    return CHARTS_DIR


def test_the_echarts_module_is_served_with_its_type_and_cache_headers(database_url,
                                                                      charts_installed):
    with running_server(create_app(database_url, SECRET)) as srv:
        resp = httpx.get(f"{srv.url}{ASSET}")
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/javascript; charset=utf-8"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cache-control"] == "no-cache"
        assert resp.content == (charts_installed / "echarts.esm.min.mjs").read_bytes()
        again = httpx.get(f"{srv.url}{ASSET}", headers={"If-None-Match": resp.headers["etag"]})
        assert again.status_code == 304 and again.content == b""  # revalidated, not resent
        assert again.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("name", [
    "echarts.min.js",         # in the package, not on the allow-list
    "echarts.esm.min.mjs.map",
    "..%2Fpackage.json",
    "%2E%2E%2F%2E%2E%2Findex.js",
])
def test_files_not_on_the_allow_list_are_not_found(database_url, charts_installed, name):
    assert (charts_installed / "echarts.min.js").is_file()
    with running_server(create_app(database_url, SECRET)) as srv:
        assert httpx.get(f"{srv.url}{CHARTS_URL}/{name}").status_code == 404


def test_without_the_files_the_asset_is_not_found_and_the_log_says_why(database_url, tmp_path,
                                                                      caplog):
    app = create_app(database_url, SECRET, charts=tmp_path)
    assert "charts are unavailable" in caplog.text
    assert "scripts/bootstrap.sh" in caplog.text
    with running_server(app) as srv:
        assert httpx.get(f"{srv.url}{ASSET}").status_code == 404
        assert httpx.get(f"{srv.url}/api/v1/health").status_code in (200, 503)

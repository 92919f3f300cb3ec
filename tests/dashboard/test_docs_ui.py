"""/docs is served by the app itself (Swagger UI from the npm package installed at setup),
under the pages' Content-Security-Policy: no CDN, nothing loaded from another host."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from dashboard.app import create_app
from dashboard.docs_ui import DOCS_UI_DIR, docs_ui_available
from tests.support.dashboard import SECRET
from tests.support.live import WALL, browser_page, running_server

EXTERNAL = re.compile(r"(?:https?:)?//(?!127\.0\.0\.1[:/])[\w.-]+\.[a-z]{2,}", re.IGNORECASE)


@pytest.fixture(scope="module")
def docs_installed() -> Path:
    """The Swagger UI files (scripts/bootstrap.sh installs them); missing ones fail."""
    if not docs_ui_available(DOCS_UI_DIR):
        pytest.fail(f"no Swagger UI files in {DOCS_UI_DIR}: run scripts/bootstrap.sh",
                    pytrace=False)
    return DOCS_UI_DIR


def test_docs_page_renders_the_api_with_no_request_leaving_the_machine(database_url,
                                                                       docs_installed,
                                                                       chromium):
    requested: list[str] = []
    with running_server(create_app(database_url, SECRET)) as srv, \
            browser_page(WALL) as bp:
        bp.page.on("request", lambda request: requested.append(request.url))
        bp.page.goto(f"{srv.url}/docs")
        bp.page.wait_for_selector(".opblock", timeout=30_000)
        paths = bp.page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/api/v1/health" in p for p in paths), paths
        assert any("/api/v1/alerts" in p for p in paths), paths
        assert bp.problems == []
    assert requested
    elsewhere = [u for u in requested
                 if urlsplit(u).scheme not in ("data", "blob")
                 and urlsplit(u).hostname != "127.0.0.1"]
    assert elsewhere == []


def test_docs_html_references_no_external_host_and_has_the_pages_policy(database_url,
                                                                        docs_installed):
    with running_server(create_app(database_url, SECRET)) as srv:
        docs = httpx.get(f"{srv.url}/docs")
        duty = httpx.get(f"{srv.url}/")
        assert docs.status_code == 200
        assert EXTERNAL.findall(docs.text) == []
        assert docs.headers["content-security-policy"] == \
            duty.headers["content-security-policy"]
        assert "unsafe-inline" not in docs.headers["content-security-policy"]
        assert "<script>" not in docs.text  # scripts are files, the policy allows no inline
        asset = httpx.get(f"{srv.url}/docs/assets/swagger-ui-bundle.js")
        assert asset.status_code == 200 and asset.headers["x-content-type-options"] == "nosniff"
        # Only the files the page loads: the package's demo page (a public API) is not served.
        assert httpx.get(f"{srv.url}/docs/assets/index.html").status_code == 404
        assert httpx.get(f"{srv.url}/docs/assets/..%2Fpackage.json").status_code == 404
        assert httpx.get(f"{srv.url}/redoc").status_code == 404


def test_docs_off_without_the_files_schema_still_served(database_url, tmp_path, caplog):
    app = create_app(database_url, SECRET, docs_ui=tmp_path)
    assert "/docs is off" in caplog.text
    with running_server(app) as srv:
        assert httpx.get(f"{srv.url}/docs").status_code == 404
        assert httpx.get(f"{srv.url}/openapi.json").status_code == 200

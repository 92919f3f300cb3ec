"""The API docs page (/docs): Swagger UI served by the app itself, never from a CDN.

FastAPI's built-in /docs and /redoc pull Swagger UI, ReDoc and fonts from public CDNs: the
page is blank offline, and a third-party script would run on the duty screen's origin. The
Swagger UI files come instead from the npm package `swagger-ui-dist` (pinned in
scripts/bootstrap.sh, installed into the git-ignored `.vendor/`), and the page runs under
the same Content-Security-Policy as the duty screen. ReDoc is not offered. Without the
files /docs is off (404) and the schema is still at /openapi.json.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from fastapi import FastAPI, HTTPException, status
from fastapi.responses import FileResponse, HTMLResponse

from kernel.i18n import N_

logger = logging.getLogger(__name__)

DOCS_UI_DIR = (Path(__file__).resolve().parent.parent / ".vendor" / "node_modules"
               / "swagger-ui-dist")
# Only what the page loads; the package's own index.html points at a public demo API.
_ASSETS = {"swagger-ui.css": "text/css; charset=utf-8",
           "swagger-ui-bundle.js": "text/javascript; charset=utf-8"}
_ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>eldercare API</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""


def docs_ui_available(assets_dir: Path | None) -> bool:
    """True when every file the docs page loads is installed in `assets_dir`."""
    return assets_dir is not None and all((assets_dir / name).is_file() for name in _ASSETS)


def add_docs_ui(app: FastAPI, assets_dir: Path | None,
                page_headers: Mapping[str, str]) -> bool:
    """Serve /docs and its assets from `assets_dir`; return False (and log why) when the
    files are missing, leaving /docs off."""
    if not docs_ui_available(assets_dir) or assets_dir is None or app.openapi_url is None:
        logger.warning("API docs page /docs is off: Swagger UI files not found in %s (run "
                       "scripts/bootstrap.sh); the schema is at /openapi.json", assets_dir)
        return False
    page = _PAGE.format(openapi_url=app.openapi_url)
    headers = dict(page_headers)

    async def docs_page() -> HTMLResponse:
        """The interactive API documentation."""
        return HTMLResponse(page, headers=headers)

    async def docs_asset(name: str) -> FileResponse:
        """One of the Swagger UI files the page loads (an allow-list, not the folder)."""
        if name not in _ASSETS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, N_("Not Found"))
        return FileResponse(assets_dir / name, media_type=_ASSETS[name],
                            headers=_ASSET_HEADERS)

    app.add_api_route("/docs", docs_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs/assets/{name}", docs_asset, methods=["GET"],
                      include_in_schema=False)
    return True

"""The charts' library (Apache ECharts) served by the app itself, never from a CDN.

The resident page and the family view draw their charts with ECharts, the convention of
Chinese duty screens. Its files come from the npm package `echarts` (pinned in
scripts/bootstrap.sh, installed into the git-ignored `.vendor/`), like Swagger UI's
(dashboard/docs_ui.py): nothing is copied into the repository. Only the one ES module the
pages import is served (an allow-list, not the folder). ECharts draws on a canvas and runs
under the pages' Content-Security-Policy as it is: no `eval` (its only `new Function` is
for GeoJSON given as a string, never used here) and no inline style attributes (styles are
set through the CSSOM; the tooltip is drawn on the canvas, `renderMode: "richText"`).

Without the files the route answers 404 and the pages say "charts unavailable (run
scripts/bootstrap.sh)" (dashboard/static/charts.js); nothing else breaks.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, Response, status
from fastapi.responses import FileResponse

from kernel.i18n import N_

logger = logging.getLogger(__name__)

CHARTS_URL = "/vendor/echarts"
CHARTS_DIR = (Path(__file__).resolve().parent.parent / ".vendor" / "node_modules"
              / "echarts" / "dist")
# The ES module build, imported by dashboard/static/charts.js (its URL is fixed there).
_ASSETS = {"echarts.esm.min.mjs": "text/javascript; charset=utf-8"}
# Revalidated on every load (If-None-Match answered 304 here: FileResponse does not), so that
# a new pinned version is picked up at once while the 1.1 MB file is sent once per browser.
_ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


def charts_available(assets_dir: Path | None) -> bool:
    """True when every file the charts load is installed in `assets_dir`."""
    return assets_dir is not None and all((assets_dir / name).is_file() for name in _ASSETS)


def add_charts_assets(app: FastAPI, assets_dir: Path | None) -> None:
    """Serve the allow-listed ECharts files from `assets_dir` at CHARTS_URL; a file that is
    missing (or not on the list) is a 404, which the pages report as "charts unavailable"."""
    if not charts_available(assets_dir):
        logger.warning("charts are unavailable: ECharts files not found in %s (run "
                       "scripts/bootstrap.sh)", assets_dir)

    async def charts_asset(name: str, request: Request) -> Response:
        """One of the ECharts files the pages load (an allow-list, not the folder)."""
        path = assets_dir / name if assets_dir is not None and name in _ASSETS else None
        if path is None or not path.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, N_("Not Found"))
        stat = path.stat()
        headers = {**_ASSET_HEADERS, "ETag": f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'}
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return FileResponse(path, media_type=_ASSETS[name], headers=headers, stat_result=stat)

    app.add_api_route(f"{CHARTS_URL}/{{name}}", charts_asset, methods=["GET"],
                      include_in_schema=False)

"""Path and query parameters shared by the API's routes (ids, site ids)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from kernel.sites import SITE_PATTERN

MAX_ID = 2**63 - 1
SITE_REGEX = rf"^{SITE_PATTERN}$"

SiteQuery = Annotated[str | None, Query(pattern=SITE_REGEX, description="Site id.")]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]

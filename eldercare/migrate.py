"""Versioned database migrations (yoyo-migrations), applied by the composition root."""

from __future__ import annotations

import contextlib
import io
import logging
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)


def migrations_dir() -> Path:
    """Folder holding the SQL migrations shipped with the package."""
    return Path(str(resources.files("eldercare") / "migrations"))


def _yoyo_url(database_url: str) -> str:
    scheme, rest = database_url.split("://", 1)
    if "+" not in scheme:
        scheme = "postgresql+psycopg"
    return f"{scheme}://{rest}"


def migrate(database_url: str) -> list[str]:
    """Apply pending migrations; return the ids applied (empty when up to date)."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(_yoyo_url(database_url))
    migrations = read_migrations(str(migrations_dir()))
    with backend.lock():
        pending = backend.to_apply(migrations)
        ids = [m.id for m in pending]
        if ids:
            # yoyo prints the result of every SELECT step (create_hypertable); keep the
            # console clean and send it to the debug log instead.
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                backend.apply_migrations(pending)
            logger.debug("migration output:\n%s", out.getvalue())
            logger.info("applied migrations: %s", ", ".join(ids))
    backend.connection.close()
    return ids

"""GET /health: whether the process answers and whether its database does."""

from __future__ import annotations

import logging

import psycopg
from fastapi import APIRouter
from psycopg_pool import PoolTimeout

from dashboard.deps import DashboardState, StateDep
from dashboard.models import HealthOut

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

HEALTH_TIMEOUT_S = 2.0


@router.get("/health", response_model=HealthOut)
async def health(state: StateDep) -> HealthOut:
    """Liveness (no auth): the process answers; `database` says whether SQL works."""
    return HealthOut(status="ok", database=await _database_ok(state))


async def _database_ok(state: DashboardState) -> bool:
    if state.pool is None:
        return False
    try:
        async with state.pool.connection(timeout=HEALTH_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")
    except (PoolTimeout, psycopg.Error) as exc:
        logger.warning("health check: database unavailable (%s)", exc)
        return False
    return True

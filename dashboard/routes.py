"""Every API route of the web app, registered in one place and in an order that does not
matter.

Routers are listed here once. Starlette answers a request with the first route whose path
matches, so a path with a fixed segment (`/alerts/stream`) must be tried before a path with a
parameter in that place (`/alerts/{alert_id}`, which would answer 422 "not an integer").
Rather than relying on the order of the list, `literal_first` moves each route ahead of any
earlier route that would catch its requests; routes that do not collide keep the listed
order (which is also their order in /openapi.json and on /docs).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter
from starlette.routing import BaseRoute, Route

from dashboard import (
    account,
    actions,
    answer_times,
    api,
    audit,
    auth,
    devices,
    digest,
    displays,
    health,
    homes,
    residents,
    roster,
    staff,
    visit_plans,
    visits,
    vitals,
    vocabulary,
)
from dashboard.channels import personal, sent, site
from dashboard.family import routes as family_routes
from dashboard.ledger import channel_test
from dashboard.ledger import routes as ledger_routes
from dashboard.ledger import sites as ledger_sites
from dashboard.live import routes as live_routes

API_PREFIX = "/api/v1"

API_ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    live_routes.router,
    vocabulary.router,
    residents.router,
    ledger_routes.router,
    ledger_sites.router,
    channel_test.router,
    api.router,
    vitals.router,
    personal.router,
    site.router,
    sent.router,
    actions.router,
    displays.router,
    family_routes.router,
    health.router,
    staff.router,
    roster.router,
    account.router,
    visit_plans.router,
    visits.router,
    audit.router,
    devices.router,
    answer_times.router,
    homes.router,
    digest.router,
)


def _shadows(earlier: BaseRoute, later: BaseRoute) -> bool:
    """Whether `earlier` would catch requests meant for `later`: its pattern matches later's
    path but not the other way round (later is the more specific one)."""
    if not isinstance(earlier, Route) or not isinstance(later, Route):
        return False
    return (earlier.path_regex.match(later.path_format) is not None
            and later.path_regex.match(earlier.path_format) is None)


def literal_first(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """`routes` in their order, except that each one goes before the first route that would
    shadow it, so every route is reachable whatever order its router was listed in."""
    ordered: list[BaseRoute] = []
    for route in routes:
        at = next((i for i, earlier in enumerate(ordered) if _shadows(earlier, route)),
                  len(ordered))
        ordered.insert(at, route)
    return ordered


def api_router(routers: Iterable[APIRouter] = API_ROUTERS) -> APIRouter:
    """One router holding every API route under API_PREFIX, literal paths first."""
    merged = APIRouter()
    merged.routes.extend(literal_first(route for router in routers for route in router.routes))
    v1 = APIRouter(prefix=API_PREFIX)
    v1.include_router(merged)
    return v1

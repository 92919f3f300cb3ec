"""Every API route is registered in one place, and the order of its list does not matter."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from dashboard.routes import API_ROUTERS, literal_first


def _routes(routers) -> list[Route]:
    return [route for router in routers for route in router.routes
            if isinstance(route, Route)]


def _first_match(routes: list[BaseRoute], path: str) -> str:
    """The path of the route Starlette would try first for `path` (any method)."""
    return next(r.path_format for r in routes
                if isinstance(r, Route) and r.path_regex.match(path))


def test_the_listed_order_is_kept_where_nothing_collides():
    routes = _routes(API_ROUTERS)
    assert literal_first(routes) == routes


def test_every_route_is_reachable_whatever_the_order_of_the_routers():
    for routers in (API_ROUTERS, tuple(reversed(API_ROUTERS)),
                    API_ROUTERS[1::2] + API_ROUTERS[0::2]):
        ordered = literal_first(_routes(routers))
        for route in ordered:
            assert isinstance(route, Route)
            assert _first_match(ordered, route.path_format) == route.path_format


def test_a_fixed_segment_goes_before_a_parameter_that_would_catch_it():
    routes = _routes(tuple(reversed(API_ROUTERS)))
    paths = [r.path_format for r in routes]
    assert paths.index("/alerts/{alert_id}") < paths.index("/alerts/stream")  # as listed
    ordered = [r.path_format for r in literal_first(routes) if isinstance(r, Route)]
    assert ordered.index("/alerts/stream") < ordered.index("/alerts/{alert_id}")
    assert sorted(ordered) == sorted(paths)  # nothing lost, nothing added

"""Who may call which /api/v1 route, in one table: every route of the app, every role, and
the scope cases (own site vs another site, family of resident A vs resident B, own account vs
another's), with real requests on the real database and broker.

Adding a route = adding one line to MATRIX (the completeness test fails until you do):

    Row("GET", "/things/{thing_id}", "admin duty care family"),

The third field lists the actors that may call it (tests/support/role_matrix.py ACCOUNTS:
admin, duty / duty_other, care / care_other, family / family_other, anon, restricted: a
session that must first change its temporary password, and display: a wall display of north,
dashboard.auth.DISPLAY_ROUTES); every target is a
thing of site north / resident Alice / a north account, so `duty`, `care` and `family` are "in
scope" and their `_other` twins are not. Every actor not listed must be refused with the code
the app is designed to give:
- anon: 401 (no token);
- a role none of whose actors is listed, and `restricted` (dashboard.auth.RESTRICTED_PATHS):
  403;
- the `_other` twin of a listed actor (out of scope): 404, as dashboard.scope.not_found hides
  what exists; routes that refuse another *site* named in the path or a filter answer 403
  instead (the caller knows their own site) - say so with `deny={"duty_other": 403}`.
Path parameters are filled by name (role_matrix.TARGETS; `use=` picks another target), bodies
with `send=`, and `ok=` is the allowed answer when it is not a 2xx.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import compile_path

from dashboard.app import create_app
from dashboard.devices import DevicesConfig
from dashboard.routes import API_PREFIX, API_ROUTERS
from gateway.device_accounts import DeviceAccounts
from kernel import accounts, db
from tests.support.dashboard import SECRET, cached_hash
from tests.support.role_matrix import (
    ACCOUNTS,
    ACTORS,
    ROLE_OF,
    SCOPE_OF,
    TARGETS,
    MatrixWorld,
    describe,
    import_upload,
    import_upload_to,
    json_body,
    login_all,
    login_form,
    login_headers,
    seed_matrix,
    stream_status,
)
from tests.support.services import Broker

pytestmark = pytest.mark.anyio  # db and mqtt: marked by the fixtures used (tests/conftest.py)

Send = Callable[[MatrixWorld], dict[str, Any]]
Sees = Callable[[Any, MatrixWorld], bool]
OK = frozenset({200, 201, 204})
ALL = "admin duty duty_other care care_other family family_other"
ACCOUNT = ALL + " restricted"  # what a session may do before changing its temporary password
PUBLIC = "anon " + ACCOUNT + " display"  # a token is not even looked at
WALL = " display"  # a wall display of north: read-and-acknowledge (dashboard.auth)
STAFF = "admin duty duty_other care care_other"
# In scope of north, Alice and her things:
IN_SCOPE = frozenset({"admin", "duty", "care", "family", "display"})


@dataclass(frozen=True)
class Row:
    """One route: who may call it; see the module docstring."""

    method: str
    path: str  # as declared, without API_PREFIX
    allow: str
    send: Send | None = None
    query: str = ""  # e.g. "site=north"; {names} are filled like path parameters
    case: str = ""  # names a variant whose body points elsewhere (e.g. "to south")
    use: Mapping[str, str] = field(default_factory=dict)  # path parameter -> TARGETS key
    deny: Mapping[str, int] = field(default_factory=dict)  # actor -> code, when not derived
    ok: frozenset[int] = OK
    sees: Sees | None = None  # a listing: does its answer hold the target (Alice's things)?
    fresh_login: bool = False  # the request ends its session (logout)
    stream: bool = False  # an endless response: only its status line is read

    @property
    def label(self) -> str:
        """How failures name the row: method, path, query and case."""
        return (f"{self.method} {self.path}{'?' + self.query if self.query else ''}"
                f"{f' [{self.case}]' if self.case else ''}")

    def expected(self, actor: str) -> int | None:
        """The refusal `actor` must get, or None when allowed."""
        allowed = set(self.allow.split())
        if actor in allowed:
            return None
        if actor in self.deny:
            return self.deny[actor]
        if actor == "anon":
            return 401
        if any(ROLE_OF[a] == ROLE_OF[actor] for a in allowed):
            return 404  # the role may, but not on this thing: hidden like a missing one
        return 403


def body(value: object) -> Send:
    """Shorthand: a JSON body (a value, or a function of the world)."""
    return json_body(value)


def holds(key: str, value: Callable[[MatrixWorld], object] = lambda w: w.base.alice) -> Sees:
    """A listing holds the target when one of its items has `key` == value (default: Alice's
    resident id)."""
    return lambda items, w: any(item.get(key) == value(w) for item in items)


ALICE = holds("resident_id")
_SHIFT_DAYS = itertools.count()


def _new_shift(user_id: int) -> dict[str, object]:
    """A shift on a day no earlier request used (one person cannot have overlapping shifts)."""
    day = date(2030, 2, 1) + timedelta(days=next(_SHIFT_DAYS))
    return {"user_id": user_id, "starts_local": f"{day}T08:00:00",
            "ends_local": f"{day}T16:00:00"}
SITE_DENY = {"duty_other": 403, "care_other": 403}  # another site named in the path: 403
ONLY_CARE = {a: 404 for a in ACTORS  # another account's channel
             if a not in ("anon", "care", "restricted", "display")}

MATRIX: tuple[Row, ...] = (
    # auth and account
    Row("POST", "/auth/token", PUBLIC, send=login_form),
    Row("POST", "/auth/logout", ACCOUNT, fresh_login=True),
    Row("GET", "/me", ACCOUNT + WALL),
    Row("POST", "/me/password", ACCOUNT, ok=frozenset({400}),  # wrong current password
        send=body({"current_password": "not the password", "new_password": "x" * 12})),
    Row("POST", "/me/totp", ACCOUNT),
    Row("GET", "/me/language", ACCOUNT),
    Row("PUT", "/me/language", ACCOUNT, send=body({"language": "zh-CN"})),
    Row("POST", "/me/totp/confirm", ACCOUNT, send=body({"code": "000000"}),
        ok=frozenset({400})),  # no enrolment, or a wrong code
    Row("POST", "/auth/invite", PUBLIC, ok=frozenset({400}),  # an unknown invitation
        send=body({"token": "no-such-invitation-token", "password": "x" * 16})),
    Row("GET", "/me/duty", ALL),
    Row("PUT", "/me/duty", "duty duty_other care care_other", send=body({"on_duty": True})),
    Row("GET", "/me/channels", ALL),
    Row("POST", "/me/channels", ALL, ok=frozenset({200, 201}),
        send=body({"kind": "email", "target": "matrix@example.com"})),
    Row("PATCH", "/me/channels/{channel_id}", "care", use={"channel_id": "care_channel"},
        deny=ONLY_CARE, send=body({"active": True})),
    Row("POST", "/me/channels/{channel_id}/test", "care", use={"channel_id": "care_channel"},
        deny=ONLY_CARE),
    Row("DELETE", "/me/channels/{channel_id}", "care", use={"channel_id": "care_channel"},
        deny=ONLY_CARE),
    Row("GET", "/push/vapid-public-key", ALL),
    Row("GET", "/vocabulary", ALL),
    Row("GET", "/health", PUBLIC),
    # alerts
    Row("GET", "/alerts/stream", ALL + WALL, stream=True),
    Row("GET", "/alerts", ALL + WALL, sees=ALICE),
    Row("GET", "/alerts", "admin duty care family family_other" + WALL, query="site=north",
        deny=SITE_DENY, sees=ALICE),
    Row("GET", "/alerts", "admin duty care family" + WALL, query="resident={resident_id}"),
    Row("GET", "/alerts/{alert_id}", "admin duty care family" + WALL),
    Row("POST", "/alerts/{alert_id}/ack", "admin duty care" + WALL,
        use={"alert_id": "fresh_alert"}),
    Row("POST", "/alerts/{alert_id}/resolve", "admin duty care",
        use={"alert_id": "fresh_alert"}, send=body({"outcome": "false_alarm"})),
    Row("POST", "/alerts/{alert_id}/visit", "admin duty care", use={"alert_id": "fresh_alert"}),
    # residents and the ledger
    Row("GET", "/residents", ALL + WALL, sees=holds("id")),
    Row("GET", "/residents", "admin duty care family family_other" + WALL, query="site=north",
        deny=SITE_DENY, sees=holds("id")),
    Row("POST", "/residents", "admin duty", deny={"duty_other": 403},
        send=body({"full_name": "Matrix Resident", "site_id": "north"})),
    Row("POST", "/residents", "admin duty_other", deny={"duty": 403}, case="at south",
        send=body({"full_name": "Matrix Resident", "site_id": "south"})),
    Row("GET", "/residents/{resident_id}", "admin duty care family"),
    Row("PATCH", "/residents/{resident_id}", "admin duty", send=body({})),
    Row("POST", "/residents/{resident_id}/reveal-access", "admin duty"),
    Row("GET", "/residents/{resident_id}/notes", "admin duty care"),
    Row("POST", "/residents/{resident_id}/notes", "admin duty", send=body({"body": "matrix"})),
    Row("GET", "/residents/{resident_id}/timeline", "admin duty care"),
    Row("GET", "/residents/{resident_id}/alert-settings", "admin duty care"),
    Row("PUT", "/residents/{resident_id}/alert-settings", "admin duty", send=body({})),
    Row("GET", "/residents/{resident_id}/vitals", "admin duty care family"),
    Row("GET", "/residents/{resident_id}/daily", "admin duty care family"),
    Row("GET", "/residents/{resident_id}/visits", "admin duty care family"),
    Row("GET", "/residents/{resident_id}/visit-plan", "admin duty care"),
    Row("PUT", "/residents/{resident_id}/visit-plan", "admin duty",
        deny={"care_other": 404},  # the resident's scope is checked before the role
        send=body({"interval_days": None})),
    Row("POST", "/residents/{resident_id}/devices", "admin duty",
        send=body({"type": "call_button"})),
    # family view
    Row("GET", "/family/residents", "family family_other", sees=holds("id")),
    Row("GET", "/family/residents/{resident_id}/summary", "family"),
    # sites, their channels, roster and visit plan
    Row("GET", "/sites", STAFF, sees=holds("id", lambda w: "north")),
    Row("POST", "/sites", "admin", send=body({"id": "matrix-site", "name": "Matrix"})),
    Row("GET", "/sites/{site_id}", "admin duty care"),
    Row("PATCH", "/sites/{site_id}", "admin", send=body({})),
    Row("GET", "/sites/{site}/channels", "admin duty", deny=SITE_DENY),
    Row("POST", "/sites/{site}/channels", "admin duty", deny=SITE_DENY,
        ok=frozenset({200, 201}),
        send=body({"kind": "webhook", "target": "https://hooks.example.com/matrix"})),
    Row("DELETE", "/sites/{site}/channels/{channel_id}", "admin duty", deny=SITE_DENY),
    Row("POST", "/sites/{site}/channels/{channel_id}/test", "admin duty", deny=SITE_DENY),
    Row("GET", "/sites/{site}/notifications", "admin duty", deny=SITE_DENY),
    Row("GET", "/sites/{site}/shifts", "admin duty care", deny=SITE_DENY),
    Row("POST", "/sites/{site}/shifts", "admin duty", deny=SITE_DENY, send=body(
        lambda w: _new_shift(w.staff_north))),
    Row("DELETE", "/sites/{site}/shifts/{shift_id}", "admin duty", deny=SITE_DENY),
    Row("GET", "/sites/{site}/answer-times/shift", "admin duty care" + WALL, deny=SITE_DENY),
    Row("GET", "/sites/{site}/answer-times/report", "admin duty", deny=SITE_DENY,
        query="period=week&date=2030-02-01"),
    Row("GET", "/sites/{site}/answer-times/report.csv", "admin duty", deny=SITE_DENY),
    Row("GET", "/sites/{site}/answer-times/report.xlsx", "admin duty", deny=SITE_DENY),
    Row("GET", "/sites/{site}/visit-plan", "admin duty care", deny=SITE_DENY),
    Row("PUT", "/sites/{site}/visit-plan", "admin duty", deny=SITE_DENY,
        send=body({"interval_days": 30, "high_risk_interval_days": 7})),
    # visits
    Row("GET", "/visits", STAFF, sees=ALICE),
    Row("GET", "/visits", "admin duty care", query="site=north", deny=SITE_DENY),
    Row("GET", "/visits/due", STAFF + WALL, sees=ALICE),
    Row("GET", "/visits/due", "admin duty care" + WALL, query="site=north", deny=SITE_DENY),
    # the duty officer's daily digest (not care workers, not wall displays, never family)
    Row("GET", "/digest/outliers", "admin duty", query="site=north", deny=SITE_DENY),
    Row("GET", "/digest/outliers", "duty duty_other", case="own site",
        deny={"admin": 422, "care": 403, "care_other": 403}),  # admin: name the site
    # the wall screen's district at a glance
    Row("GET", "/homes/state", STAFF + WALL, sees=lambda body, w: ALICE(body["homes"], w)),
    Row("GET", "/homes/state", "admin duty care" + WALL, query="site=north", deny=SITE_DENY),
    Row("POST", "/visits", "admin duty care", send=body(lambda w: {"resident_id": w.base.alice})),
    Row("POST", "/visits", "admin duty_other care_other", deny={"duty": 404, "care": 404},
        case="to Carol (south)", send=body(lambda w: {"resident_id": w.base.carol})),
    Row("GET", "/visits/{visit_id}", "admin duty care"),
    Row("PATCH", "/visits/{visit_id}", "admin duty care", send=body({"findings": "matrix"})),
    # accounts (the target is staff-north, a care worker of north; or a family account)
    Row("GET", "/users", "admin duty duty_other", sees=holds("id", lambda w: w.staff_north)),
    Row("GET", "/users", "admin duty", query="site=north", deny={"duty_other": 403}),
    Row("POST", "/users", "admin", send=body(
        {"username": "matrix-new", "role": "care_worker", "site_id": "north"})),
    Row("GET", "/users/{user_id}", "admin duty"),
    Row("PATCH", "/users/{user_id}", "admin", send=body({})),
    Row("POST", "/users/{user_id}/reset-password", "admin", send=body({})),
    Row("GET", "/users/{user_id}/sessions", "admin"),
    Row("DELETE", "/users/{user_id}/sessions", "admin"),
    Row("DELETE", "/users/{user_id}/sessions/{session_id}", "admin"),
    Row("PUT", "/users/{user_id}/duty-override", "admin duty", send=body({"override": None})),
    Row("PUT", "/users/{user_id}/residents/{resident_id}", "admin",
        use={"user_id": "family_target", "resident_id": "bob"}),
    Row("DELETE", "/users/{user_id}/residents/{resident_id}", "admin",
        use={"user_id": "family_target", "resident_id": "bob"}),
    Row("POST", "/users/{user_id}/invite", "admin", use={"user_id": "family_target"}),
    # devices and import
    Row("GET", "/devices", "admin duty duty_other", sees=ALICE),
    Row("GET", "/devices", "admin duty", query="site=north", deny={"duty_other": 403}),
    Row("GET", "/devices/{device_id}", "admin duty"),
    Row("POST", "/devices/{device_id}/revoke", "admin duty", use={"device_id": "fresh_device"}),
    Row("POST", "/devices/{device_id}/move", "admin duty", use={"device_id": "fresh_device"},
        send=body(lambda w: {"resident_id": w.base.bob})),
    Row("POST", "/devices/{device_id}/move", "admin", use={"device_id": "fresh_device"},
        deny={"duty": 404, "duty_other": 404},  # resident (duty), device (duty_other)
        case="to Carol (south)",
        send=body(lambda w: {"resident_id": w.base.carol})),
    Row("POST", "/import", "admin duty duty_other", send=import_upload),
    Row("POST", "/import", "admin duty_other", deny={"duty": 403}, case="into south",
        send=import_upload_to("south")),
    # wall displays (the target: a fresh display of north)
    Row("POST", "/displays", "admin duty", deny={"duty_other": 403},
        send=body({"name": "Matrix screen", "site_id": "north"})),
    Row("GET", "/displays", "admin duty duty_other"),
    Row("POST", "/displays/{display_id}/revoke", "admin duty",
        use={"display_id": "fresh_display"}),
    Row("POST", "/displays/session", PUBLIC, ok=frozenset({403}),  # a wrong secret
        send=body({"secret": "1.not-the-secret"})),
    # audit trail
    Row("GET", "/audit", "admin"),
    Row("GET", "/audit/export", "admin"),
)


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every API route the app serves (dashboard.routes.API_ROUTERS)."""
    return {(method, route.path) for router in API_ROUTERS for route in router.routes
            if isinstance(route, APIRoute) for method in route.methods or ()}


def test_every_route_of_the_app_is_in_the_matrix_and_nothing_else() -> None:
    rows = [row.label for row in MATRIX]
    assert len(rows) == len(set(rows)), "a route is in MATRIX twice with the same query/case"
    table = [(row.method, row.path) for row in MATRIX]
    missing = app_routes() - set(table)
    assert not missing, (f"routes without a MATRIX row (add who may call them): "
                         f"{sorted(missing)}")
    unknown = set(table) - app_routes()
    assert not unknown, f"MATRIX rows for routes the app does not have: {sorted(unknown)}"


def test_the_table_names_only_known_actors_and_targets() -> None:
    for row in MATRIX:
        assert set(row.allow.split()) <= set(ACTORS), row
        assert set(row.deny) <= set(ACTORS), row
        assert set(row.use.values()) <= set(TARGETS), row


# --- the requests -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """One event loop for the module, so the seeded app and logins are shared."""
    return "asyncio"


@pytest.fixture(scope="module")
def matrix_world(database_url: str, owner_url: str, truncate_sql: str, broker: Broker
                 ) -> Iterator[MatrixWorld]:
    """The seeded world, made once for the module (the requests leave it usable: every
    destructive one works on a fresh object)."""
    with db.connect(owner_url, autocommit=True) as conn:  # the app role may not TRUNCATE
        conn.execute(truncate_sql)
    devices = DevicesConfig(DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port)),
                            broker.pipeline, broker.admin)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "hash_password", cached_hash)
        yield seed_matrix(database_url, devices)


@dataclass(frozen=True)
class Caller:
    """The app, its client and every actor's Authorization header."""

    app: FastAPI
    client: httpx.AsyncClient
    headers: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
async def caller(matrix_world: MatrixWorld, anyio_backend: str) -> AsyncIterator[Caller]:
    """A client for one app on the matrix world, with one login per actor."""
    app = create_app(matrix_world.database_url, SECRET, devices=matrix_world.devices)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://dashboard.test") as client):
        yield Caller(app, client, await login_all(client))


def _cases() -> Iterator[Any]:
    for row in MATRIX:
        for actor in ACTORS:
            refused = row.expected(actor)
            verdict = "allowed" if refused is None else f"denied-{refused}"
            yield pytest.param(row, actor, id=f"{row.label} "
                                              f"{ACCOUNTS[actor] or 'anonymous'} "
                                              f"({SCOPE_OF[actor]}) {verdict}")


def _url(row: Row, w: MatrixWorld, actor: str) -> str:
    """The row's URL for one request: path parameters (and {names} in the query) filled."""
    template = row.path + (f"?{row.query}" if row.query else "")
    names = set(compile_path(row.path)[2]) | set(re.findall(r"{(\w+)}", row.query))
    params = {name: TARGETS[row.use.get(name, name)](w, actor) for name in names}
    return API_PREFIX + template.format(**params)


@pytest.mark.parametrize(("row", "actor"), list(_cases()))
async def test_role_and_scope(row: Row, actor: str, caller: Caller,
                              matrix_world: MatrixWorld) -> None:
    w = matrix_world
    username = ACCOUNTS[actor]
    who = f"{row.label} as {username or 'anonymous'} ({SCOPE_OF[actor]})"
    got, payload, answer = await _request(row, actor, caller, w)
    refused = row.expected(actor)
    if refused is not None:
        assert got == refused, f"{who} should be refused with {refused}, got {answer}"
        return
    assert got in row.ok, f"{who} should be allowed ({sorted(row.ok)}), got {answer}"
    if row.sees is not None:
        in_scope = actor in IN_SCOPE
        assert row.sees(payload, w) is in_scope, (
            f"{who} {'should' if in_scope else 'must not'} list the target's things: {answer}")


async def _request(row: Row, actor: str, caller: Caller, w: MatrixWorld
                   ) -> tuple[int, Any, str]:
    """Make the row's request as `actor`: the status, the JSON answer (None when there is
    none) and the answer as a failure message shows it."""
    url = _url(row, w, actor)
    headers = caller.headers[actor]
    username = ACCOUNTS[actor]
    if row.fresh_login and username is not None:
        headers = await login_headers(caller.client, username)
    if row.stream:
        got = await stream_status(caller.app, url, headers)
        return got, None, str(got)
    kwargs = row.send(w) if row.send is not None else {}
    resp = await caller.client.request(row.method, url, headers=headers, **kwargs)
    is_json = (resp.content != b""
               and resp.headers.get("content-type", "").startswith("application/json"))
    return resp.status_code, resp.json() if is_json else None, describe(resp)

"""Hostile and generated input against every API route: a 4xx with a field-level message,
never a 500.

The property test drives the app's own OpenAPI schema with schemathesis (valid and invalid
requests per operation), authenticated as each role and without a token, against a real
uvicorn on the seeded test database. It is derandomized and bounded so it runs in seconds and
finds the same things on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from dashboard.app import create_app
from dashboard.devices import DevicesConfig
from gateway.device_accounts import DeviceAccounts
from tests.support.api import API, detail, headers, push_subscription
from tests.support.dashboard import PASSWORD, SECRET, World, login
from tests.support.live import Served, running_server
from tests.support.services import Broker

# --- the audit's examples -------------------------------------------------------------------

NUL = "\x00"


@pytest.mark.anyio
@pytest.mark.parametrize(("username", "password", "field"), [
    (f"admin{NUL}", PASSWORD, "username"),
    ("admin", f"pass{NUL}word", "password"),
    ("a" * 151, PASSWORD, "username"),
    ("admin\nERROR forged line", PASSWORD, "username"),
])
async def test_login_with_nul_or_control_characters_is_422(client, world, username, password,
                                                           field):
    resp = await client.post(f"{API}/auth/token",
                             data={"username": username, "password": password})
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["loc"] == ["body", field]
    assert NUL not in resp.text and "\\u0000" not in resp.text  # the input is not echoed


@pytest.mark.anyio
@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "email", "target": f"anna{NUL}@example.com"}, "target"),
    ({"kind": "webhook", "target": "https://hooks.example.com/x", "secret": f"s{NUL}"},
     "secret"),
    ({"kind": "email", "target": "anna@example.com", "timezone": f"Europe/Oslo{NUL}"},
     "timezone"),
    ({"kind": "webpush", "subscription": {**push_subscription(), "endpoint":
                                          f"https://push.example.com/{NUL}"}}, "endpoint"),
])
async def test_channel_text_with_nul_is_422(client, world, body, field):
    auth = (await headers(client, "duty-north"))["duty-north"]
    resp = await client.post(f"{API}/me/channels", json=body, headers=auth)
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["loc"][-1] == field
    resp = await client.patch(f"{API}/me/channels/1", json={"secret": f"x{NUL}"}, headers=auth)
    assert resp.status_code == 422, resp.text


@pytest.mark.anyio
@pytest.mark.parametrize("note", [f"on my way{NUL}", "forged\x1b[31m colour"])
async def test_action_note_with_nul_or_control_characters_is_422(client, world: World, note):
    auth = (await headers(client, "care-north"))["care-north"]
    for action, body in (("ack", {"note": note}),
                         ("resolve", {"outcome": "other", "note": note})):
        resp = await client.post(f"{API}/alerts/{world.sos_alice}/{action}", json=body,
                                 headers=auth)
        assert resp.status_code == 422, resp.text
        assert resp.json()["errors"][0]["loc"] == ["body", "note"]


@pytest.mark.anyio
async def test_lone_surrogate_in_json_text_is_422(client, world: World):
    """Valid JSON (an escaped lone surrogate) that cannot be stored as UTF-8."""
    auth = (await headers(client, "care-north"))["care-north"]
    resp = await client.post(f"{API}/alerts/{world.sos_alice}/ack",
                             content=b'{"note": "on my way \\ud800"}',
                             headers={**auth, "Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["loc"] == ["body", "note"]


@pytest.mark.anyio
async def test_note_keeps_line_breaks(client, world: World):
    auth = (await headers(client, "care-north"))["care-north"]
    resp = await client.post(f"{API}/alerts/{world.sos_alice}/ack",
                             json={"note": " on my way\n\tETA 5 min "}, headers=auth)
    assert resp.status_code == 200, resp.text


@pytest.mark.anyio
@pytest.mark.parametrize("params", [
    {"to": "0001-01-01T01:00:00"},
    {"to": "9999-12-31T23:59:59-14:00"},
    {"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"},
    {"from": "9999-12-31T00:00:00+14:00"},
    {"to": "1969-12-31T23:59:59Z"},
])
async def test_vitals_calendar_edge_dates_are_422(client, world: World, params):
    auth = await login(client, "admin")
    resp = await client.get(f"{API}/residents/{world.alice}/vitals", params=params,
                            headers=auth)
    assert resp.status_code == 422, resp.text
    loc = resp.json()["errors"][0]["loc"]
    assert loc[0] == "query" and loc[1] in params
    assert "between 1970" in detail(resp)


# --- generated requests on every route --------------------------------------------------------

ROLES = ("admin", "duty-north", "care-north", "family-alice", None)  # None: no token
# The live feed never ends on its own; tests/dashboard/test_stream.py covers its input.
ENDLESS = frozenset({"GET /api/v1/alerts/stream"})
EXAMPLES_PER_MODE = 25
# Values the audit found that schema-driven generation rarely produces: one of them replaces
# one generated field (query, path, form or JSON, nested included) in every other request.
HOSTILE = ("\x00", "on my way\x00", "line\nERROR forged", "\x1b[31m", "0001-01-01T01:00:00",
           "9999-12-31T23:59:59-14:00", "0001-01-01", "x" * 5000, "-1", "0",
           "9223372036854775808", "1e309", "", " ")


@pytest.fixture
def served(world: World, clean_db: str, broker: Broker) -> Iterator[Served]:
    """The dashboard on the seeded database (no alert bus: the feed is not fuzzed), with
    device administration on the test broker (provisioning and revoking are fuzzed too)."""
    devices = DevicesConfig(DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port)),
                            broker.pipeline, broker.admin)
    with running_server(create_app(clean_db, SECRET, devices=devices)) as srv:
        yield srv


def _tokens(url: str) -> dict[str | None, dict[str, str]]:
    tokens: dict[str | None, dict[str, str]] = {None: {}}
    for role in ROLES:
        if role is not None:
            resp = httpx.post(f"{url}{API}/auth/token",
                              data={"username": role, "password": PASSWORD})
            assert resp.status_code == 200, resp.text
            tokens[role] = {"Authorization": f"Bearer {resp.json()['access_token']}"}
    return tokens


def _known_ids(world: World) -> dict[str, list[object]]:
    """Path values that exist, so generated requests also reach the code behind the 404s."""
    return {"alert_id": [world.sos_alice, world.sos_carol, world.fall_bob, world.battery_alice],
            "resident_id": [world.alice, world.carol], "site": ["north", "south"],
            "channel_id": [1, 2], "device_id": ["btn-alice", "bed-alice", "btn-carol"]}


@dataclass(frozen=True)
class Target:
    """One operation under test: where the server is, who may call, what to aim at."""

    url: str
    tokens: dict[str | None, dict[str, str]]
    query_names: tuple[str, ...]
    known: dict[str, list[object]]


def _no_server_error(target: Target, operation: Any, mode: GenerationMode) -> None:
    @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), role=st.sampled_from(ROLES),
           data=st.data())
    def check(case: Any, role: str | None, data: st.DataObject) -> None:
        _aim(case, data, target)
        resp = case.call(base_url=target.url, headers=target.tokens[role], timeout=30)
        assert resp.status_code < 500, (
            f"{operation.label} ({mode.value}) as {role or 'anonymous'} answered "
            f"{resp.status_code}: {resp.text[:300]}\n{case.as_curl_command()}")

    try:
        check()
    except Unsatisfiable:
        # An operation without parameters or body (GET /me) has no invalid request.
        assert mode is GenerationMode.NEGATIVE, operation.label


def _fields(value: object) -> list[tuple[dict[str, Any], str]]:
    """Every (dict, key) of a generated request part, nested dicts included."""
    if not isinstance(value, dict):
        return []
    found = [(value, key) for key in value]
    for nested in value.values():
        found.extend(_fields(nested))
    return found


def _aim(case: Any, data: st.DataObject, target: Target) -> None:
    """Often point the path at objects that exist; then often make one field hostile."""
    for name in case.path_parameters or {}:
        if name in target.known and data.draw(st.booleans(), label=f"known {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(target.known[name]))
    if isinstance(case.query, dict):
        for name in target.query_names:
            case.query.setdefault(name, None)
    fields = [*_fields(case.query), *_fields(case.path_parameters), *_fields(case.body)]
    if fields and data.draw(st.integers(0, 2), label="poison") > 0:
        container, key = data.draw(st.sampled_from(fields), label="field")
        container[key] = data.draw(st.sampled_from(HOSTILE), label="value")
    if isinstance(case.query, dict):
        for name in [name for name, value in case.query.items() if value is None]:
            del case.query[name]


def _query_names(spec: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """"METHOD /path" -> the names of its query parameters, from the OpenAPI document."""
    names = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            names[f"{method.upper()} {path}"] = tuple(
                p["name"] for p in op.get("parameters", []) if p["in"] == "query")
    return names


def test_no_route_answers_500_to_generated_requests(served: Served, world: World):
    spec_url = f"{served.url}/openapi.json"
    schema = schemathesis.openapi.from_url(spec_url)
    query_names = _query_names(httpx.get(spec_url).json())
    tokens = _tokens(served.url)
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in ENDLESS:
            continue
        labels.append(operation.label)
        target = Target(served.url, tokens, query_names[operation.label], _known_ids(world))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _no_server_error(target, operation, mode)
    assert "POST /api/v1/auth/token" in labels and "POST /api/v1/me/channels" in labels

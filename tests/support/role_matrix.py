"""The role x route matrix's world (tests/dashboard/test_role_matrix.py): who calls, what they
call it on, and the request itself.

Every request targets things of site `north` and resident Alice (or accounts of north). The
callers ("actors") differ in role and in how they stand to those things: a duty officer or care
worker of north (own site) or of south (other site), a family member of Alice (linked) or of
Bob (another resident, same site), an administrator, and nobody (no token).

Path parameters are filled by name from `Targets`; a parameter that needs a throwaway object
(an alert to acknowledge, a shift to delete, a device to revoke) gets a fresh one for every
request, so each actor's request meets the same state whatever ran before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from starlette.types import ASGIApp, Message

from dashboard.devices import DevicesConfig
from gateway import device_lifecycle
from gateway.schema import DeviceType
from kernel import accounts, db
from tests.support.dashboard import PASSWORD, World, insert_alert, seed_world

# The callers, each with the account it logs in with (None: no token).
ACCOUNTS: dict[str, str | None] = {
    "anon": None,
    "admin": "admin",
    "duty": "duty-north",          # duty officer of north (the targets' site)
    "duty_other": "duty-south",    # duty officer of south
    "care": "care-north",          # care worker of north
    "care_other": "care-south",    # care worker of south
    "family": "family-alice",      # family of Alice (the target resident)
    "family_other": "family-bob",  # family of Bob (another resident of north)
    "restricted": "care-temp",     # care worker of north who must change a temporary password
    "display": "display-north",    # a wall display of north (dashboard/displays.py): no
                                   # password; its token comes from its display secret
}
ACTORS = tuple(ACCOUNTS)
ROLE_OF = {"anon": "anon", "admin": "admin", "duty": "duty", "duty_other": "duty",
           "care": "care", "care_other": "care", "family": "family",
           "family_other": "family", "restricted": "restricted", "display": "display"}
SCOPE_OF = {"anon": "-", "admin": "any site", "duty": "own site", "duty_other": "other site",
            "care": "own site", "care_other": "other site", "family": "linked resident",
            "family_other": "other resident", "restricted": "temporary password",
            "display": "wall display of north"}
# The display secrets of the display accounts seed_matrix made (username -> secret).
DISPLAY_SECRETS: dict[str, str] = {}
IMPORT_CSV = ("site,full_name,address,birth_year,bed_sensor,call_button\n"
              "north,Dag Dahl,4 Fjord Road,1936,yes,yes\n")


@dataclass(frozen=True)
class MatrixWorld:
    """The seeded world plus what the matrix adds: a second care worker and family member, a
    care worker with a temporary password, a staff and a family account to manage, a
    visit."""

    base: World
    database_url: str
    devices: DevicesConfig
    care_south: int
    family_bob: int
    staff_north: int    # a care worker of north nobody logs in as (accounts are managed)
    family_target: int  # a family account of Alice nobody logs in as
    visit: int          # a planned visit to Alice, assigned to care-north
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def unique(self) -> int:
        """A number no other request used (fresh names and targets)."""
        return next(self.counter)


def seed_matrix(database_url: str, devices: DevicesConfig) -> MatrixWorld:
    """The dashboard tests' world (tests.support.dashboard.seed_world) and the additions."""
    base = seed_world(database_url)
    with db.connect(database_url) as conn:
        care_south = accounts.add_user(conn, "care-south", PASSWORD, "care_worker", "south")
        family_bob = accounts.add_user(conn, "family-bob", PASSWORD, "family",
                                       residents=[base.bob])
        staff_north = accounts.add_user(conn, "staff-north", PASSWORD, "care_worker", "north")
        family_target = accounts.add_user(conn, "family-target", PASSWORD, "family",
                                          residents=[base.alice])
        care_temp = accounts.add_user(conn, "care-temp", PASSWORD, "care_worker", "north")
        DISPLAY_SECRETS["display-north"] = add_display(conn, "display-north", "north")
        conn.execute("UPDATE users SET must_change_password = true WHERE id = %s",
                     (care_temp,))
        row = conn.execute(
            "INSERT INTO visits (resident_id, site_id, due_on, assigned_to) "
            "VALUES (%s, 'north', current_date, %s) RETURNING id",
            (base.alice, base.care_north)).fetchone()
        assert row is not None
        conn.commit()
    return MatrixWorld(base, database_url, devices, care_south, family_bob, staff_north,
                       family_target, int(str(row[0])))


def add_display(conn: psycopg.Connection[Any], username: str, site: str) -> str:
    """A wall display of `site` as dashboard/displays.py sets one up; its secret."""
    row = conn.execute("INSERT INTO users (username, password_hash, full_name, role, site_id) "
                       "VALUES (%s, '!', %s, 'display', %s) RETURNING id",
                       (username, f"Screen {username}", site)).fetchone()
    assert row is not None
    secret = f"{row[0]}.matrix-display-secret-{username}"
    conn.execute("INSERT INTO displays (user_id, name, secret_hash, created_by_name) "
                 "VALUES (%s, %s, %s, 'matrix')",
                 (row[0], f"Screen {username}", accounts.hash_device_secret(secret)))
    return secret


# --- targets: path parameters by name ---------------------------------------------------------

Target = Callable[[MatrixWorld, str], object]


def _insert(w: MatrixWorld, query: str, params: Mapping[str, object]) -> int:
    with db.connect(w.database_url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(str(row[0]))


def fresh_alert(w: MatrixWorld, _actor: str) -> int:
    """An open alert of Alice's, for one acknowledge/resolve/visit request (a type of its own:
    a resident has one open alert per type)."""
    with db.connect(w.database_url, autocommit=True) as conn:
        return insert_alert(conn, w.base.alice, "north", f"matrix_{w.unique()}", "critical")


def _channel(w: MatrixWorld, owner: str, value: object) -> int:
    return _insert(w, f"INSERT INTO notification_channels ({owner}, kind, target) "
                      "VALUES (%(v)s, 'webhook', %(t)s) RETURNING id",
                   {"v": value, "t": f"http://127.0.0.1:9/matrix/{w.unique()}"})


def fresh_site_channel(w: MatrixWorld, _actor: str) -> int:
    """A webhook channel of north (its test send fails at once: nothing listens on port 9)."""
    return _channel(w, "site_id", "north")


def care_channel(w: MatrixWorld, _actor: str) -> int:
    """A personal channel of care-north: only its owner may change or delete it."""
    return _channel(w, "user_id", w.base.care_north)


def fresh_shift(w: MatrixWorld, _actor: str) -> int:
    """A shift of staff-north at north."""
    return _insert(w, "INSERT INTO shifts (site_id, user_id, starts_local, ends_local) "
                      "VALUES ('north', %(u)s, '2030-01-01 08:00', '2030-01-01 16:00') "
                      "RETURNING id", {"u": w.staff_north})


def fresh_session(w: MatrixWorld, _actor: str) -> str:
    """A live session of staff-north, for an administrator to end."""
    with db.connect(w.database_url, autocommit=True) as conn:
        row = conn.execute("INSERT INTO sessions (id, user_id, created_at, expires_at) "
                           "VALUES (gen_random_uuid(), %s, now(), now() + interval '1 hour') "
                           "RETURNING id", (w.staff_north,)).fetchone()
    assert row is not None
    return str(row[0])


def fresh_device(w: MatrixWorld, _actor: str) -> str:
    """A call button of Alice's with a real broker account, to revoke or move."""
    with db.connect(w.database_url) as conn:
        cred = device_lifecycle.provision(conn, w.devices.accounts, w.devices.broker,
                                          w.base.alice, DeviceType.CALL_BUTTON, actor="matrix")
    return cred.device_id


def fresh_display(w: MatrixWorld, _actor: str) -> int:
    """A wall display of north, to switch off."""
    with db.connect(w.database_url) as conn:
        secret = add_display(conn, f"display-m{w.unique()}", "north")
        conn.commit()
    return int(secret.split(".")[0])


TARGETS: dict[str, Target] = {
    "resident_id": lambda w, _: w.base.alice,
    "alert_id": lambda w, _: w.base.sos_alice,
    "site": lambda w, _: "north",
    "site_id": lambda w, _: "north",
    "user_id": lambda w, _: w.staff_north,
    "visit_id": lambda w, _: w.visit,
    "device_id": lambda w, _: "btn-alice",
    "channel_id": fresh_site_channel,
    "shift_id": fresh_shift,
    "session_id": fresh_session,
    # Alternatives a row names with `use=`:
    "fresh_alert": fresh_alert,
    "fresh_device": fresh_device,
    "fresh_display": fresh_display,
    "care_channel": care_channel,
    "family_target": lambda w, _: w.family_target,
    "bob": lambda w, _: w.base.bob,
}


# --- the live stream: status line only --------------------------------------------------------

async def stream_status(app: ASGIApp, path: str, headers: Mapping[str, str],
                        timeout_s: float = 30.0) -> int:
    """The status with which `app` answers a GET of an endless response (Server-Sent
    Events): the request is made at the ASGI level and the client leaves as soon as the
    status line is sent (an in-process HTTP client would wait for the end of the body)."""
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    leave = asyncio.Event()
    sent_body = False

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(int(message["status"]))

    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 4711), "server": ("dashboard.test", 80),
        "headers": [(b"host", b"dashboard.test"),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items())],
    }

    async def call() -> None:
        await app(scope, receive, send)

    task: asyncio.Task[None] = asyncio.create_task(call())
    try:
        waits: set[asyncio.Future[Any]] = {task, started}
        done, _ = await asyncio.wait(waits, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        assert done, f"no answer to GET {path} within {timeout_s} s"
        if started.done():
            return started.result()
        task.result()  # the app ended without answering: raise its error
        raise AssertionError(f"GET {path} ended without a response")
    finally:
        leave.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=timeout_s)  # cancelled if it stays


# --- requests ---------------------------------------------------------------------------------

async def login_all(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    """Authorization headers for every actor (none for anon), one login each."""
    out: dict[str, dict[str, str]] = {}
    for actor, username in ACCOUNTS.items():
        out[actor] = {} if username is None else await login_headers(client, username)
    return out


async def login_headers(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    """A new session's Authorization header (a display's: exchanged for its secret)."""
    if username in DISPLAY_SECRETS:
        resp = await client.post("/api/v1/displays/session",
                                 json={"secret": DISPLAY_SECRETS[username]})
    else:
        resp = await client.post("/api/v1/auth/token",
                                 data={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def json_body(body: object) -> Callable[[MatrixWorld], dict[str, Any]]:
    """Request arguments sending `body` (or what it returns for the world) as JSON."""
    def make(w: MatrixWorld) -> dict[str, Any]:
        return {"json": body(w) if callable(body) else body}
    return make


def import_upload(_w: MatrixWorld) -> dict[str, Any]:
    """A dry-run import of one good row (nothing is written)."""
    return {"files": {"file": ("m.csv", IMPORT_CSV.encode(), "text/csv")},
            "data": {"dry_run": "true"}}


def import_upload_to(site: str) -> Callable[[MatrixWorld], dict[str, Any]]:
    """A dry-run import naming the site to import into (form field `site`)."""
    def make(w: MatrixWorld) -> dict[str, Any]:
        sent = import_upload(w)
        sent["data"]["site"] = site
        return sent
    return make


def login_form(_w: MatrixWorld) -> dict[str, Any]:
    """The login form of the administrator."""
    return {"data": {"username": "admin", "password": PASSWORD}}


def describe(resp: httpx.Response) -> str:
    """The answer in a failure message: status and (short) body."""
    try:
        body = json.dumps(resp.json())[:300]
    except ValueError:
        body = resp.text[:300]
    return f"{resp.status_code} {body}"


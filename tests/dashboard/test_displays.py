"""Wall displays (dashboard/displays.py): set up by a duty officer, renewed with the display
secret, limited to read-and-acknowledge, revocable with the live stream ending at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dashboard.app import create_app
from tests.dashboard.test_stream import make_app, wait_live
from tests.support.dashboard import SECRET, World, login
from tests.support.live import open_stream, running_server

pytestmark = pytest.mark.anyio


async def _client(url: str, clock: list[datetime]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose "now" is clock[0] (tests move it)."""
    app = create_app(url, SECRET, clock=lambda: clock[0], display_token_minutes=10)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://dashboard.test") as client):
        yield client


@pytest.fixture
def clock() -> list[datetime]:
    return [datetime.now(UTC)]


@pytest.fixture
async def http(world: World, clean_db: str, clock: list[datetime]
               ) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(clean_db, clock):
        yield client


async def set_up(http: httpx.AsyncClient, officer: str = "duty-north",
                 name: str = "Hall screen 1") -> dict[str, object]:
    resp = await http.post("/api/v1/displays", json={"name": name},
                           headers=await login(http, officer))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def display_token(http: httpx.AsyncClient, secret: object) -> httpx.Response:
    return await http.post("/api/v1/displays/session", json={"secret": secret})


def bearer(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def test_a_duty_officer_sets_up_a_display_of_their_site(http: httpx.AsyncClient,
                                                             world: World):
    display = await set_up(http)
    assert display["site_id"] == "north" and display["name"] == "Hall screen 1"
    assert display["created_by"] == "Dora Duty" and len(str(display["secret"])) > 40
    token = await display_token(http, display["secret"])
    body = token.json()
    assert (body["role"], body["site_id"], body["full_name"], body["expires_in"]) == (
        "display", "north", "Hall screen 1", 600)
    assert body["site_timezone"]
    listed = (await http.get("/api/v1/displays",
                             headers=await login(http, "duty-north"))).json()
    assert [d["name"] for d in listed] == ["Hall screen 1"] and listed[0]["last_seen_at"]
    assert "secret" not in listed[0]
    # Displays are not people: the staff list leaves them out.
    staff = (await http.get("/api/v1/users", headers=await login(http, "admin"))).json()
    assert all(a["role"] != "display" for a in staff)


async def test_who_may_set_up_and_list_displays(http: httpx.AsyncClient, world: World):
    for who in ("care-north", "family-alice"):
        resp = await http.post("/api/v1/displays", json={"name": "Mine"},
                               headers=await login(http, who))
        assert resp.status_code == 403, who
    resp = await http.post("/api/v1/displays", json={"name": "X", "site_id": "south"},
                           headers=await login(http, "duty-north"))
    assert resp.status_code == 403
    await set_up(http, "duty-south", "South hall")
    north = (await http.get("/api/v1/displays",
                            headers=await login(http, "duty-north"))).json()
    assert north == []
    admin = await login(http, "admin")
    resp = await http.post("/api/v1/displays", json={"name": "HQ"}, headers=admin)
    assert resp.status_code == 422  # an administrator chooses the site
    resp = await http.post("/api/v1/displays", json={"name": "HQ", "site_id": "north"},
                           headers=admin)
    assert resp.status_code == 201
    everything = (await http.get("/api/v1/displays", headers=admin)).json()
    assert {d["name"] for d in everything} == {"South hall", "HQ"}


async def test_a_display_reads_and_acknowledges_its_site_and_nothing_else(
        http: httpx.AsyncClient, world: World):
    display = await set_up(http)
    token = await display_token(http, display["secret"])
    auth = bearer(token)
    resp = await http.get("/api/v1/alerts", headers=auth)
    assert resp.status_code == 200, resp.text
    alerts = resp.json()
    assert {a["site_id"] for a in alerts} == {"north"}
    residents = (await http.get("/api/v1/residents", headers=auth)).json()
    assert {r["site_id"] for r in residents} == {"north"}
    assert (await http.get(f"/api/v1/alerts/{world.sos_carol}", headers=auth)).status_code \
        == 404
    ack = await http.post(f"/api/v1/alerts/{world.sos_alice}/ack", headers=auth)
    assert ack.status_code == 200, ack.text
    assert ack.json()["acknowledged_by"] == display["id"]
    acked = [h for h in ack.json()["history"] if h["action"] == "acknowledged"]
    assert acked[-1]["actor"] == token.json()["username"]  # the display's account acted
    for panel in ("/api/v1/visits/due?overdue=true", "/api/v1/sites/north/answer-times/shift"):
        assert (await http.get(panel, headers=auth)).status_code == 200, panel
    south = await http.get("/api/v1/sites/south/answer-times/shift", headers=auth)
    assert south.status_code == 403
    refused = [
        ("GET", "/api/v1/visits", None),
        ("GET", "/api/v1/sites/north/answer-times/report", None),
        ("POST", f"/api/v1/alerts/{world.sos_alice}/resolve",
         {"outcome": "false_alarm"}),
        ("GET", f"/api/v1/residents/{world.alice}", None),
        ("GET", "/api/v1/users", None),
        ("GET", "/api/v1/displays", None),
        ("POST", "/api/v1/displays", {"name": "Another"}),
        ("GET", "/api/v1/audit", None),
        ("POST", "/api/v1/auth/logout", None),
        ("PUT", "/api/v1/me/duty", {"on_duty": True}),
    ]
    for method, path, body in refused:
        resp = await http.request(method, path, headers=auth, json=body)
        assert resp.status_code == 403, (method, path, resp.status_code, resp.text)
    # A display account cannot log in with a password.
    resp = await http.post("/api/v1/auth/token",
                           data={"username": str(display["id"]), "password": "!"})
    assert resp.status_code == 401


async def test_an_expired_token_is_renewed_from_the_secret(http: httpx.AsyncClient,
                                                           world: World,
                                                           clock: list[datetime]):
    display = await set_up(http)
    clock[0] = datetime.now(UTC) - timedelta(minutes=11)  # issued 11 min ago, lives 10
    stale = bearer(await display_token(http, display["secret"]))
    resp = await http.get("/api/v1/alerts", headers=stale)
    assert resp.status_code == 401
    clock[0] = datetime.now(UTC)
    fresh = bearer(await display_token(http, display["secret"]))
    assert (await http.get("/api/v1/alerts", headers=fresh)).status_code == 200
    # Renewal slides the display's one session forward instead of piling up sessions.
    again = bearer(await display_token(http, display["secret"]))
    assert (await http.get("/api/v1/me", headers=again)).json()["role"] == "display"
    listed = (await http.get("/api/v1/displays",
                             headers=await login(http, "duty-north"))).json()
    assert listed[0]["revoked_at"] is None


async def test_wrong_or_malformed_secrets_are_refused(http: httpx.AsyncClient, world: World):
    display = await set_up(http)
    wrong = f"{display['id']}.not-the-secret"
    for secret in (wrong, "garbage", "99999.x", "."):
        resp = await display_token(http, secret)
        assert resp.status_code == 403
        assert resp.headers["X-Display-State"] == "switched_off"


async def test_revoking_ends_the_displays_stream_and_says_who(world: World, clean_db: str):
    app = make_app(clean_db, None, scope_refresh_s=3600)
    with running_server(app) as srv:
        wait_live(app, bus=False)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            display = await set_up(http)
            token = (await display_token(http, display["secret"])).json()["access_token"]
            officer = await login(http, "duty-north")
            async with open_stream(http, token) as feed:
                resp = await http.post(f"/api/v1/displays/{display['id']}/revoke",
                                       headers=officer)
                assert resp.status_code == 200, resp.text
                assert resp.json()["revoked_by"] == "Dora Duty"
                assert (await feed.next_of("close"))["action"] == "login"
                assert await feed.next() is None
            resp = await display_token(http, display["secret"])
            assert resp.status_code == 403
            assert resp.json()["revoked_by"] == "Dora Duty"
            assert "switched off by Dora Duty" in resp.json()["detail"]
            gone = await http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
            assert gone.status_code == 401
            # Another site's officer cannot see it to switch it off.
            other = await http.post(f"/api/v1/displays/{display['id']}/revoke",
                                    headers=await login(http, "duty-south"))
            assert other.status_code == 404


async def test_display_accounts_are_not_made_or_given_by_hand(http: httpx.AsyncClient,
                                                              world: World):
    admin = await login(http, "admin")
    resp = await http.post("/api/v1/users", headers=admin, json={
        "username": "fake-screen", "role": "display", "site_id": "north"})
    assert resp.status_code == 422, resp.text
    resp = await http.patch(f"/api/v1/users/{world.care_north}", headers=admin,
                            json={"role": "display"})
    assert resp.status_code == 422, resp.text

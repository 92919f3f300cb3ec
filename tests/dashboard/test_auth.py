"""Login, tokens and the current-user dependency, on the real database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from dashboard.auth import create_token
from dashboard.throttle import LoginThrottle, ThrottleSettings, client_key
from eldercare import db
from tests.dashboard.conftest import PASSWORD, SECRET, login

pytestmark = pytest.mark.anyio

TOKEN_URL = "/api/v1/auth/token"
PUBLIC_ROUTES = {("POST", "/api/v1/auth/token"), ("GET", "/api/v1/health")}


async def test_token_success_returns_bearer_token_and_identity(client, world):
    resp = await client.post(TOKEN_URL, data={"username": "duty-north", "password": PASSWORD})
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["role"] == "duty_officer"
    assert body["site_id"] == "north"
    assert body["username"] == "duty-north"
    assert body["expires_in"] == 720 * 60
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"],
                        issuer="eldercare-dashboard")
    assert claims["sub"] == str(world.duty_north)
    assert claims["exp"] > datetime.now(UTC).timestamp() + 719 * 60


async def test_wrong_password_and_unknown_user_get_the_same_401(client, world):
    for username, password in (("duty-north", "wrong password"), ("nobody", PASSWORD)):
        resp = await client.post(TOKEN_URL, data={"username": username, "password": password})
        assert resp.status_code == 401
        assert resp.json()["detail"] == "Incorrect username or password"
        assert resp.headers["WWW-Authenticate"] == "Bearer"


async def test_token_form_missing_password_is_422_without_echoing_input(client, world):
    resp = await client.post(TOKEN_URL, data={"username": "duty-north"})
    assert resp.status_code == 422
    assert "form field 'password'" in resp.json()["detail"]


async def test_me_with_token(client, world):
    resp = await client.get("/api/v1/me", headers=await login(client, "family-alice"))
    assert resp.status_code == 200
    assert resp.json() == {"id": world.family_alice, "username": "family-alice",
                           "full_name": "Anna Andersen", "role": "family", "site_id": None}


async def test_missing_token_is_401_with_bearer_challenge(client, world):
    resp = await client.get("/api/v1/alerts")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert "Not authenticated" in resp.json()["detail"]


async def test_garbage_and_foreign_tokens_are_401(client, world):
    forged = create_token(world.admin, "some-other-secret-0123456789abcdef", timedelta(hours=1))
    for token in ("not-a-jwt", forged):
        resp = await client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert resp.json()["detail"] == "Invalid access token; please log in again"


async def test_expired_token_is_401_saying_so(client, world):
    token = create_token(world.admin, SECRET, timedelta(minutes=5),
                         now=datetime.now(UTC) - timedelta(hours=1))
    resp = await client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "expired" in resp.json()["detail"]


async def test_token_for_a_user_that_no_longer_exists_is_401(client, world):
    token = create_token(999_999, SECRET, timedelta(hours=1))
    resp = await client.get("/api/v1/residents", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


async def test_deactivated_user_loses_access_at_once(client, world, clean_db):
    headers = await login(client, "care-north")
    assert (await client.get("/api/v1/alerts", headers=headers)).status_code == 200
    with db.connect(clean_db, autocommit=True) as conn:
        conn.execute("UPDATE users SET active = false WHERE id = %s", (world.care_north,))
    resp = await client.get("/api/v1/alerts", headers=headers)
    assert resp.status_code == 401
    assert "deactivated" in resp.json()["detail"]
    resp = await client.post(TOKEN_URL, data={"username": "care-north", "password": PASSWORD})
    assert resp.status_code == 403
    assert "deactivated" in resp.json()["detail"]


async def test_every_api_route_except_login_and_health_requires_a_token(client, world):
    schema = (await client.get("/openapi.json")).json()
    checked = 0
    for route, operations in schema["paths"].items():
        for method in operations:
            if (method.upper(), route) in PUBLIC_ROUTES:
                continue
            path = re.sub(r"\{[^}]+\}", "1", route)
            resp = await client.request(method.upper(), path)
            assert resp.status_code == 401, f"{method} {route} answered {resp.status_code}"
            checked += 1
    assert checked >= 5


async def test_repeated_failed_logins_are_throttled_per_client_and_account(client, world):
    """Five failures lock this client out of this account for a while (429 with
    Retry-After, even with the right password); other accounts and other clients are not
    affected, so nobody can lock a duty officer out from elsewhere."""
    bad = {"username": "duty-north", "password": "wrong password"}
    for _ in range(5):
        assert (await client.post(TOKEN_URL, data=bad)).status_code == 401
    resp = await client.post(TOKEN_URL, data={"username": "duty-north", "password": PASSWORD})
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 900
    assert resp.json()["detail"].startswith("Too many failed logins; try again in 15 minutes")
    other_account = {"username": "family-alice", "password": PASSWORD}
    assert (await client.post(TOKEN_URL, data=other_account)).status_code == 200
    app = client._transport.app  # the same app, reached from another address
    async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 4711)),
            base_url="http://dashboard.test") as elsewhere:
        ok = {"username": "duty-north", "password": PASSWORD}
        assert (await elsewhere.post(TOKEN_URL, data=ok)).status_code == 200


def test_throttle_counts_attempts_before_the_check_and_forgets_them_on_success() -> None:
    throttle = LoginThrottle(ThrottleSettings(per_account=2, per_address=3, window_s=60))
    assert throttle.begin("10.0.0.1", "Anna") is None
    throttle.succeeded("10.0.0.1", "anna")  # usernames compare case-insensitively
    assert throttle.begin("10.0.0.1", "anna") is None  # two attempts in flight at once:
    assert throttle.begin("10.0.0.1", "anna") is None  # both counted before either fails
    wait = throttle.begin("10.0.0.1", "anna")
    assert wait is not None and 1 <= wait <= 61
    assert throttle.begin("10.0.0.2", "anna") is None  # another client is not affected
    for _ in range(3):
        throttle.failed("10.0.0.9")  # failures from one client, any accounts
    assert throttle.begin("10.0.0.9", "carol") is not None


def test_an_ipv6_client_is_its_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2:aaaa::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:10.0.0.1") == client_key("10.0.0.1") == "10.0.0.1"
    assert client_key("testclient") == "testclient"

"""Login, tokens and the current-user dependency, on the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import jwt
import pytest

from dashboard.app import create_app
from dashboard.auth import create_token
from dashboard.throttle import LoginThrottle, ThrottleSettings, client_key
from kernel import accounts, db
from tests.support.dashboard import PASSWORD, SECRET, login
from tests.support.live import running_server

pytestmark = pytest.mark.anyio

TOKEN_URL = "/api/v1/auth/token"


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
    forged = create_token(world.admin, "some-other-secret-0123456789abcdef", timedelta(hours=1),
                          session_id=uuid4())
    for token in ("not-a-jwt", forged):
        resp = await client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert resp.json()["detail"] == "Invalid access token; please log in again"


async def test_expired_token_is_401_saying_so(client, world):
    token = create_token(world.admin, SECRET, timedelta(minutes=5),
                         now=datetime.now(UTC) - timedelta(hours=1), session_id=uuid4())
    resp = await client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "expired" in resp.json()["detail"]


async def test_token_for_a_user_that_no_longer_exists_is_401(client, world):
    token = create_token(999_999, SECRET, timedelta(hours=1), session_id=uuid4())
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


# --- server-side sessions -------------------------------------------------------------------


async def test_logout_ends_the_session_server_side(client, world, clean_db):
    headers = await login(client, "duty-north")
    other_tab = await login(client, "duty-north")
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    resp = await client.post("/api/v1/auth/logout", headers=headers)
    assert resp.status_code == 204
    resp = await client.get("/api/v1/me", headers=headers)
    assert resp.status_code == 401
    assert resp.json()["detail"] == "Your session has ended (logged out); please log in again"
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 401
    assert (await client.get("/api/v1/me", headers=other_tab)).status_code == 200
    with db.connect(clean_db, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FILTER (WHERE revoked_at IS NULL), "
                           "count(*) FILTER (WHERE revoked_reason = 'logged out') "
                           "FROM sessions WHERE user_id = %s", (world.duty_north,)).fetchone()
    assert row == (1, 1)


async def test_a_session_records_where_it_was_opened(client, world, clean_db):
    resp = await client.post(TOKEN_URL, data={"username": "admin", "password": PASSWORD},
                             headers={"User-Agent": "duty screen\x00 test"})
    assert resp.status_code == 200
    claims = jwt.decode(resp.json()["access_token"], SECRET, algorithms=["HS256"],
                        issuer="eldercare-dashboard")
    with db.connect(clean_db, autocommit=True) as conn:
        row = conn.execute("SELECT user_id, client_address, user_agent, expires_at - created_at "
                           "FROM sessions WHERE id = %s", (claims["sid"],)).fetchone()
    assert row == (world.admin, "127.0.0.1", "duty screen? test", timedelta(minutes=720))


async def test_reactivating_an_account_does_not_revive_its_old_sessions(client, world, clean_db):
    headers = await login(client, "care-north")
    with db.connect(clean_db) as conn:
        accounts.set_user_active(conn, "care-north", False)
    resp = await client.get("/api/v1/me", headers=headers)
    assert resp.status_code == 401
    assert "account deactivated" in resp.json()["detail"]
    with db.connect(clean_db) as conn:
        accounts.set_user_active(conn, "Care-North", True)  # usernames ignore case
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401
    assert (await client.get("/api/v1/me", headers=await login(client, "care-north"))
            ).status_code == 200


async def test_a_token_without_a_stored_session_is_refused(client, world):
    token = create_token(world.admin, SECRET, timedelta(hours=1), session_id=uuid4())
    resp = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    old_style = jwt.encode({"sub": str(world.admin), "iss": "eldercare-dashboard",
                            "exp": datetime.now(UTC) + timedelta(hours=1)}, SECRET)
    resp = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {old_style}"})
    assert resp.status_code == 401


async def test_login_ignores_the_case_of_the_username(client, world):
    resp = await client.post(TOKEN_URL, data={"username": "Duty-NORTH", "password": PASSWORD})
    assert resp.status_code == 200
    assert resp.json()["username"] == "duty-north"


async def test_look_alike_spellings_of_a_username_neither_log_in_nor_escape_the_throttle(
        client, world):
    """Python and PostgreSQL lower-case "İ" differently: "duty-nİrth" must not reach
    duty-north's account (PostgreSQL's lower() would match it) nor get a throttle budget of
    its own (Python's casefold() would not)."""
    for spelling in ("duty-n\u0130rth", "duty-n\u0131rth", "duty-north\u200b"):
        resp = await client.post(TOKEN_URL, data={"username": spelling, "password": PASSWORD})
        assert resp.status_code == 401, spelling
    bad = {"username": "duty-north", "password": "wrong password"}
    for _ in range(5):
        assert (await client.post(TOKEN_URL, data=bad)).status_code == 401
    for spelling in ("Duty-North", "DUTY-NORTH"):
        resp = await client.post(TOKEN_URL, data={"username": spelling, "password": PASSWORD})
        assert resp.status_code == 429, spelling


async def test_a_nul_in_the_login_form_is_a_field_error(client, world):
    for field in ("username", "password"):
        form = {"username": "duty-north", "password": PASSWORD, field: "a\x00b"}
        resp = await client.post(TOKEN_URL, data=form)
        assert resp.status_code == 422
        assert f"form field '{field}'" in resp.json()["detail"]
        assert "a\x00b" not in resp.text


# --- response headers -----------------------------------------------------------------------


async def test_api_answers_are_never_cached_and_nothing_is_sniffed(client, world):
    resp = await client.post(TOKEN_URL, data={"username": "admin", "password": PASSWORD})
    assert resp.headers["Cache-Control"] == "no-store"  # RFC 6749 section 5.1
    assert resp.headers["Pragma"] == "no-cache"
    headers = {"Authorization": f"Bearer {resp.json()['access_token']}"}
    for path in ("/api/v1/me", "/api/v1/residents", "/api/v1/alerts", "/api/v1/health",
                 "/api/v1/alerts/999999"):
        resp = await client.get(path, headers=headers)
        assert resp.headers["Cache-Control"] == "no-store", path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
    assert (await client.get("/api/v1/me")).headers["Cache-Control"] == "no-store"  # 401 too
    for path in ("/static/common.js", "/static/style.css", "/", "/manifest.webmanifest"):
        resp = await client.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert resp.headers.get("Cache-Control") != "no-store", path  # pages may be cached


# --- forwarded headers ----------------------------------------------------------------------


async def _fail_logins_rotating_forwarded_for(url: str) -> int:
    """Fail logins for one account, each claiming another X-Forwarded-For; return the status
    of the sixth attempt."""
    bad = {"username": "duty-north", "password": "wrong password"}
    async with httpx.AsyncClient(base_url=url) as http:
        for n in range(5):
            resp = await http.post(TOKEN_URL, data=bad,
                                   headers={"X-Forwarded-For": f"198.51.100.{n + 1}"})
            assert resp.status_code == 401
        resp = await http.post(TOKEN_URL, data=bad, headers={"X-Forwarded-For": "198.51.100.99"})
        return resp.status_code


async def test_forwarded_for_is_ignored_unless_from_a_configured_proxy(world, clean_db):
    """By default a local client cannot choose its own address with X-Forwarded-For (and so
    escape the login throttle); a configured proxy's forwarded address is used."""
    with running_server(create_app(clean_db, SECRET)) as srv:
        assert await _fail_logins_rotating_forwarded_for(srv.url) == 429
    with running_server(create_app(clean_db, SECRET), trusted_proxies=("127.0.0.1",)) as srv:
        assert await _fail_logins_rotating_forwarded_for(srv.url) == 401


# --- the family view: family of resident A vs resident B (who may call which route:
# tests/dashboard/test_role_matrix.py) -------------------------------------------------------

FAMILY_ROUTES = ("/api/v1/family/residents", "/api/v1/family/residents/{resident}/summary")


async def test_family_of_resident_a_sees_a_and_never_b(client, world, clean_db):
    with db.connect(clean_db) as conn:
        accounts.add_user(conn, "family-bob", PASSWORD, "family", full_name="Berit Berg",
                          residents=[world.bob])
        conn.commit()
    for user, mine, other in (("family-alice", world.alice, world.bob),
                              ("family-bob", world.bob, world.alice)):
        headers = await login(client, user)
        listed = (await client.get(FAMILY_ROUTES[0], headers=headers)).json()
        assert [r["id"] for r in listed] == [mine]
        summary = FAMILY_ROUTES[1]
        ok = await client.get(summary.format(resident=mine), headers=headers)
        assert ok.status_code == 200, ok.text
        for unseen in (other, world.carol, 999_999):
            resp = await client.get(summary.format(resident=unseen), headers=headers)
            assert resp.status_code == 404, resp.text
            assert resp.json() == {"detail": "Resident not found"}

"""Staff, roster, family accounts, sessions, password change and TOTP through the API, on the
real database; with the role x route matrix of these routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dashboard.app import create_app
from kernel import db
from kernel.totp import code_at
from tests.support.dashboard import PASSWORD, SECRET, login
from tests.support.database import count

pytestmark = pytest.mark.anyio

API = "/api/v1"
NEW_PASSWORD = "quiet harbour lantern 42"


async def _admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await login(client, "admin")


async def test_admin_creates_a_care_worker_who_must_change_the_temporary_password(
        client, world):
    auth = await _admin(client)
    resp = await client.post(f"{API}/users", headers=auth, json={
        "username": "carer-new", "full_name": "Nina New", "role": "care_worker",
        "site_id": "north", "phone": "+86 138 0000 0000"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    temporary = body["temporary_password"]
    assert body["account"]["must_change_password"] is True
    token = (await client.post(f"{API}/auth/token", data={
        "username": "carer-new", "password": temporary})).json()
    assert token["must_change_password"] is True
    mine = {"Authorization": f"Bearer {token['access_token']}"}
    blocked = await client.get(f"{API}/alerts", headers=mine)
    assert blocked.status_code == 403
    assert blocked.headers["X-Account-Action"] == "password_change"
    assert (await client.get(f"{API}/me", headers=mine)).status_code == 200
    stream = await client.get(f"{API}/alerts/stream", headers=mine)
    assert stream.status_code == 403  # no live alerts either
    weak = await client.post(f"{API}/me/password", headers=mine, json={
        "current_password": temporary, "new_password": "password1234"})
    assert weak.status_code == 422
    wrong = await client.post(f"{API}/me/password", headers=mine, json={
        "current_password": "not it at all 99", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 400
    ok = await client.post(f"{API}/me/password", headers=mine, json={
        "current_password": temporary, "new_password": NEW_PASSWORD})
    assert ok.status_code == 204
    assert (await client.get(f"{API}/alerts", headers=mine)).status_code == 200


async def test_create_validates_fields_and_refuses_duplicates(client, world):
    auth = await _admin(client)
    for body in ({"username": "x y", "role": "care_worker", "site_id": "north"},
                 {"username": "nosite", "role": "care_worker"},
                 {"username": "fam", "role": "family"},
                 {"username": "bad", "role": "chief"},
                 {"username": "weak", "role": "admin", "password": "123456789012"}):
        resp = await client.post(f"{API}/users", headers=auth, json=body)
        assert resp.status_code == 422, body
    resp = await client.post(f"{API}/users", headers=auth, json={
        "username": "ADMIN", "role": "admin"})
    assert resp.status_code == 409


async def test_edit_deactivate_and_reset_password_end_sessions(client, world, clean_db):
    auth = await _admin(client)
    carer = await login(client, "care-north")
    resp = await client.patch(f"{API}/users/{world.care_north}", headers=auth,
                              json={"full_name": "Carl Carer", "phone": "123"})
    assert resp.json()["full_name"] == "Carl Carer"
    nulls = await client.patch(f"{API}/users/{world.care_north}", headers=auth,
                               json={"full_name": None, "role": None, "active": None,
                                     "phone": None})
    assert nulls.status_code == 200 and nulls.json()["phone"] is None
    no_site = await client.patch(f"{API}/users/{world.care_north}", headers=auth,
                                 json={"site_id": None})
    assert no_site.status_code == 422
    reset = await client.post(f"{API}/users/{world.care_north}/reset-password", headers=auth,
                              json={})
    temporary = reset.json()["temporary_password"]
    assert (await client.get(f"{API}/me", headers=carer)).status_code == 401
    carer = await login(client, "care-north", temporary)
    resp = await client.patch(f"{API}/users/{world.care_north}", headers=auth,
                              json={"active": False})
    assert resp.json()["active"] is False
    assert (await client.get(f"{API}/me", headers=carer)).status_code == 401
    own = await client.patch(f"{API}/users/{world.admin}", headers=auth, json={"active": False})
    assert own.status_code == 409


async def test_admin_sees_and_ends_sessions(client, world):
    auth = await _admin(client)
    first = await login(client, "care-north")
    second = await login(client, "care-north")
    sessions = (await client.get(f"{API}/users/{world.care_north}/sessions",
                                 headers=auth)).json()
    assert len(sessions) == 2 and all(s["live"] for s in sessions)
    newest = sessions[0]["id"]
    resp = await client.delete(f"{API}/users/{world.care_north}/sessions/{newest}",
                               headers=auth)
    assert resp.status_code == 204
    assert (await client.get(f"{API}/me", headers=second)).status_code == 401
    assert (await client.get(f"{API}/me", headers=first)).status_code == 200
    again = await client.delete(f"{API}/users/{world.care_north}/sessions/{newest}",
                                headers=auth)
    assert again.status_code == 404
    assert (await client.delete(f"{API}/users/{world.care_north}/sessions",
                                headers=auth)).status_code == 204
    assert (await client.get(f"{API}/me", headers=first)).status_code == 401


async def test_roster_decides_who_is_on_duty_at_an_instant_and_overrides_win(client, world):
    auth = await _admin(client)
    at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # site north is UTC
    resp = await client.post(f"{API}/sites/north/shifts", headers=auth, json={
        "user_id": world.care_north, "starts_local": "2026-03-02T08:00",
        "ends_local": "2026-03-02T20:00"})
    assert resp.status_code == 201, resp.text
    shift = resp.json()["id"]
    roster = (await client.get(f"{API}/sites/north/shifts", headers=auth,
                               params={"at": at.isoformat(), "from": "2026-03-02T00:00:00Z",
                                       "to": "2026-03-09T00:00:00Z"})).json()
    # duty-north has the seed's manual "on"; care-north is rostered
    assert roster["on_duty"] == sorted([world.duty_north, world.care_north])
    assert [s["id"] for s in roster["shifts"]] == [shift]
    later = (await client.get(f"{API}/sites/north/shifts", headers=auth,
                              params={"at": (at + timedelta(hours=11)).isoformat()})).json()
    assert world.care_north not in later["on_duty"]
    duty = await login(client, "duty-north")
    off = await client.put(f"{API}/users/{world.care_north}/duty-override", headers=duty,
                           json={"override": "off"})
    assert off.json()["duty_override"] == "off"
    roster = (await client.get(f"{API}/sites/north/shifts", headers=auth,
                               params={"at": at.isoformat()})).json()
    assert world.care_north not in roster["on_duty"]
    for bad in ({"user_id": world.duty_south, "starts_local": "2026-03-02T08:00",
                 "ends_local": "2026-03-02T20:00"},
                {"user_id": world.care_north, "starts_local": "2026-03-02T08:00",
                 "ends_local": "2026-03-02T07:00"},
                {"user_id": world.care_north, "starts_local": "2026-03-02T08:00+08:00",
                 "ends_local": "2026-03-02T20:00+08:00"}):
        refused = await client.post(f"{API}/sites/north/shifts", headers=auth, json=bad)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["loc"][0] == "body"  # placed next to a field
    # one person cannot be on two shifts at once (the trial's 10-14 then 12-16 was accepted)
    clash = await client.post(f"{API}/sites/north/shifts", headers=auth, json={
        "user_id": world.care_north, "starts_local": "2026-03-02T19:00",
        "ends_local": "2026-03-02T23:00"})
    assert clash.status_code == 409
    assert clash.json()["errors"][0]["loc"] == ["body", "starts_local"]
    assert "2026-03-02 08:00 – 2026-03-02 20:00" in clash.json()["detail"]
    after = await client.post(f"{API}/sites/north/shifts", headers=auth, json={
        "user_id": world.care_north, "starts_local": "2026-03-02T20:00",
        "ends_local": "2026-03-02T23:00"})
    assert after.status_code == 201  # back to back is fine
    assert (await client.delete(f"{API}/sites/north/shifts/{shift}",
                                headers=duty)).status_code == 204


async def test_family_invite_link_unlink(client, world, clean_db):
    auth = await _admin(client)
    resp = await client.post(f"{API}/users", headers=auth, json={
        "username": "son-bob", "role": "family", "residents": [world.bob]})
    son = resp.json()["account"]["id"]
    invite = (await client.post(f"{API}/users/{son}/invite", headers=auth)).json()
    assert invite["path"] == f"/invite#{invite['token']}"
    accepted = await client.post(f"{API}/auth/invite", json={
        "token": invite["token"], "password": NEW_PASSWORD})
    assert accepted.status_code == 204
    reused = await client.post(f"{API}/auth/invite", json={
        "token": invite["token"], "password": NEW_PASSWORD})
    assert reused.status_code == 400
    mine = await login(client, "son-bob", NEW_PASSWORD)
    assert (await client.get(f"{API}/residents/{world.alice}", headers=mine)).status_code == 404
    linked = await client.put(f"{API}/users/{son}/residents/{world.alice}", headers=auth)
    assert linked.json()["residents"] == sorted([world.alice, world.bob])
    assert (await client.get(f"{API}/residents/{world.alice}", headers=mine)).status_code == 200
    await client.delete(f"{API}/users/{son}/residents/{world.alice}", headers=auth)
    assert (await client.get(f"{API}/residents/{world.alice}", headers=mine)).status_code == 404
    assert count(clean_db, "SELECT count(*) FROM account_invites WHERE used_at IS NULL") == 0


async def test_totp_enrolment_then_login_needs_a_code_and_guesses_are_throttled(
        client, world):
    duty = await login(client, "duty-north")
    enrol = (await client.post(f"{API}/me/totp", headers=duty)).json()
    assert enrol["qr_data_uri"].startswith("data:image/svg+xml")
    now = datetime.now(UTC)  # the server checks codes against its clock
    ok = await client.post(f"{API}/me/totp/confirm", headers=duty,
                           json={"code": code_at(enrol["secret"], now)})
    assert ok.json() == {"totp_enabled": True}
    form = {"username": "duty-north", "password": PASSWORD}
    needs = await client.post(f"{API}/auth/token", data=form)
    assert needs.status_code == 401 and "code" in needs.json()["detail"]
    good = code_at(enrol["secret"], now + timedelta(seconds=30))
    resp = await client.post(f"{API}/auth/token", data={**form, "totp": good})
    assert resp.status_code == 200, resp.text
    replay = await client.post(f"{API}/auth/token", data={**form, "totp": good})
    assert replay.status_code == 401
    statuses = [(await client.post(f"{API}/auth/token", data={**form, "totp": "000000"})
                 ).status_code for _ in range(6)]
    assert statuses[-1] == 429


async def test_a_role_that_requires_totp_must_enrol_first(clean_db, world):
    app = create_app(clean_db, SECRET, totp_required_roles=frozenset({"duty_officer"}))
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://dashboard.test") as client):
        token = (await client.post(f"{API}/auth/token", data={
            "username": "duty-north", "password": PASSWORD})).json()
        assert token["totp_enrolment_required"] is True
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        blocked = await client.get(f"{API}/alerts", headers=auth)
        assert blocked.headers["X-Account-Action"] == "totp_enrolment"
        assert (await client.post(f"{API}/me/totp", headers=auth)).status_code == 200
        assert (await client.get(f"{API}/alerts", headers=await login(
            client, "care-north"))).status_code == 200


# --- on duty: roster and override (who may call which route: test_role_matrix.py) ---------


async def test_me_duty_is_the_roster_unless_overridden(client, world, clean_db):
    """GET /me/duty answers "now": a shift spanning a day either side of the test's start
    covers it whatever the clock says; going on duty is an override, going off hands back
    to the roster."""
    carer = await login(client, "care-north")
    assert (await client.get(f"{API}/me/duty", headers=carer)).json() == {"on_duty": False}
    start = datetime.now(UTC).replace(tzinfo=None)
    with db.connect(clean_db, autocommit=True) as conn:
        conn.execute("INSERT INTO shifts (site_id, user_id, starts_local, ends_local) "
                     "VALUES ('north', %s, %s, %s)",
                     (world.care_north, start - timedelta(hours=23),
                      start + timedelta(hours=23)))
    assert (await client.get(f"{API}/me/duty", headers=carer)).json() == {"on_duty": True}
    off = await client.put(f"{API}/me/duty", headers=carer, json={"on_duty": False})
    assert off.json() == {"on_duty": True}  # the roster still says so
    auth = await _admin(client)
    await client.put(f"{API}/users/{world.care_north}/duty-override", headers=auth,
                     json={"override": "off"})
    assert (await client.get(f"{API}/me/duty", headers=carer)).json() == {"on_duty": False}


async def test_sessions_and_invitations_carry_the_zone_their_times_are_shown_in(
        client, world, clean_db):
    """Issue 14: pages show times in the site's zone, so these answers say which zone: the
    account's site's, else a family member's resident's site's, else the one shared zone."""
    with db.connect(clean_db) as conn:
        conn.execute("UPDATE sites SET timezone = 'Asia/Shanghai' WHERE id = 'north'")
        conn.execute("UPDATE sites SET timezone = 'Europe/Berlin' WHERE id = 'south'")
        conn.commit()
    auth = await _admin(client)
    await login(client, "care-north")
    await login(client, "duty-south")
    north = (await client.get(f"{API}/users/{world.care_north}/sessions", headers=auth)).json()
    south = (await client.get(f"{API}/users/{world.duty_south}/sessions", headers=auth)).json()
    assert [s["site_timezone"] for s in north] == ["Asia/Shanghai"]
    assert [s["site_timezone"] for s in south] == ["Europe/Berlin"]
    # The administrator has no site and the sites disagree: UTC, not a guess.
    mine = (await client.get(f"{API}/users/{world.admin}/sessions", headers=auth)).json()
    assert {s["site_timezone"] for s in mine} == {"UTC"}
    resp = await client.post(f"{API}/users", headers=auth, json={
        "username": "son-bob", "role": "family", "residents": [world.bob]})
    son = resp.json()["account"]["id"]
    invite = (await client.post(f"{API}/users/{son}/invite", headers=auth)).json()
    assert invite["site_timezone"] == "Asia/Shanghai"  # Bob lives at north
    assert datetime.fromisoformat(invite["expires_at"]).utcoffset() == timedelta(0)


async def test_staff_phones_follow_the_one_phone_rule_of_the_ledger(client, world):
    """One rule for every phone number (dashboard.models.PhoneText): what the ledger refuses
    for a resident is refused for a carer too (the trial found "." allowed only here)."""
    auth = await _admin(client)
    bad = await client.patch(f"{API}/users/{world.care_north}", headers=auth,
                             json={"phone": "555.123"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["body", "phone"]
    good = await client.patch(f"{API}/users/{world.care_north}", headers=auth,
                              json={"phone": "+86 (138) 0000-0000"})
    assert good.status_code == 200, good.text

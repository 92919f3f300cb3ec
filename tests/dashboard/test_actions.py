"""Alert actions (acknowledge, resolve), the duty toggle and the VAPID key, on the real DB."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest

from alerts.lifecycle import ActionResult
from alerts.model import RESOLVE_OUTCOMES, AlertStatus
from dashboard.actions import conflict_message, local_time
from tests.support.api import API, add_alert, detail, headers
from tests.support.dashboard import login
from tests.support.database import count, query_one

pytestmark = pytest.mark.anyio

HHMM = r"(\d{4}-\d\d-\d\d )?\d\d:\d\d"


def ack_path(alert_id: int) -> str:
    return f"{API}/alerts/{alert_id}/ack"


def resolve_path(alert_id: int) -> str:
    return f"{API}/alerts/{alert_id}/resolve"


# --- acknowledge ----------------------------------------------------------------------


async def test_ack_returns_the_updated_alert(client, world):
    auth = await login(client, "duty-north")
    resp = await client.post(ack_path(world.sos_alice), headers=auth)
    assert resp.status_code == 200, resp.text
    alert = resp.json()
    assert alert["id"] == world.sos_alice
    assert alert["status"] == "acknowledged"
    assert alert["acknowledged_by"] == world.duty_north
    assert alert["acknowledged_at"] is not None
    assert "history" in alert and "details" in alert  # same shape as GET /alerts/{id}
    assert (await client.get(f"{API}/alerts/{world.sos_alice}", headers=auth)
            ).json()["status"] == "acknowledged"


async def test_ack_with_a_note_is_accepted(client, world):
    auth = await login(client, "care-north")
    resp = await client.post(ack_path(world.sos_alice), headers=auth,
                             json={"note": "  On my way  "})
    assert resp.status_code == 200, resp.text
    alert = resp.json()
    assert alert["acknowledged_by"] == world.care_north
    assert [(h["action"], h["actor_id"], h["note"]) for h in alert["history"]] == [
        ("acknowledged", world.care_north, "On my way")]


async def test_concurrent_acks_have_exactly_one_winner(client, world, clean_db):
    auth = await headers(client, "duty-north", "care-north")
    names = {world.duty_north: "Dora Duty", world.care_north: "Carl Care"}
    for round_ in range(5):
        alert_id = add_alert(clean_db, world.bob, "north", f"race_{round_}")
        first, second = await asyncio.gather(
            client.post(ack_path(alert_id), headers=auth["duty-north"]),
            client.post(ack_path(alert_id), headers=auth["care-north"]))
        assert sorted([first.status_code, second.status_code]) == [200, 409], (
            first.text, second.text)
        winner, loser = (first, second) if first.status_code == 200 else (second, first)
        winner_id = winner.json()["acknowledged_by"]
        conflict = loser.json()
        assert conflict["status"] == "acknowledged"
        assert conflict["by_user_id"] == winner_id
        assert conflict["by"] == names[winner_id]
        assert re.fullmatch(rf"Already acknowledged by {names[winner_id]} at {HHMM}",
                            conflict["detail"]), conflict["detail"]
        row = query_one(clean_db, "SELECT status, acknowledged_by FROM alerts WHERE id = %s",
                        alert_id)
        assert row == ("acknowledged", winner_id)


async def test_acking_twice_yourself_answers_409_saying_so(client, world):
    auth = await login(client, "duty-north")
    assert (await client.post(ack_path(world.sos_alice), headers=auth)).status_code == 200
    resp = await client.post(ack_path(world.sos_alice), headers=auth)
    assert resp.status_code == 409
    assert re.fullmatch(rf"You already acknowledged this alert at {HHMM}", detail(resp))


async def test_ack_of_a_finished_alert_answers_409(client, world):
    resp = await client.post(ack_path(world.fall_bob), headers=await login(client, "care-north"))
    assert resp.status_code == 409
    assert resp.json()["status"] == "resolved"
    assert detail(resp).startswith("Already resolved")


async def test_out_of_scope_or_missing_alert_answers_404(client, world):
    auth = await headers(client, "care-north", "duty-south")
    for user, alert_id in (("care-north", world.sos_carol), ("duty-south", world.sos_alice),
                           ("care-north", 999_999)):
        for path, body in ((ack_path(alert_id), None),
                           (resolve_path(alert_id), {"outcome": "false_alarm"})):
            resp = await client.post(path, headers=auth[user], json=body)
            assert resp.status_code == 404, (user, path, resp.text)
            assert detail(resp) == "Alert not found"


async def test_family_is_read_only(client, world, clean_db):
    auth = await login(client, "family-alice")
    for path, body in ((ack_path(world.sos_alice), None),
                       (resolve_path(world.sos_alice), {"outcome": "false_alarm"})):
        resp = await client.post(path, headers=auth, json=body)
        assert resp.status_code == 403
        assert "cannot acknowledge or resolve" in detail(resp)
    assert query_one(clean_db, "SELECT status FROM alerts WHERE id = %s",
                     world.sos_alice) == ("open",)


async def test_admin_acts_on_every_site(client, world):
    resp = await client.post(ack_path(world.sos_carol), headers=await login(client, "admin"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["acknowledged_by"] == world.admin


async def test_ack_note_too_long_is_422(client, world):
    resp = await client.post(ack_path(world.sos_alice), headers=await login(client, "care-north"),
                             json={"note": "x" * 2001})
    assert resp.status_code == 422
    assert "'note'" in detail(resp) and "2000" in detail(resp)


# --- resolve ----------------------------------------------------------------------------


async def test_resolve_with_each_outcome(client, world, clean_db):
    auth = await login(client, "duty-north")
    for outcome in RESOLVE_OUTCOMES:
        alert_id = add_alert(clean_db, world.bob, "north", f"resolve_{outcome.value}")
        resp = await client.post(resolve_path(alert_id), headers=auth,
                                 json={"outcome": outcome.value, "note": f"Done: {outcome}"})
        assert resp.status_code == 200, (outcome, resp.text)
        alert = resp.json()
        assert alert["status"] == "resolved"
        assert alert["outcome"] == outcome.value
        assert alert["resolved_by"] == world.duty_north
        assert alert["resolved_at"] is not None


async def test_resolving_an_open_alert_acknowledges_it_on_the_way(client, world):
    resp = await client.post(resolve_path(world.sos_alice),
                             headers=await login(client, "care-north"),
                             json={"outcome": "assisted_at_home"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["acknowledged_by"] == world.care_north


async def test_resolve_other_needs_a_note(client, world):
    auth = await login(client, "duty-north")
    for body in ({"outcome": "other"}, {"outcome": "other", "note": "   "},
                 {"outcome": "other", "note": None}):
        resp = await client.post(resolve_path(world.sos_alice), headers=auth, json=body)
        assert resp.status_code == 422, body
        assert "'note'" in detail(resp)
        assert "a note is required when the outcome is 'other'" in detail(resp)
    resp = await client.post(resolve_path(world.sos_alice), headers=auth,
                             json={"outcome": "other", "note": "Neighbour helped"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["outcome"] == "other"


async def test_bad_or_missing_outcome_is_a_readable_422(client, world):
    auth = await login(client, "duty-north")
    for body in ({"outcome": "exploded"}, {"outcome": "cancelled_by_resident"}, {}, None,
                 {"outcome": "false_alarm", "extra": 1},
                 {"outcome": "false_alarm", "note": "x" * 2001}):
        resp = await client.post(resolve_path(world.sos_alice), headers=auth, json=body)
        assert resp.status_code == 422, body
        assert detail(resp).startswith("Invalid request: ")
    resp = await client.post(resolve_path(world.sos_alice), headers=auth,
                             json={"outcome": "exploded"})
    assert "form field 'outcome'" in detail(resp)
    assert ("choose one of false_alarm, assisted_at_home, ambulance_called, hospital, other"
            in detail(resp))
    assert "exploded" not in detail(resp)  # body input is never echoed


async def test_resolve_twice_answers_409(client, world):
    auth = await headers(client, "duty-north", "care-north")
    first = await client.post(resolve_path(world.sos_alice), headers=auth["duty-north"],
                              json={"outcome": "false_alarm"})
    assert first.status_code == 200, first.text
    again = await client.post(resolve_path(world.sos_alice), headers=auth["care-north"],
                              json={"outcome": "hospital"})
    assert again.status_code == 409
    assert re.fullmatch(rf"Already resolved by Dora Duty at {HHMM}", detail(again))
    assert again.json()["status"] == "resolved"


async def test_resolving_a_cancelled_alert_answers_409(client, world, clean_db):
    alert_id = add_alert(clean_db, world.alice, "north", "sos_cancelled", status="cancelled",
                         outcome="cancelled_by_resident", cancelled_at=datetime.now(UTC))
    resp = await client.post(resolve_path(alert_id), headers=await login(client, "duty-north"),
                             json={"outcome": "false_alarm"})
    assert resp.status_code == 409
    assert resp.json()["status"] == "cancelled"
    assert re.fullmatch(rf"Already cancelled by the resident at {HHMM}", detail(resp))


# --- conflict wording (pure) ------------------------------------------------------------


def _result(status: AlertStatus, by: int | None = 7, message: str = "") -> ActionResult:
    return ActionResult(ok=False, alert_id=1, status=status, by_user_id=by,
                        at=datetime(2026, 1, 5, 2, 12, tzinfo=UTC), message=message)


def test_conflict_message_wording():
    assert (conflict_message(_result(AlertStatus.ACKNOWLEDGED), "Dana Duty", False, "03:12")
            == "Already acknowledged by Dana Duty at 03:12")
    assert (conflict_message(_result(AlertStatus.RESOLVED), "Dana Duty", True, "03:12")
            == "You already resolved this alert at 03:12")
    assert (conflict_message(_result(AlertStatus.CANCELLED, None), None, False, None)
            == "Already cancelled by the resident")
    assert conflict_message(_result(AlertStatus.OPEN, message="busy"), None, False,
                            None) == "busy"


def test_local_time_uses_the_site_zone_and_adds_the_date_on_other_days():
    at = datetime(2026, 1, 5, 2, 12, tzinfo=UTC)
    assert local_time(at, "Europe/Oslo", at + timedelta(minutes=5)) == "03:12"
    assert local_time(at, "Europe/Oslo", at + timedelta(days=2)) == "2026-01-05 03:12"
    assert local_time(at, "No/Such_Zone", at) == "02:12 UTC"  # the fallback is said
    assert local_time(at, None, at) == "02:12"


# --- duty -------------------------------------------------------------------------------


async def test_care_worker_goes_on_and_off_duty(client, world, clean_db):
    auth = await login(client, "care-north")
    assert (await client.get(f"{API}/me/duty", headers=auth)).json() == {"on_duty": False}
    for value in (True, False, True):
        resp = await client.put(f"{API}/me/duty", headers=auth, json={"on_duty": value})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"on_duty": value}
        assert query_one(clean_db, "SELECT on_duty FROM users WHERE id = %s",
                         world.care_north) == (value,)
    assert (await client.get(f"{API}/me/duty", headers=auth)).json() == {"on_duty": True}


async def test_duty_officer_may_toggle_duty(client, world):
    resp = await client.put(f"{API}/me/duty", headers=await login(client, "duty-north"),
                            json={"on_duty": False})
    assert resp.status_code == 200
    assert resp.json() == {"on_duty": False}


async def test_admin_and_family_cannot_toggle_duty(client, world):
    for user in ("admin", "family-alice"):
        resp = await client.put(f"{API}/me/duty", headers=await login(client, user),
                                json={"on_duty": True})
        assert resp.status_code == 403
        assert detail(resp) == "Only care workers and duty officers go on or off duty"


async def test_duty_body_must_be_a_boolean(client, world):
    auth = await login(client, "care-north")
    for body in ({"on_duty": "yes"}, {}, {"on_duty": 1}):
        resp = await client.put(f"{API}/me/duty", headers=auth, json=body)
        assert resp.status_code == 422, body
        assert "'on_duty'" in detail(resp)


# --- VAPID key and authentication --------------------------------------------------------


async def test_vapid_key_is_made_once_and_shared(client, world, clean_db):
    auth = await login(client, "family-alice")
    first = await client.get(f"{API}/push/vapid-public-key", headers=auth)
    assert first.status_code == 200
    key = first.json()["public_key"]
    # An uncompressed P-256 point, base64url without padding: 65 bytes -> 87 characters.
    assert len(key) == 87 and "=" not in key and key.startswith("B")
    again = await client.get(f"{API}/push/vapid-public-key", headers=auth)
    assert again.json() == {"public_key": key}
    assert count(clean_db, "SELECT count(*) FROM platform_keys") == 2  # private + public

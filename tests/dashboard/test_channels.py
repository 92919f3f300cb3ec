"""Notification channels: a person's own and a site's group chats, on the real DB."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.model import ChannelKind
from dashboard.channels.models import mask_target
from dashboard.channels.store import MAX_CHANNELS
from tests.support.api import API, detail, headers, push_subscription
from tests.support.dashboard import login
from tests.support.database import execute, query_one

pytestmark = pytest.mark.anyio

MINE = f"{API}/me/channels"
EMAIL = {"kind": "email", "target": "anna@example.com"}
WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DINGTALK_URL = "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef0123456789abcdef"


def site_path(site: str) -> str:
    return f"{API}/sites/{site}/channels"


async def post(client, auth, body: dict[str, Any], path: str = MINE, expect: int = 201
               ) -> dict[str, Any]:
    resp = await client.post(path, headers=auth, json=body)
    assert resp.status_code == expect, resp.text
    body_out: dict[str, Any] = resp.json()
    return body_out


# --- personal channels ------------------------------------------------------------------


async def test_family_adds_an_email_channel_with_family_defaults(client, world, clean_db):
    execute(clean_db, "UPDATE sites SET timezone = 'Europe/Oslo' WHERE id = 'north'")
    auth = await login(client, "family-alice")
    channel = await post(client, auth, EMAIL)
    assert channel["kind"] == "email"
    assert channel["target"] == "anna@example.com"
    assert channel["min_severity"] == "high"
    assert channel["timezone"] == "Europe/Oslo"  # the site of her resident
    assert channel["quiet_start"] is None and channel["quiet_end"] is None
    assert channel["active"] is True and channel["has_secret"] is False
    assert (await client.get(MINE, headers=auth)).json() == [channel]


async def test_staff_default_to_every_severity(client, world):
    channel = await post(client, await login(client, "care-north"), EMAIL)
    assert channel["min_severity"] == "info"
    assert channel["timezone"] == "UTC"


async def test_choices_are_stored(client, world, clean_db):
    channel = await post(client, await login(client, "family-alice"), {
        **EMAIL, "min_severity": "critical", "quiet_start": "22:00", "quiet_end": "07:30",
        "timezone": "Asia/Shanghai", "active": False})
    assert (channel["min_severity"], channel["quiet_start"], channel["quiet_end"],
            channel["timezone"], channel["active"]) == (
        "critical", "22:00", "07:30", "Asia/Shanghai", False)
    row = query_one(clean_db, "SELECT user_id, site_id, quiet_start::text, quiet_end::text "
                              "FROM notification_channels WHERE id = %s", channel["id"])
    assert row == (world.family_alice, None, "22:00:00", "07:30:00")


async def test_reposting_the_same_kind_and_target_updates(client, world, clean_db):
    auth = await login(client, "family-alice")
    first = await post(client, auth, EMAIL)
    again = await post(client, auth, {**EMAIL, "min_severity": "urgent"}, expect=200)
    assert again["id"] == first["id"]
    assert again["min_severity"] == "urgent"
    assert len((await client.get(MINE, headers=auth)).json()) == 1
    assert query_one(clean_db, "SELECT count(*) FROM notification_channels") == (1,)


async def test_webpush_subscription_keys_are_stored_but_never_returned(client, world, clean_db):
    auth = await login(client, "care-north")
    sub = push_subscription()
    resp = await client.post(MINE, headers=auth, json={"kind": "webpush", "subscription": sub})
    assert resp.status_code == 201, resp.text
    channel = resp.json()
    assert channel["target"] == sub["endpoint"]
    assert channel["has_secret"] is True
    for key in sub["keys"].values():
        assert key not in resp.text
        assert key not in (await client.get(MINE, headers=auth)).text
    row = query_one(clean_db, "SELECT secret FROM notification_channels WHERE id = %s",
                    channel["id"])
    assert row == (sub["keys"],)


async def test_a_push_endpoint_registered_by_another_account_is_refused(client, world,
                                                                        clean_db):
    auth = await headers(client, "care-north", "duty-north", "family-alice")
    sub = push_subscription()
    mine = await post(client, auth["care-north"], {"kind": "webpush", "subscription": sub})
    stolen = {**sub, "keys": push_subscription()["keys"]}  # the attacker's own keys
    for other in ("duty-north", "family-alice"):
        resp = await client.post(MINE, headers=auth[other],
                                 json={"kind": "webpush", "subscription": stolen})
        assert resp.status_code == 409, resp.text
        assert detail(resp).startswith("Another account has registered")
        assert (await client.get(MINE, headers=auth[other])).json() == []
    # The owner's channel is untouched: same row, same keys.
    assert (await client.get(MINE, headers=auth["care-north"])).json() == [mine]
    assert query_one(clean_db, "SELECT user_id, secret FROM notification_channels") == (
        world.care_north, sub["keys"])
    # The owner may register it again (new keys from the same browser update the row).
    again = await post(client, auth["care-north"], {"kind": "webpush", "subscription": stolen},
                       expect=200)
    assert again["id"] == mine["id"]


async def test_a_push_endpoint_freed_by_its_owner_can_be_registered(client, world):
    auth = await headers(client, "care-north", "duty-north")
    sub = push_subscription()
    mine = await post(client, auth["care-north"], {"kind": "webpush", "subscription": sub})
    resp = await client.delete(f"{MINE}/{mine['id']}", headers=auth["care-north"])
    assert resp.status_code == 204
    await post(client, auth["duty-north"], {"kind": "webpush", "subscription": sub})


async def test_dingtalk_secret_is_never_returned_and_robot_urls_are_masked(client, world):
    auth = await login(client, "duty-north")
    resp = await client.post(MINE, headers=auth, json={
        "kind": "dingtalk", "target": DINGTALK_URL, "secret": "SECverysecretsigningkey"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["has_secret"] is True
    assert resp.json()["target"] == "https://oapi.dingtalk.com/robot/send?access_token=***cdef"
    listed = (await client.get(MINE, headers=auth)).text
    for text in (resp.text, listed):
        assert "SECverysecretsigningkey" not in text
        assert "0123456789abcdef0123" not in text


def test_mask_target_leaves_addresses_and_plain_urls_alone():
    assert mask_target(ChannelKind.EMAIL, "a@b.example") == "a@b.example"
    assert mask_target(ChannelKind.WEBHOOK, "https://h.example/hook") == "https://h.example/hook"
    assert mask_target(ChannelKind.WECOM, WECOM_URL) == (
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***5aaa")
    assert mask_target(ChannelKind.WEBHOOK, "https://h.example/?a=short&b=") == (
        "https://h.example/?a=***&b=***")


async def test_webhook_may_carry_a_signing_secret(client, world, clean_db):
    channel = await post(client, await login(client, "care-north"),
                         {"kind": "webhook", "target": "https://h.example/x", "secret": "k3y"})
    assert channel["has_secret"] is True
    assert query_one(clean_db, "SELECT secret FROM notification_channels WHERE id = %s",
                     channel["id"]) == ({"secret": "k3y"},)


async def test_webhook_on_localhost_may_use_http(client, world):
    auth = await login(client, "care-north")
    for url in ("http://127.0.0.1:8099/hook", "http://localhost/hook", "https://h.example/x"):
        await post(client, auth, {"kind": "webhook", "target": url})


@pytest.mark.parametrize(("body", "where", "message"), [
    ({**EMAIL, "timezone": "Mars/Olympus_Mons"}, "form field 'timezone'",
     "unknown time zone 'Mars/Olympus_Mons'"),
    ({**EMAIL, "quiet_start": "22:00"}, "form field 'quiet_end'",
     "quiet hours need both quiet_start and quiet_end"),
    ({**EMAIL, "quiet_end": "07:00"}, "form field 'quiet_end'",
     "quiet hours need both quiet_start and quiet_end"),
    ({**EMAIL, "quiet_start": "25:00", "quiet_end": "07:00"}, "form field 'quiet_start'",
     "use a 24-hour time HH:MM"),
    ({**EMAIL, "quiet_start": "07:00", "quiet_end": "07:00"}, "form field 'quiet_end'",
     "must differ"),
    ({"kind": "webhook", "target": "http://hooks.example.com/x"}, "form field 'target'",
     "must start with https://"),
    ({"kind": "wecom", "target": "ftp://127.0.0.1/x"}, "form field 'target'",
     "must start with https://"),
    ({"kind": "webhook", "target": "https://user:pw@hooks.example.com/x"}, "form field 'target'",
     "must not contain a user name or password"),
    ({"kind": "webhook"}, "form field 'target'", "a webhook channel needs an https:// URL"),
    ({"kind": "webhook", "target": "https://straße.example/x"}, "form field 'target'",
     "the URL has a non-ASCII host name: use its xn-- (punycode) form"),
    ({"kind": "webpush", "subscription": {**push_subscription(),
                                          "endpoint": "https://10.0.0.5\\x.push.example/p"}},
     "form field 'subscription.endpoint'", "the URL contains a backslash"),
    ({"kind": "email", "target": "not-an-address"}, "form field 'target'",
     "not a valid e-mail address"),
    ({"kind": "email", "target": "a@b"}, "form field 'target'", "not a valid e-mail address"),
    ({"kind": "mqtt", "target": "x"}, "form field 'kind'",
     "choose one of webpush, email, webhook, wecom, dingtalk"),
    ({**EMAIL, "secret": "s"}, "form field 'secret'",
     "only dingtalk and webhook channels take a signing secret"),
    ({"kind": "wecom", "target": WECOM_URL, "secret": "s"}, "form field 'secret'",
     "only dingtalk and webhook channels take a signing secret"),
    ({**EMAIL, "min_severity": "loud"}, "form field 'min_severity'", "'critical'"),
    ({"kind": "webpush"}, "form field 'subscription'", "needs the browser's PushSubscription"),
    ({"kind": "webpush", "subscription": {**push_subscription(), "endpoint": "http://x.example/"}},
     "form field 'subscription.endpoint'", "must start with https://"),
    ({"kind": "webpush", "subscription": {**push_subscription(), "keys": {"p256dh": "AAAA",
                                                                           "auth": "AAAA"}}},
     "form field 'subscription.keys.p256dh'", "must encode 65 bytes"),
    ({**EMAIL, "subscription": push_subscription()}, "form field 'subscription'",
     "only webpush channels take a subscription"),
    ({**EMAIL, "colour": "red"}, "form field 'colour'", "is not a field of this form"),
])
async def test_invalid_channels_get_a_readable_422(client, world, body, where, message):
    resp = await client.post(MINE, headers=await login(client, "family-alice"), json=body)
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith("Invalid request: ")
    assert where in detail(resp), detail(resp)
    assert message in detail(resp), detail(resp)


async def test_patch_changes_only_what_is_sent(client, world):
    auth = await login(client, "family-alice")
    channel = await post(client, auth, {**EMAIL, "quiet_start": "22:00", "quiet_end": "07:00"})
    resp = await client.patch(f"{MINE}/{channel['id']}", headers=auth,
                              json={"min_severity": "warning", "active": False})
    assert resp.status_code == 200, resp.text
    changed = resp.json()
    assert (changed["min_severity"], changed["active"]) == ("warning", False)
    assert (changed["quiet_start"], changed["quiet_end"]) == ("22:00", "07:00")
    resp = await client.patch(f"{MINE}/{channel['id']}", headers=auth,
                              json={"quiet_start": None, "quiet_end": None,
                                    "timezone": "America/New_York"})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["quiet_start"], resp.json()["timezone"]) == (None, "America/New_York")
    resp = await client.patch(f"{MINE}/{channel['id']}", headers=auth, json={})
    assert resp.status_code == 200
    assert resp.json()["min_severity"] == "warning"


async def test_patch_validation(client, world):
    auth = await login(client, "family-alice")
    channel = await post(client, auth, EMAIL)
    for body, message in (
            ({"quiet_start": "22:00"}, "send quiet_start and quiet_end together"),
            ({"quiet_start": "22:00", "quiet_end": None}, "quiet hours need both"),
            ({"timezone": "Nowhere/Town"}, "unknown time zone"),
            ({"secret": "SECabc"}, "only dingtalk and webhook channels take a signing secret"),
            ({"kind": "webhook"}, "is not a field of this form"),
            ({"target": "x@y.example"}, "is not a field of this form")):
        resp = await client.patch(f"{MINE}/{channel['id']}", headers=auth, json=body)
        assert resp.status_code == 422, body
        assert message in detail(resp), detail(resp)


async def test_patch_dingtalk_secret_set_and_removed(client, world, clean_db):
    auth = await login(client, "duty-north")
    channel = await post(client, auth, {"kind": "dingtalk", "target": DINGTALK_URL})
    assert channel["has_secret"] is False
    resp = await client.patch(f"{MINE}/{channel['id']}", headers=auth, json={"secret": "SECx"})
    assert resp.json()["has_secret"] is True
    assert "SECx" not in resp.text
    assert query_one(clean_db, "SELECT secret FROM notification_channels WHERE id = %s",
                     channel["id"]) == ({"secret": "SECx"},)
    resp = await client.patch(f"{MINE}/{channel['id']}", headers=auth, json={"secret": None})
    assert resp.json()["has_secret"] is False


async def test_delete_own_channel(client, world):
    auth = await login(client, "family-alice")
    channel = await post(client, auth, EMAIL)
    resp = await client.delete(f"{MINE}/{channel['id']}", headers=auth)
    assert resp.status_code == 204
    assert (await client.get(MINE, headers=auth)).json() == []
    resp = await client.delete(f"{MINE}/{channel['id']}", headers=auth)
    assert resp.status_code == 404


async def test_another_users_channel_is_404(client, world, clean_db):
    auth = await headers(client, "family-alice", "care-north", "admin")
    channel = await post(client, auth["family-alice"], EMAIL)
    path = f"{MINE}/{channel['id']}"
    for user in ("care-north", "admin"):
        assert (await client.get(MINE, headers=auth[user])).json() == []
        resp = await client.patch(path, headers=auth[user], json={"active": False})
        assert resp.status_code == 404
        assert detail(resp) == "Channel not found"
        assert (await client.delete(path, headers=auth[user])).status_code == 404
    assert query_one(clean_db, "SELECT active FROM notification_channels WHERE id = %s",
                     channel["id"]) == (True,)


async def test_too_many_channels_is_409(client, world):
    auth = await login(client, "family-alice")
    for n in range(MAX_CHANNELS):
        await post(client, auth, {"kind": "email", "target": f"anna{n}@example.com"})
    await post(client, auth, {"kind": "email", "target": "anna0@example.com"}, expect=200)
    resp = await client.post(MINE, headers=auth,
                             json={"kind": "email", "target": "one-more@example.com"})
    assert resp.status_code == 409
    assert f"At most {MAX_CHANNELS}" in detail(resp)


# --- site group channels ----------------------------------------------------------------


async def test_admin_and_the_sites_duty_officer_manage_site_channels(client, world, clean_db):
    auth = await headers(client, "admin", "duty-north")
    by_admin = await post(client, auth["admin"], {"kind": "wecom", "target": WECOM_URL},
                          path=site_path("north"))
    assert by_admin["site_id"] == "north"
    assert by_admin["min_severity"] == "info"
    assert "693a91f6" not in by_admin["target"]
    by_duty = await post(client, auth["duty-north"], {
        "kind": "dingtalk", "target": DINGTALK_URL, "secret": "SECsite",
        "min_severity": "urgent"}, path=site_path("north"))
    resp = await client.get(site_path("north"), headers=auth["duty-north"])
    assert resp.status_code == 200
    assert [c["id"] for c in resp.json()] == [by_admin["id"], by_duty["id"]]
    assert "SECsite" not in resp.text
    # site channels are not anyone's personal channels
    assert (await client.get(MINE, headers=auth["duty-north"])).json() == []
    resp = await client.delete(f"{site_path('north')}/{by_admin['id']}",
                               headers=auth["duty-north"])
    assert resp.status_code == 204
    assert query_one(clean_db, "SELECT count(*) FROM notification_channels "
                               "WHERE site_id = 'north'") == (1,)


async def test_site_channels_are_refused_to_everyone_else(client, world):
    auth = await headers(client, "duty-south", "care-north", "family-alice")
    body = {"kind": "webhook", "target": "https://hooks.example.com/x"}
    for user in ("duty-south", "care-north", "family-alice"):
        for method, path, json in (("GET", site_path("north"), None),
                                   ("POST", site_path("north"), body),
                                   ("DELETE", f"{site_path('north')}/1", None)):
            resp = await client.request(method, path, headers=auth[user], json=json)
            assert resp.status_code == 403, (user, method, resp.text)
    resp = await client.get(site_path("north"), headers=auth["duty-south"])
    assert "outside your access" in detail(resp)
    resp = await client.get(site_path("north"), headers=auth["care-north"])
    assert detail(resp) == ("Only an administrator or the site's duty officer can manage "
                            "site channels")


async def test_site_channel_kinds_and_unknown_sites(client, world):
    auth = await login(client, "admin")
    resp = await client.post(site_path("north"), headers=auth, json=EMAIL)
    assert resp.status_code == 422
    assert "choose one of webhook, wecom, dingtalk" in detail(resp)
    resp = await client.get(site_path("atlantis"), headers=auth)
    assert resp.status_code == 404
    assert detail(resp) == "Site not found"
    resp = await client.get(site_path("Bad_Site"), headers=auth)
    assert resp.status_code == 422


async def test_a_channel_of_another_site_cannot_be_deleted_through_yours(client, world):
    auth = await headers(client, "admin", "duty-north")
    south = await post(client, auth["admin"], {"kind": "webhook",
                                               "target": "https://hooks.example.com/s"},
                       path=site_path("south"))
    resp = await client.delete(f"{site_path('north')}/{south['id']}", headers=auth["duty-north"])
    assert resp.status_code == 404
    resp = await client.get(site_path("south"), headers=auth["admin"])
    assert [c["id"] for c in resp.json()] == [south["id"]]


async def test_family_may_not_register_webhooks(client, world):
    auth = await login(client, "family-alice")
    for kind in ("webhook", "wecom", "dingtalk"):
        resp = await client.post(MINE, headers=auth, json={
            "kind": kind, "target": "https://example.org/hook?key=abc"})
        assert resp.status_code == 403
        assert "e-mail or on their phone" in resp.json()["detail"]

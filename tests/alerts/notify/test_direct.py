"""The database-down path: cached site channels, sent at once without the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, time

import httpx

from alerts.bus import AlertEvent
from alerts.model import ChannelKind, Severity
from alerts.notify.channels.robots import WeComSender
from alerts.notify.direct import ChannelSpec, DirectNotifier, load_site_channels, send_direct
from kernel import db
from tests.alerts.notify.seed import add_channel, add_user, seed_world, sql

NOW = datetime(2026, 3, 5, 23, 30, tzinfo=UTC)


def event(severity=Severity.CRITICAL, type_="sos") -> AlertEvent:
    return AlertEvent(uid="u-1", action="raised", site="north", resident_id=7,
                      device_id="btn-1", type=type_, severity=severity, at=NOW,
                      emitted_at=NOW)


def test_load_site_channels_groups_active_group_channels(world):
    south = seed_world(world.url, site="south")
    wecom = add_channel(world, "wecom", "k1", site=True)
    ding = add_channel(world, "dingtalk", "t1", site=True, secret={"secret": "SECx"})
    add_channel(world, "webhook", "http://127.0.0.1:9/x", site=True, active=False)
    other = add_channel(south, "wecom", "k2", site=True)
    user = add_user(world, "w", "care_worker", on_duty=True)
    add_channel(world, "email", "w@example.org", user_id=user)  # a person's, not a group's
    with db.connect(world.url, autocommit=True) as conn:
        cached = load_site_channels(conn)
    assert {s: [c.id for c in chans] for s, chans in cached.items()} == {
        "north": [wecom, ding], "south": [other]}
    assert cached["north"][1].secret == {"secret": "SECx"}


def test_send_direct_reaches_every_group_channel(receiver, settings):
    channels = [
        ChannelSpec(1, ChannelKind.WECOM, receiver.wecom_key, timezone="Asia/Shanghai"),
        ChannelSpec(2, ChannelKind.DINGTALK, receiver.dingtalk_token,
                    secret={"secret": receiver.dingtalk_secret}),
        ChannelSpec(3, ChannelKind.WEBHOOK, receiver.url("/hook")),
    ]
    assert send_direct(channels, event(), settings, resident_name="Margaret Smith") == 3
    content = receiver.received("/wecom")[0].json()["text"]["content"]
    assert "Margaret Smith" in content and "07:30" in content  # Shanghai time
    assert "database is unavailable" in content
    assert len(receiver.received("/dingtalk")) == 1
    assert receiver.received("/hook")[0].json()["data"]["direct"] is True


def test_send_direct_filters_and_survives_failures(receiver, settings, caplog):
    quiet = (time(22, 0), time(7, 0))
    channels = [
        ChannelSpec(1, ChannelKind.WECOM, "wrong-key"),  # fails: logged, not raised
        ChannelSpec(2, ChannelKind.WEBHOOK, receiver.url("/hook")),
        ChannelSpec(3, ChannelKind.WEBHOOK, receiver.url("/critical-only"),
                    min_severity=Severity.CRITICAL),
        ChannelSpec(4, ChannelKind.WEBHOOK, receiver.url("/quiet"), quiet_start=quiet[0],
                    quiet_end=quiet[1]),
        ChannelSpec(5, ChannelKind.WEBPUSH, receiver.url("/push/x")),  # needs the database
    ]
    assert send_direct(channels, event(Severity.HIGH, "not_up"), settings, now=NOW) == 1
    assert "errcode 93000" in caplog.text
    assert [len(receiver.received(p)) for p in ("/hook", "/critical-only", "/quiet")] == [
        1, 0, 0]


def test_send_direct_with_given_senders(receiver, settings):
    with httpx.Client(timeout=2) as http:
        senders = {ChannelKind.WECOM: WeComSender(http, receiver.url("/wecom"))}
        channels = [ChannelSpec(1, ChannelKind.WECOM, receiver.wecom_key)]
        assert send_direct(channels, event(), settings, senders=senders) == 1


def test_send_direct_keys_each_alert_and_channel_stably(receiver, settings):
    channels = [ChannelSpec(1, ChannelKind.WEBHOOK, receiver.url("/hook")),
                ChannelSpec(2, ChannelKind.WEBHOOK, receiver.url("/hook"))]
    send_direct(channels, event(), settings)
    send_direct(channels, event(), settings)  # the same alert again (a repeat)
    other = event().model_copy(update={"uid": "u-2"})
    send_direct(channels[:1], other, settings)
    keys = [r.json()["idempotency_key"] for r in receiver.received("/hook")]
    assert keys[0:2] == keys[2:4]  # the same alert and channel: the same key
    assert len(set(keys)) == 3  # another channel or another alert: another key
    headers = [r.headers["idempotency-key"] for r in receiver.received("/hook")]
    assert headers == [f'"{k}"' for k in keys]


def test_the_direct_path_writes_in_the_sites_language_cached_while_the_database_was_up(
        world, receiver, settings):
    """A site's group robot reads the site's language (sites.language) on this path too: it
    is cached with the channels, since the database is down when the message goes."""
    sql(world.url, "UPDATE sites SET language = 'zh-CN' WHERE id = %s", world.site)
    add_channel(world, "wecom", receiver.wecom_key, site=True, tz="Asia/Shanghai")
    notifier = DirectNotifier(settings)
    with db.connect(world.url, autocommit=True) as conn:
        notifier.refresh(conn)
    notifier(event())
    notifier.close()  # waits for the send under way
    content = receiver.received("/wecom")[0].json()["text"]["content"]
    assert "危急" in content and "database is unavailable" not in content, content

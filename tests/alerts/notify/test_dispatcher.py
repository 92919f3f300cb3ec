"""The dispatcher on a real database, real local endpoints and the real broker."""

from __future__ import annotations

import email
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from alerts.model import Audience, NotificationKind
from alerts.notify.channels.webhook import SIGNATURE_HEADER, sign_body
from alerts.notify.dispatcher import Dispatcher, utc_now
from alerts.notify.outbox import enqueue_alert_notifications, enqueue_command
from alerts.notify.settings import NotifySettings
from alerts.notify.vapid import public_key_b64url
from gateway.schema import Channel, SosAckCommand, topic_for
from kernel import db
from tests.alerts.notify.seed import (
    World,
    add_alert,
    add_channel,
    add_user,
    finish_alert,
    outbox,
    sql,
)
from tests.support.wait import wait_until


@contextmanager
def running(url: str, settings: NotifySettings, **kwargs: Any) -> Iterator[Dispatcher]:
    dispatcher = Dispatcher(url, settings, **kwargs)
    dispatcher.start()
    try:
        wait_until(dispatcher.connected.is_set, what="dispatcher connected")
        yield dispatcher
    finally:
        dispatcher.stop()


def notify(world: World, alert_id: int, audience: Audience = Audience.SITE_WORKERS,
           step: int = 1) -> int:
    with db.connect(world.url) as conn:
        n = enqueue_alert_notifications(conn, alert_id, audience, NotificationKind.ALERT, step)
        conn.commit()
    return n


def worker_with(world: World, kind: str, target: str, **kw: Any) -> int:
    user = add_user(world, f"w-{uuid.uuid4().hex[:6]}", "care_worker", on_duty=True)
    return add_channel(world, kind, target, user_id=user, **kw)


def status_of(url: str, row_id: int | None = None) -> dict[str, Any]:
    rows = outbox(url) if row_id is None else outbox(url, "id = %s", row_id)
    return rows[0]


def test_wakes_on_notify_and_sends(world, receiver, settings):
    slow_poll = settings.model_copy(update={"poll_s": 60.0, "all_clear_interval_s": 60.0})
    worker_with(world, "webhook", receiver.url("/hook"), secret={"secret": "k"})
    alert = add_alert(world)
    with running(world.url, slow_poll):
        notify(world, alert)
        wait_until(lambda: status_of(world.url)["status"] == "sent", timeout=5,
                   what="sent well before the 60 s poll")
    row = status_of(world.url)
    assert row["attempts"] == 1 and row["sent_at"] is not None
    assert receiver.received("/hook")[0].json()["alert_id"] == alert


def test_retries_with_exponential_backoff_until_sent(world, receiver, settings):
    worker_with(world, "webhook", receiver.url("/hook"))
    receiver.script("/hook", (500, {}), (500, {}))
    alert = add_alert(world)
    with running(world.url, settings):
        notify(world, alert)
        wait_until(lambda: status_of(world.url)["status"] == "sent", what="sent")
    row = status_of(world.url)
    assert row["attempts"] == 3 and row["last_error"] is None
    first, second, third = receiver.received("/hook")
    # base 0.05 s, doubling: at least 0.05 s, then 0.1 s between tries
    assert second.at - first.at >= 0.045
    assert third.at - second.at >= 0.095


def test_gives_up_after_max_attempts(world, receiver, settings):
    worker_with(world, "webhook", receiver.url("/hook"))
    receiver.script("/hook", *[(500, {})] * 5)
    alert = add_alert(world)
    with running(world.url, settings) as dispatcher:
        notify(world, alert)
        wait_until(lambda: status_of(world.url)["status"] == "failed", what="failed")
    row = status_of(world.url)
    assert row["attempts"] == settings.max_attempts == 3
    assert "HTTP 500" in row["last_error"]
    assert len(receiver.received("/hook")) == 3
    assert dispatcher.failed == 1


def test_permanent_error_fails_at_once(world, receiver, settings):
    worker_with(world, "webhook", receiver.url("/hook"))
    receiver.script("/hook", (400, {"error": "bad"}))
    alert = add_alert(world)
    with running(world.url, settings):
        notify(world, alert)
        wait_until(lambda: status_of(world.url)["status"] == "failed", what="failed")
    assert status_of(world.url)["attempts"] == 1


def test_webhook_to_a_private_address_fails_at_once(world, receiver, settings):
    worker_with(world, "webhook", receiver.url("/hook"))
    alert = add_alert(world)
    strict = settings.model_copy(update={"allow_private_targets": False})
    with running(world.url, strict):
        notify(world, alert)
        wait_until(lambda: status_of(world.url)["status"] == "failed", what="failed")
    row = status_of(world.url)
    assert row["attempts"] == 1
    assert "loopback" in row["last_error"] and "allow_private_targets" in row["last_error"]
    assert receiver.received("/hook") == []


def test_webpush_through_platform_vapid_key(world, receiver, settings):
    sub = receiver.new_subscription()
    worker_with(world, "webpush", sub.endpoint, secret=sub.secret)
    alert = add_alert(world)
    with running(world.url, settings):
        notify(world, alert)
        wait_until(lambda: status_of(world.url)["status"] == "sent", what="push sent")
    (req,) = receiver.received("/push/sub1")
    assert json.loads(req.decrypted or b"{}")["alert_id"] == alert
    with db.connect(world.url, autocommit=True) as conn:
        assert f"k={public_key_b64url(conn)}" in req.headers["authorization"]


def test_gone_push_subscription_deactivates_the_channel(world, receiver, settings):
    sub = receiver.new_subscription()
    channel = worker_with(world, "webpush", sub.endpoint, secret=sub.secret)
    receiver.script("/push/sub1", (410, {}))
    alert = add_alert(world)
    with running(world.url, settings):
        notify(world, alert)
        wait_until(lambda: status_of(world.url)["status"] == "failed", what="failed")
    assert status_of(world.url)["attempts"] == 1
    assert sql(world.url, "SELECT active FROM notification_channels WHERE id = %s",
               channel) == [(False,)]


def test_sos_ack_command_published_on_mqtt(world, broker, settings):
    topic = topic_for(world.site, "btn-test", Channel.CMD)
    got: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex}")
    client.username_pw_set(broker.pipeline.username, broker.pipeline.password)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, msg: got.put(bytes(msg.payload))
    client.connect(broker.pipeline.host, broker.pipeline.port)
    client.loop_start()
    try:
        wait_until(subscribed.is_set, what="test subscriber ready")
        alert = add_alert(world)
        command = SosAckCommand(ts=datetime.now(UTC), alert_id=alert, message="Help is coming")
        payload = json.loads(command.model_dump_json())
        with db.connect(world.url) as conn:
            enqueue_command(conn, alert, topic, payload, f"alert:{alert}:sos_ack")
            conn.commit()
        with running(world.url, settings, mqtt=broker.pipeline):
            wait_until(lambda: status_of(world.url)["status"] == "sent", what="command sent")
        assert json.loads(got.get(timeout=5)) == payload
    finally:
        client.disconnect()
        client.loop_stop()


def test_all_clear_follows_resolution(world, receiver, settings):
    worker_with(world, "webhook", receiver.url("/hook"))
    alert = add_alert(world)
    with running(world.url, settings):
        notify(world, alert)
        wait_until(lambda: status_of(world.url)["status"] == "sent", what="alert sent")
        finish_alert(world, alert)
        wait_until(lambda: len(receiver.received("/hook")) == 2, what="all-clear delivered")
    first, second = receiver.received("/hook")
    assert first.headers["x-eldercare-event"] == "alert"
    assert second.headers["x-eldercare-event"] == "all_clear"
    assert second.json()["title"].startswith("All clear:")


def test_retry_of_a_finished_alert_is_skipped(world, receiver, settings):
    patient = settings.model_copy(update={"retry_base_s": 1.0, "retry_cap_s": 1.0})
    worker_with(world, "webhook", receiver.url("/hook"))
    receiver.script("/hook", (503, {}))
    alert = add_alert(world)
    with running(world.url, patient):
        notify(world, alert)
        wait_until(lambda: status_of(world.url)["last_error"], what="first try failed")
        finish_alert(world, alert)
        wait_until(lambda: status_of(world.url)["status"] == "skipped", what="skipped")
    assert len(receiver.received("/hook")) == 1
    assert outbox(world.url, "kind = 'all_clear'") == []  # they were never told


def test_deactivated_channel_is_skipped(world, receiver, settings):
    channel = worker_with(world, "webhook", receiver.url("/hook"))
    alert = add_alert(world)
    notify(world, alert)
    sql(world.url, "UPDATE notification_channels SET active = false WHERE id = %s", channel)
    with running(world.url, settings):
        wait_until(lambda: status_of(world.url)["status"] == "skipped", what="skipped")
    assert receiver.received("/hook") == []


def test_a_slow_endpoint_does_not_hold_up_others(world, receiver, settings):
    receiver.gates["/slow"] = threading.Event()
    worker_with(world, "webhook", receiver.url("/slow"))
    worker_with(world, "wecom", receiver.wecom_key)
    alert = add_alert(world)
    with running(world.url, settings):
        notify(world, alert)
        wait_until(lambda: receiver.received("/wecom"), what="wecom delivered")
        assert receiver.received("/slow") == []  # still being answered
        receiver.gates["/slow"].set()
        wait_until(lambda: {r["status"] for r in outbox(world.url)} == {"sent"},
                   what="both sent")


def test_reconnects_after_losing_the_database(world, receiver, settings):
    worker_with(world, "webhook", receiver.url("/hook"))
    alert = add_alert(world)
    with running(world.url, settings) as dispatcher:
        sql(world.url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                       "AND backend_type = 'client backend'")
        notify(world, alert)
        wait_until(lambda: status_of(world.url)["status"] == "sent", what="sent after reconnect")
        assert dispatcher.connected.is_set()


# idempotency: a resend after the lease carries the same key --------------------------------

HELD = ("/hook", "/wecom", "/dingtalk", "/push/sub1")


def unquote(header: str) -> str:
    """The Idempotency-Key header's Structured Field string, unquoted."""
    assert header.startswith('"') and header.endswith('"'), header
    return header[1:-1]


def keys_by_channel(url: str) -> dict[str, str]:
    return {str(r["channel"]): str(r["idempotency_key"]) for r in outbox(url)}


def test_a_send_repeated_after_its_lease_carries_the_same_keys(world, receiver, smtp,
                                                              settings):
    inbox, port = smtp
    s = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port,
                                    "smtp_from": "alerts@care.example.org", "workers": 8})
    held = threading.Event()  # every endpoint holds its answer: the sender may die meanwhile
    for path in HELD:
        receiver.gates[path] = held
    inbox.gate = held
    sub = receiver.new_subscription()
    worker_with(world, "webhook", receiver.url("/hook"), secret={"secret": "k"})
    worker_with(world, "wecom", receiver.wecom_key)
    worker_with(world, "dingtalk", receiver.dingtalk_token,
                secret={"secret": receiver.dingtalk_secret})
    worker_with(world, "webpush", sub.endpoint, secret=sub.secret)
    worker_with(world, "email", "worker@example.org")
    alert = add_alert(world)
    assert notify(world, alert) == 5

    def after_the_lease() -> datetime:
        return utc_now() + timedelta(seconds=s.lease_s + 1)

    def all_attempted(n: int) -> bool:
        return [r["attempts"] for r in outbox(world.url)] == [n] * 5

    # The first dispatcher sends and never hears back (as if killed mid-send); once its lease
    # is over (a clock past it), another one claims every row again and sends again.
    with running(world.url, s, name="first"):
        wait_until(lambda: all_attempted(1), what="first dispatcher sending")
        with running(world.url, s, clock=after_the_lease, name="second"):
            wait_until(lambda: all_attempted(2), what="rows re-leased and sent again")
            held.set()
            wait_until(lambda: {r["status"] for r in outbox(world.url)} == {"sent"},
                       what="sent")
    keys = keys_by_channel(world.url)
    assert len(set(keys.values())) == 5  # one key per outbox row

    hooks = receiver.received("/hook")
    assert len(hooks) == 2
    for req in hooks:
        assert unquote(req.headers["idempotency-key"]) == keys["webhook"]
        assert req.json()["idempotency_key"] == keys["webhook"]
        assert req.headers[SIGNATURE_HEADER.lower()] == sign_body("k", req.body)
    for robot in ("wecom", "dingtalk"):
        sent = receiver.received(f"/{robot}")
        assert [unquote(r.headers["idempotency-key"]) for r in sent] == [keys[robot]] * 2
    pushes = receiver.received("/push/sub1")
    assert [r.headers["topic"] for r in pushes] == [keys["webpush"].replace("-", "")] * 2
    assert [json.loads(r.decrypted or b"{}")["id"] for r in pushes] == [keys["webpush"]] * 2
    wait_until(lambda: len(inbox.envelopes) == 2, what="both e-mails kept")
    ids = [email.message_from_bytes(e.content, policy=policy.default)["Message-ID"]
           for e in inbox.envelopes]
    assert ids == [f"<{keys['email']}@care.example.org>"] * 2


def test_each_notification_has_its_own_key(world, receiver, settings):
    worker_with(world, "webhook", receiver.url("/hook"))
    worker_with(world, "wecom", receiver.wecom_key)
    first, second = add_alert(world), add_alert(world, type_="fall")
    with running(world.url, settings):
        notify(world, first)
        notify(world, second)
        wait_until(lambda: [r["status"] for r in outbox(world.url)] == ["sent"] * 4,
                   what="sent")
    rows = outbox(world.url)
    assert len({r["idempotency_key"] for r in rows}) == 4
    by_alert = {r["alert_id"]: str(r["idempotency_key"]) for r in rows
                if r["channel"] == "webhook"}
    got = {req.json()["alert_id"]: req.json()["idempotency_key"]
           for req in receiver.received("/hook")}
    assert got == by_alert


_DISPATCHER_PROCESS = """
import sys, threading
from alerts.notify.dispatcher import Dispatcher
from alerts.notify.settings import NotifySettings
Dispatcher(sys.argv[1], NotifySettings.model_validate_json(sys.argv[2])).start()
threading.Event().wait()  # until killed
"""


@pytest.mark.slow
def test_a_dispatcher_killed_mid_send_is_followed_by_a_repeat_with_the_same_key(
        world, receiver, settings):
    receiver.gates["/hook"] = held = threading.Event()
    worker_with(world, "webhook", receiver.url("/hook"), secret={"secret": "k"})
    alert = add_alert(world)
    notify(world, alert)
    root = Path(__file__).resolve().parents[3]
    child = subprocess.Popen(
        [sys.executable, "-c", _DISPATCHER_PROCESS, world.url, settings.model_dump_json()],
        env={**os.environ, "PYTHONPATH": str(root)}, cwd=root)
    try:
        wait_until(lambda: receiver.arrived("/hook"), what="the doomed dispatcher sending")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert status_of(world.url)["status"] == "pending"  # its send was never recorded

    def after_the_lease() -> datetime:
        return utc_now() + timedelta(seconds=settings.lease_s + 1)

    with running(world.url, settings, clock=after_the_lease):
        wait_until(lambda: len(receiver.arrived("/hook")) == 2, what="sent again")
        held.set()
        wait_until(lambda: status_of(world.url)["status"] == "sent", what="sent")
    row = status_of(world.url)
    assert row["attempts"] == 2
    first, repeat = receiver.arrived("/hook")
    for req in (first, repeat):
        assert unquote(req.headers["idempotency-key"]) == str(row["idempotency_key"])
        assert req.json()["idempotency_key"] == str(row["idempotency_key"])

"""The demo's notifications end to end: an SOS in the seeded demo district reaches the site's
staff group robot and the resident's family by e-mail, through the platform's real escalation,
outbox, dispatcher and senders, into the demo's local receivers (simulators/sinks.py); the
all-clear follows the resolve."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from alerts.config import AlertSettings
from alerts.escalation import escalation_tick
from alerts.lifecycle import resolve
from alerts.model import AlertTrigger, AlertType, Audience, NotificationKind, Outcome, Severity
from alerts.notify.channels.mail import EmailSender
from alerts.notify.channels.robots import WeComSender
from alerts.notify.dispatcher import Dispatcher
from alerts.notify.messages import Message
from alerts.notify.outbox import enqueue_alert_notifications
from alerts.notify.settings import NotifySettings
from alerts.store import store_trigger
from eldercare.embedded import port_open
from eldercare.seed import seed_demo
from gateway.device_accounts import DeviceAccounts
from kernel import db
from simulators.sinks import (
    DINGTALK_PATH,
    WECOM_PATH,
    Inbox,
    SinkAddresses,
    SmtpSink,
    WebhookSink,
    free_port,
    inbox_path,
)
from tests.support.services import Broker
from tests.support.wait import wait_until

T0 = datetime(2041, 6, 1, 8, 0, tzinfo=UTC)  # the SOS; every clock below is derived from it
FAMILY_STEP = T0 + timedelta(minutes=10)  # critical: family after 600 s unacknowledged
RESOLVED = T0 + timedelta(minutes=12)


def _enqueue_at(now: datetime) -> Any:
    def enqueue(conn: Any, alert_id: int, audience: Audience, kind: NotificationKind,
                step: int) -> int:
        return enqueue_alert_notifications(conn, alert_id, audience, kind, step, now=now)
    return enqueue


def _sos_for_family01(url: str) -> tuple[int, int]:
    """Open an SOS for family01's resident the way the pipeline does; (alert id, duty id)."""
    with db.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT r.id, r.site_id, d.id FROM users u JOIN family_contacts f ON f.user_id = u.id"
            " JOIN residents r ON r.id = f.resident_id JOIN devices d ON d.resident_id = r.id"
            " WHERE u.username = 'family01' AND d.type = 'call_button'").fetchone()
        assert row is not None
        trig = AlertTrigger(resident_id=int(row[0]), site=str(row[1]), device_id=str(row[2]),
                            type=AlertType.SOS, severity=Severity.CRITICAL, at=T0)
        stored = store_trigger(conn, trig, AlertSettings(), T0)
        assert stored is not None and stored.created
        duty = conn.execute("SELECT id FROM users WHERE username = %s",
                            (f"duty-{row[1]}",)).fetchone()
        assert duty is not None
        for at in (T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=3), FAMILY_STEP):
            escalation_tick(conn, at, _enqueue_at(at))
    return stored.alert_id, int(duty[0])


async def _resolve(url: str, alert_id: int, user_id: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        result = await resolve(conn, alert_id, user_id, Outcome.ASSISTED_AT_HOME, None,
                               RESOLVED)
    assert result.ok


def _mail_to(inbox: Inbox, address: str) -> list[dict[str, Any]]:
    return [r for r in inbox.read() if r["channel"] == "email" and address in r["rcpt_tos"]]


def test_an_sos_reaches_family_email_and_staff_group_then_the_all_clear(
        clean_db: str, broker: Broker, tmp_path: Path) -> None:
    accounts = DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port))
    seed_demo(clean_db, accounts, broker.pipeline, tmp_path, homes=2, now=lambda: T0)
    inbox = Inbox(inbox_path(tmp_path), clock=lambda: T0)
    smtp, robots = SmtpSink(inbox), WebhookSink(inbox)
    smtp.start()
    robots.start()
    settings = NotifySettings(smtp_host=smtp.host, smtp_port=smtp.port,
                              wecom_base_url=robots.url + WECOM_PATH,
                              dingtalk_base_url=robots.url + DINGTALK_PATH,
                              poll_s=0.2, all_clear_interval_s=0.2)
    now = [FAMILY_STEP]
    dispatcher = Dispatcher(clean_db, settings, clock=lambda: now[0])
    dispatcher.start()
    try:
        alert_id, duty = _sos_for_family01(clean_db)
        wait_until(lambda: len(_mail_to(inbox, "family01@family.example")) == 1,
                   timeout=30, what="the family's e-mail in the SMTP sink")
        [alarm] = _mail_to(inbox, "family01@family.example")
        assert "SOS call" in alarm["subject"]
        assert "care team has been alerted" in alarm["text"]
        wait_until(lambda: any(r["channel"] == "wecom" for r in inbox.read()),
                   timeout=30, what="the riverside group robot message")
        # the demo's sites are in China: their group robot reads Chinese (sites.language)
        robot = next(r for r in inbox.read() if r["channel"] == "wecom")
        assert re.search(r"[\u4e00-\u9fff]", robot["text"]), robot["text"]
        now[0] = RESOLVED
        asyncio.run(_resolve(clean_db, alert_id, duty))
        wait_until(lambda: len(_mail_to(inbox, "family01@family.example")) == 2,
                   timeout=30, what="the all-clear e-mail")
        clear = _mail_to(inbox, "family01@family.example")[1]
        assert clear["subject"].startswith("[Eldercare] All clear: SOS call")
        assert "helped at home" in clear["text"]
    finally:
        dispatcher.stop()
        robots.stop()
        smtp.stop()


def test_the_sinks_part_of_the_demo_runs_as_its_own_process_and_stops_on_sigterm(
        tmp_path: Path) -> None:
    """`eldercare sinks` (started and restarted by the demo's supervisor) serves both sinks
    on the ports it is given and keeps what arrives in the data folder."""
    addresses = SinkAddresses(smtp_port=free_port(), webhook_port=free_port())
    env = {**os.environ, "PYTHONPATH": str(Path.cwd()), "ELDERCARE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "eldercare.cli", "sinks", "--smtp-port",
         str(addresses.smtp_port), "--webhook-port", str(addresses.webhook_port)], env=env)
    try:
        wait_until(lambda: port_open(addresses.smtp_port) and port_open(addresses.webhook_port),
                   timeout=30, what="both sinks listening")
        settings = NotifySettings(smtp_host=addresses.host, smtp_port=addresses.smtp_port)
        message = Message(kind=NotificationKind.ALL_CLEAR, title="All clear: test", body="ok")
        EmailSender(settings).send("family02@family.example", {}, message)
        with httpx.Client() as client:
            WeComSender(client, addresses.webhook_url + WECOM_PATH).send("k", {}, message)
            listed = client.get(addresses.webhook_url + "/inbox").json()["received"]
        assert [r["channel"] for r in listed] == ["email", "wecom"]
        assert len(Inbox(inbox_path(tmp_path)).read()) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

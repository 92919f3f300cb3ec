"""Local receivers for the demo's notifications: an SMTP sink and a group-robot webhook sink.

The platform's e-mail, WeCom and DingTalk channels talk to third-party services that a demo on
one machine cannot reach. These stand-ins speak the real protocols instead, like the simulated
homes speak the real device protocol: the SMTP sink is an aiosmtpd server (real SMTP, so the
platform's `EmailSender` runs unchanged), the webhook sink accepts the robots' JSON bodies at
their real paths and answers as they do ({"errcode": 0, "errmsg": "ok"}, or their error codes
for a missing key or an unreadable body). Everything received is appended to one JSON Lines
file in the data folder (`sinks/inbox.jsonl`), which `GET /inbox` on the webhook sink shows.

What each recipient was sent is recorded by the platform itself (the outbox, shown on the
"Sent notifications" page); the sinks only prove that the messages left the platform.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

logger = logging.getLogger(__name__)

WECOM_PATH = "/cgi-bin/webhook/send"  # https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=
DINGTALK_PATH = "/robot/send"  # https://oapi.dingtalk.com/robot/send?access_token=
INBOX_PATH = "/inbox"
# The robots' own error codes (their documentation): no key / token, unreadable JSON body.
WECOM_NO_KEY = (93000, "invalid webhook url")
DINGTALK_NO_TOKEN = (300001, "token is not exist")
BAD_BODY = (40035, "invalid json or missing msgtype")
MAX_BODY = 64 * 1024

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Inbox:
    """What the sinks received: one JSON object a line, appended under a lock (both sinks
    write from their own threads)."""

    def __init__(self, path: Path, clock: Clock = utc_now) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, record: dict[str, Any]) -> None:
        """Append one received message, stamped with the time it arrived."""
        line = json.dumps({"received_at": self._clock().isoformat(), **record},
                          ensure_ascii=False)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Everything received so far, oldest first."""
        with self._lock:
            if not self.path.exists():
                return []
            lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


# --- SMTP ---------------------------------------------------------------------------------


def mail_record(envelope: Envelope) -> dict[str, Any]:
    """What the inbox keeps of one e-mail: envelope, subject, Message-ID and the text."""
    raw = envelope.content if isinstance(envelope.content, bytes) else b""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    body = ""
    if isinstance(parsed, EmailMessage):
        part = parsed.get_body(preferencelist=("plain",))
        body = part.get_content() if part is not None else ""
    return {"channel": "email", "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos), "subject": str(parsed["Subject"] or ""),
            "message_id": str(parsed["Message-ID"] or ""), "text": body}


class _MailHandler:
    """aiosmtpd handler: accept every message and keep it."""

    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802 (aiosmtpd hook)
                          envelope: Envelope) -> str:
        self._inbox.add(mail_record(envelope))
        return "250 Message accepted for delivery"


class SmtpSink:
    """A real SMTP server on `host:port` (aiosmtpd) that keeps every message in the inbox."""

    def __init__(self, inbox: Inbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._controller = Controller(_MailHandler(inbox), hostname=host, port=self.port)

    def start(self) -> None:
        """Start serving (returns once the server answers)."""
        self._controller.start()

    def stop(self) -> None:
        """Stop serving."""
        self._controller.stop()


# --- group robots -------------------------------------------------------------------------


def robot_reply(path: str, query: dict[str, list[str]], body: bytes
                ) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
    """How WeCom / DingTalk answer a robot call: (HTTP status, JSON reply, record to keep or
    None). Both answer HTTP 200 with an errcode, also for errors."""
    robot, param, no_key = (("wecom", "key", WECOM_NO_KEY) if path == WECOM_PATH
                            else ("dingtalk", "access_token", DINGTALK_NO_TOKEN))
    key = (query.get(param) or [""])[0]
    if not key:
        return 200, {"errcode": no_key[0], "errmsg": no_key[1]}, None
    try:
        doc = json.loads(body)
        msgtype = str(doc["msgtype"])
        content = doc[msgtype].get("content") or doc[msgtype].get("text") or ""
    except (ValueError, KeyError, TypeError, AttributeError):
        return 200, {"errcode": BAD_BODY[0], "errmsg": BAD_BODY[1]}, None
    record = {"channel": robot, "key": key, "msgtype": msgtype, "text": str(content)}
    return 200, {"errcode": 0, "errmsg": "ok"}, record


class _RobotHandler(BaseHTTPRequestHandler):
    server: _RobotServer

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        if parts.path not in (WECOM_PATH, DINGTALK_PATH):
            self._reply(404, {"errcode": 404, "errmsg": "not found"})
            return
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        status, reply, record = robot_reply(parts.path, parse_qs(parts.query),
                                            self.rfile.read(length))
        if record is not None:
            self.server.inbox.add(record)
        self._reply(status, reply)

    def do_GET(self) -> None:
        if urlsplit(self.path).path != INBOX_PATH:
            self._reply(404, {"errcode": 404, "errmsg": "not found"})
            return
        self._reply(200, {"received": self.server.inbox.read()})

    def _reply(self, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("webhook sink: " + format, *args)


class _RobotServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], inbox: Inbox) -> None:
        super().__init__(address, _RobotHandler)
        self.inbox = inbox


class WebhookSink:
    """WeCom and DingTalk group robots on `host:port` (plain HTTP), keeping what they get;
    `GET /inbox` lists everything both sinks received."""

    def __init__(self, inbox: Inbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _RobotServer((host, port), inbox)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="webhook-sink", daemon=True)

    @property
    def url(self) -> str:
        """The sink's base address."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving on a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True, slots=True)
class SinkAddresses:
    """Where the demo's sinks listen, and the notification settings that point there."""

    smtp_port: int
    webhook_port: int
    host: str = "127.0.0.1"

    @property
    def webhook_url(self) -> str:
        """The webhook sink's base address (its /inbox lists what both sinks received)."""
        return f"http://{self.host}:{self.webhook_port}"

    def notify_env(self) -> dict[str, str]:
        """The `[notify]` settings, as environment, that send e-mail and robot messages to
        the sinks instead of the real services."""
        return {"ELDERCARE_NOTIFY__SMTP_HOST": self.host,
                "ELDERCARE_NOTIFY__SMTP_PORT": str(self.smtp_port),
                "ELDERCARE_NOTIFY__WECOM_BASE_URL": self.webhook_url + WECOM_PATH,
                "ELDERCARE_NOTIFY__DINGTALK_BASE_URL": self.webhook_url + DINGTALK_PATH,
                "ELDERCARE_NOTIFY__DEMO_INBOX_URL": self.webhook_url + INBOX_PATH}


def inbox_path(data_dir: Path) -> Path:
    """Where the demo's sinks keep what they received."""
    return data_dir / "sinks" / "inbox.jsonl"


def serve_sinks(addresses: SinkAddresses, data_dir: Path, stop: threading.Event) -> None:
    """Run both sinks until `stop` is set (the `eldercare sinks` process of the demo)."""
    inbox = Inbox(inbox_path(data_dir))
    smtp = SmtpSink(inbox, addresses.host, addresses.smtp_port)
    robots = WebhookSink(inbox, addresses.host, addresses.webhook_port)
    smtp.start()
    robots.start()
    logger.info("notification sinks: SMTP on %s:%d, robots on %s (inbox %s)", addresses.host,
                smtp.port, robots.url, inbox.path)
    try:
        stop.wait()
    finally:
        robots.stop()
        smtp.stop()

"""Local stand-ins for the outside world, speaking the real protocols: a WeCom group robot, a
DingTalk robot (checking the signature), a generic webhook receiver and a Web Push service
(checking the VAPID header and decrypting the aes128gcm body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

Reply = tuple[int, dict[str, Any]]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Request:
    """One request the receiver got."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    decrypted: bytes | None = None
    vapid_ok: bool | None = None
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Subscription:
    """A browser's push subscription: its ECDH key pair and auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def secret(self) -> dict[str, str]:
        """The channel secret, as PushSubscription.toJSON()['keys'] gives it."""
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}


class Receiver:
    """A threaded HTTP server on a free loopback port. Paths: /wecom, /dingtalk, /hook...,
    /push/<id>. `script(path, (status, body), ...)` makes the next requests fail (a 3xx body's
    "location" becomes the Location header); a gate in `gates` holds a path's answers (a slow
    server). `received` lists answered requests, `arrived` also those still held."""

    def __init__(self) -> None:
        self.wecom_key = "wecom-key-1"
        self.dingtalk_token = "ding-token-1"
        self.dingtalk_secret: str | None = "SECtest-secret"
        self.subscriptions: dict[str, Subscription] = {}
        self.gates: dict[str, threading.Event] = {}  # a path answers once its gate is set
        self._requests: list[Request] = []
        self._arrived: list[Request] = []
        self._scripted: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripted[path].extend(replies)

    def received(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self._requests if r.path == path]

    def arrived(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self._arrived if r.path == path]

    def new_subscription(self, name: str = "sub1") -> Subscription:
        sub = Subscription(self.url(f"/push/{name}"), ec.generate_private_key(ec.SECP256R1()))
        self.subscriptions[f"/push/{name}"] = sub
        return sub

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # protocol ---------------------------------------------------------------------------

    def _handle(self, req: Request) -> Reply:
        with self._lock:
            self._arrived.append(req)
        gate = self.gates.get(req.path)
        if gate is not None:
            gate.wait(10)
        with self._lock:
            self._requests.append(req)
            scripted = self._scripted[req.path]
            if scripted:
                return scripted.popleft()
        if req.path == "/wecom":
            return self._wecom(req)
        if req.path == "/dingtalk":
            return self._dingtalk(req)
        if req.path.startswith("/push/"):
            return self._push(req)
        return 200, {"ok": True}

    def _wecom(self, req: Request) -> Reply:
        if req.query.get("key") != self.wecom_key:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        return _text_reply(req)

    def _dingtalk(self, req: Request) -> Reply:
        if req.query.get("access_token") != self.dingtalk_token:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        if self.dingtalk_secret is not None and not _dingtalk_signed(req, self.dingtalk_secret):
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        return _text_reply(req)

    def _push(self, req: Request) -> Reply:
        sub = self.subscriptions.get(req.path)
        if sub is None:
            return 404, {}
        auth = req.headers.get("authorization", "")
        req.vapid_ok = auth.startswith("vapid t=") and bool(Vapid02.verify(auth))
        if not req.vapid_ok or req.headers.get("content-encoding") != "aes128gcm":
            return 401, {}
        req.decrypted = http_ece.decrypt(req.body, private_key=sub.private_key,
                                         auth_secret=sub.auth, version="aes128gcm")
        return 201, {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                              {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(length))
                status, doc = receiver._handle(req)
                body = json.dumps(doc).encode()
                self.send_response(status)
                if 300 <= status < 400 and "location" in doc:  # a scripted redirect
                    self.send_header("Location", str(doc["location"]))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


def _text_reply(req: Request) -> Reply:
    doc = req.json()
    content = doc.get("text", {}).get("content", "")
    if doc.get("msgtype") != "text" or not content or len(content.encode()) > 2048:
        return 200, {"errcode": 40008, "errmsg": "invalid message"}
    return 200, {"errcode": 0, "errmsg": "ok"}


def _dingtalk_signed(req: Request, secret: str) -> bool:
    timestamp, sign = req.query.get("timestamp"), req.query.get("sign")
    if not timestamp or not sign or abs(time.time() * 1000 - int(timestamp)) > 3_600_000:
        return False
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(digest.digest()).decode(), sign)

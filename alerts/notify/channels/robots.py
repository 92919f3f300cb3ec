"""Group chat robots: WeCom (企业微信群机器人) and DingTalk (钉钉自定义机器人).

Both take {"msgtype": "text", "text": {"content": ...}} and answer {"errcode": 0, ...}. The
channel target is the robot's key / access token, or the whole webhook address copied from the
app (only its key is used: messages always go to the configured base URL).

Neither robot API has a field to deduplicate by (WeCom's duplicate check exists only in the
application-message API, not for group robots; DingTalk custom robots have none). Each call
still carries the message's `Idempotency-Key` header (for a relay or proxy in between), and
the text ends with a short `Ref:` (the key's first 8 characters), so people in the group can
tell a repeat (delivery is at least once) from a new message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from alerts.notify.channels.base import SendError, idempotency_header, post
from alerts.notify.messages import BRAND, Message
from kernel.i18n import N_, translate

MAX_CONTENT_BYTES = 2000  # WeCom allows 2048 bytes of text

# Error codes that mean the robot is misconfigured: retrying cannot help.
WECOM_CONFIG_ERRORS = frozenset({93000, 93004, 93008, 40008, 40058, 44004})
# 300001/300005: token missing or unknown; 310000: signature, keyword or IP check failed.
DINGTALK_CONFIG_ERRORS = frozenset({300001, 300005, 310000, 400013, 400101, 40035})


def robot_key(target: str, param: str) -> str:
    """The key/token of a robot target given bare or as a full webhook URL."""
    if not target.startswith(("http://", "https://")):
        return target.strip()
    values = parse_qs(urlsplit(target).query).get(param)
    if not values:
        raise SendError(f"robot URL has no {param}= parameter", retryable=False)
    return values[0]


def short_ref(message: Message) -> str:
    """The key's first 8 characters: enough for a person to match a repeat."""
    return message.key()[:8]


def chat_text(message: Message, public_url: str | None) -> str:
    """The text a group sees (branded, cut to the robots' size limit, ending with the
    message's short reference, which survives the cut)."""
    ref = "\n" + translate(N_("Ref: {ref}"), message.lang).format(ref=short_ref(message))
    text = f"[{BRAND}] {message.text(public_url)}"
    room = MAX_CONTENT_BYTES - len(ref.encode())
    raw = text.encode()
    if len(raw) > room:
        text = raw[:room].decode(errors="ignore")
    return text + ref


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk signature: base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")).
    (httpx URL-encodes it as a query parameter.)"""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_errcode(reply: httpx.Response, what: str, config_errors: frozenset[int]) -> None:
    """Raise SendError unless the robot answered errcode 0."""
    try:
        doc = reply.json()
        code = int(doc.get("errcode", -1))
    except (ValueError, AttributeError, TypeError):
        raise SendError(f"{what}: unreadable reply {reply.text[:200]!r}", retryable=True) from None
    if code != 0:
        raise SendError(f"{what}: errcode {code} {doc.get('errmsg', '')}",
                        retryable=code not in config_errors)


def _text_body(message: Message, public_url: str | None) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": chat_text(message, public_url)}}


class _RobotSender:
    """A group robot reached over HTTP at a configured base URL."""

    def __init__(self, client: httpx.Client, base_url: str, public_url: str | None = None
                 ) -> None:
        self._client = client
        self._base_url = base_url
        self._public_url = public_url


class WeComSender(_RobotSender):
    """WeCom group robot (`target`: the robot key or webhook URL; no secret)."""

    def send(self, target: str, secret: Mapping[str, Any], message: Message) -> None:
        """Post the text to the group."""
        params = {"key": robot_key(target, "key")}
        reply = post(self._client, self._base_url, "wecom", params=params,
                     headers=idempotency_header(message),
                     json=_text_body(message, self._public_url))
        check_errcode(reply, "wecom", WECOM_CONFIG_ERRORS)


class DingTalkSender(_RobotSender):
    """DingTalk custom robot (`target`: access token or webhook URL; `secret`:
    {"secret": "SEC..."} when the robot uses signing)."""

    def send(self, target: str, secret: Mapping[str, Any], message: Message) -> None:
        """Post the text to the group, signed when the channel has a secret."""
        params = {"access_token": robot_key(target, "access_token")}
        sign_secret = secret.get("secret")
        if sign_secret:
            timestamp = int(time.time() * 1000)
            params["timestamp"] = str(timestamp)
            params["sign"] = dingtalk_sign(str(sign_secret), timestamp)
        reply = post(self._client, self._base_url, "dingtalk", params=params,
                     headers=idempotency_header(message),
                     json=_text_body(message, self._public_url))
        check_errcode(reply, "dingtalk", DINGTALK_CONFIG_ERRORS)

"""Each sender against a real local endpoint speaking the real protocol."""

from __future__ import annotations

import email
import json
from email import policy

import httpx
import pytest

from alerts.notify.channels import ChannelGoneError, SendError
from alerts.notify.channels.mail import EmailSender
from alerts.notify.channels.robots import DingTalkSender, WeComSender, robot_key
from alerts.notify.channels.webhook import SIGNATURE_HEADER, WebhookSender, sign_body
from alerts.notify.channels.webpush import WebPushSender
from eldercare.embedded import free_port
from tests.support.notify import MESSAGE, new_vapid


@pytest.fixture
def http():
    with httpx.Client(timeout=2) as client:
        yield client


# webhook ---------------------------------------------------------------------------------

def local_hook(http: httpx.Client) -> WebhookSender:
    """A webhook sender allowed to reach the loopback receiver."""
    return WebhookSender(http, allow_private_targets=True)


def test_webhook_posts_signed_alert_event(receiver, http):
    WebhookSender(http, "https://care.example.org", allow_private_targets=True).send(
        receiver.url("/hook"), {"secret": "s3cret"}, MESSAGE)
    (req,) = receiver.received("/hook")
    assert req.headers[SIGNATURE_HEADER.lower()] == sign_body("s3cret", req.body)
    assert req.headers["x-eldercare-event"] == "alert"
    doc = req.json()
    assert doc["alert_id"] == 42 and doc["data"]["type"] == "fall"
    assert doc["link"] == "https://care.example.org/alerts/42"


def test_webhook_without_secret_is_unsigned(receiver, http):
    local_hook(http).send(receiver.url("/hook"), {}, MESSAGE)
    (req,) = receiver.received("/hook")
    assert SIGNATURE_HEADER.lower() not in req.headers


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True),
                                                   (400, False), (404, False)])
def test_webhook_http_errors(receiver, http, status, retryable):
    receiver.script("/hook", (status, {}))
    with pytest.raises(SendError) as err:
        local_hook(http).send(receiver.url("/hook"), {}, MESSAGE)
    assert err.value.retryable is retryable


def test_webhook_unreachable_is_retryable(http):
    with pytest.raises(SendError) as err:
        local_hook(http).send(f"http://127.0.0.1:{free_port()}/hook", {}, MESSAGE)
    assert err.value.retryable


# robots ----------------------------------------------------------------------------------

def test_wecom_robot(receiver, http):
    WeComSender(http, receiver.url("/wecom")).send(receiver.wecom_key, {}, MESSAGE)
    (req,) = receiver.received("/wecom")
    content = req.json()["text"]["content"]
    assert content.startswith("[Eldercare] CRITICAL: possible fall - Margaret Smith")
    assert "Open: /alerts/42" in content


def test_wecom_accepts_the_copied_webhook_url_but_sends_to_base(receiver, http):
    copied = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={receiver.wecom_key}"
    WeComSender(http, receiver.url("/wecom")).send(copied, {}, MESSAGE)
    assert len(receiver.received("/wecom")) == 1


def test_wecom_bad_key_is_a_config_error(receiver, http):
    with pytest.raises(SendError, match="93000") as err:
        WeComSender(http, receiver.url("/wecom")).send("wrong", {}, MESSAGE)
    assert not err.value.retryable


def test_robot_rate_limit_is_retryable(receiver, http):
    receiver.script("/wecom", (200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    with pytest.raises(SendError) as err:
        WeComSender(http, receiver.url("/wecom")).send(receiver.wecom_key, {}, MESSAGE)
    assert err.value.retryable


def test_dingtalk_signed(receiver, http):
    DingTalkSender(http, receiver.url("/dingtalk")).send(
        receiver.dingtalk_token, {"secret": receiver.dingtalk_secret}, MESSAGE)
    (req,) = receiver.received("/dingtalk")
    assert req.query["sign"] and req.query["timestamp"]  # checked by the receiver
    assert req.json()["msgtype"] == "text"


def test_dingtalk_wrong_secret_is_a_config_error(receiver, http):
    with pytest.raises(SendError, match="310000") as err:
        DingTalkSender(http, receiver.url("/dingtalk")).send(
            receiver.dingtalk_token, {"secret": "SECwrong"}, MESSAGE)
    assert not err.value.retryable


def test_dingtalk_unsigned_robot(receiver, http):
    receiver.dingtalk_secret = None
    DingTalkSender(http, receiver.url("/dingtalk")).send(
        f"https://oapi.dingtalk.com/robot/send?access_token={receiver.dingtalk_token}", {},
        MESSAGE)
    (req,) = receiver.received("/dingtalk")
    assert "sign" not in req.query


def test_robot_key_parsing():
    assert robot_key(" abc ", "key") == "abc"
    assert robot_key("https://x/send?key=k1&debug=1", "key") == "k1"
    with pytest.raises(SendError):
        robot_key("https://x/send?nokey=1", "key")


# e-mail ----------------------------------------------------------------------------------

def test_email_via_real_smtp_server(smtp, settings):
    inbox, port = smtp
    s = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port,
                                    "smtp_from": "alerts@care.example.org"})
    EmailSender(s).send("daughter@example.org", {}, MESSAGE)
    (env,) = inbox.envelopes
    assert env.rcpt_tos == ["daughter@example.org"]
    assert env.mail_from == "alerts@care.example.org"
    mail = email.message_from_bytes(env.content, policy=policy.default)
    assert mail["Subject"] == "[Eldercare] CRITICAL: possible fall - Margaret Smith"
    body = mail.get_content()
    assert "Margaret Smith (12 Elm Road)" in body
    assert "https://care.example.org/alerts/42" in body


def test_email_server_down_is_retryable(settings):
    s = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": free_port()})
    with pytest.raises(SendError) as err:
        EmailSender(s).send("a@example.org", {}, MESSAGE)
    assert err.value.retryable


def test_email_not_configured(settings):
    with pytest.raises(SendError) as err:
        EmailSender(settings).send("a@example.org", {}, MESSAGE)
    assert not err.value.retryable


# web push --------------------------------------------------------------------------------

def test_webpush_encrypts_for_the_subscription(receiver, settings):
    sub = receiver.new_subscription()
    WebPushSender(settings, new_vapid()).send(sub.endpoint, sub.secret, MESSAGE)
    (req,) = receiver.received("/push/sub1")
    assert req.vapid_ok
    assert req.headers["urgency"] == "high"
    assert int(req.headers["ttl"]) == settings.webpush_ttl_s
    assert req.decrypted is not None
    doc = json.loads(req.decrypted)
    assert doc["title"] == MESSAGE.title
    assert doc["url"] == "https://care.example.org/alerts/42"
    assert doc["tag"] == "alert-42"


def test_webpush_gone_subscription(receiver, settings):
    sub = receiver.new_subscription()
    receiver.script("/push/sub1", (410, {}))
    with pytest.raises(ChannelGoneError):
        WebPushSender(settings, new_vapid()).send(sub.endpoint, sub.secret, MESSAGE)


def test_webpush_server_error_is_retryable(receiver, settings):
    sub = receiver.new_subscription()
    receiver.script("/push/sub1", (502, {}))
    with pytest.raises(SendError) as err:
        WebPushSender(settings, new_vapid()).send(sub.endpoint, sub.secret, MESSAGE)
    assert err.value.retryable and not isinstance(err.value, ChannelGoneError)


def test_webpush_without_keys(settings):
    with pytest.raises(SendError) as err:
        WebPushSender(settings, new_vapid()).send("http://127.0.0.1:9/p", {}, MESSAGE)
    assert not err.value.retryable


# idempotency keys ------------------------------------------------------------------------

KEYED = MESSAGE.with_key("3f1c2b9a-5d4e-4f60-9a7b-8c1d2e3f4a5b")
OTHER = MESSAGE.with_key("0b6e4c1d-2a3f-4b5c-8d9e-0f1a2b3c4d5e")


def sf_string(value: str) -> str:
    """A Structured Field string (RFC 8941) as the Idempotency-Key header carries it."""
    assert value.startswith('"') and value.endswith('"'), value
    return value[1:-1]


def test_webhook_carries_the_key_in_header_and_signed_body(receiver, http):
    hook = local_hook(http)
    hook.send(receiver.url("/hook"), {"secret": "s3cret"}, KEYED)
    hook.send(receiver.url("/hook"), {"secret": "s3cret"}, KEYED)  # a repeat
    hook.send(receiver.url("/hook"), {"secret": "s3cret"}, OTHER)
    first, repeat, other = receiver.received("/hook")
    for req in (first, repeat):
        assert sf_string(req.headers["idempotency-key"]) == KEYED.idempotency_key
        assert req.json()["idempotency_key"] == KEYED.idempotency_key
    assert other.json()["idempotency_key"] == OTHER.idempotency_key
    # The signature covers the key: a body with another key does not verify.
    assert req.headers[SIGNATURE_HEADER.lower()] == sign_body("s3cret", req.body)
    forged = req.body.replace(KEYED.idempotency_key.encode(), OTHER.idempotency_key.encode())
    assert forged != req.body
    assert sign_body("s3cret", forged) != req.headers[SIGNATURE_HEADER.lower()]


def test_robots_carry_the_key_in_a_header_and_a_short_ref(receiver, http):
    WeComSender(http, receiver.url("/wecom")).send(receiver.wecom_key, {}, KEYED)
    DingTalkSender(http, receiver.url("/dingtalk")).send(
        receiver.dingtalk_token, {"secret": receiver.dingtalk_secret}, KEYED)
    for path in ("/wecom", "/dingtalk"):
        (req,) = receiver.received(path)
        assert sf_string(req.headers["idempotency-key"]) == KEYED.idempotency_key
        assert req.json()["text"]["content"].endswith("\nRef: 3f1c2b9a")


def test_robot_ref_survives_cutting_a_long_message(receiver, http):
    long = KEYED.model_copy(update={"body": "x" * 5000})
    WeComSender(http, receiver.url("/wecom")).send(receiver.wecom_key, {}, long)
    (req,) = receiver.received("/wecom")  # the receiver refuses > 2048 bytes
    assert req.json()["text"]["content"].endswith("\nRef: 3f1c2b9a")


def test_email_message_id_is_stable_per_message(smtp, settings):
    inbox, port = smtp
    s = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port,
                                    "smtp_from": "Eldercare <alerts@care.example.org>"})
    sender = EmailSender(s)
    for message in (KEYED, KEYED, OTHER):
        sender.send("daughter@example.org", {}, message)
    ids = [email.message_from_bytes(env.content, policy=policy.default)["Message-ID"]
           for env in inbox.envelopes]
    assert ids == [f"<{KEYED.idempotency_key}@care.example.org>"] * 2 + [
        f"<{OTHER.idempotency_key}@care.example.org>"]


def test_webpush_topic_and_payload_id_are_stable(receiver, settings):
    sub = receiver.new_subscription()
    sender = WebPushSender(settings, new_vapid())
    for message in (KEYED, KEYED, OTHER):
        sender.send(sub.endpoint, sub.secret, message)
    first, repeat, other = receiver.received("/push/sub1")
    topic = KEYED.idempotency_key.replace("-", "")
    assert first.headers["topic"] == repeat.headers["topic"] == topic
    assert len(topic) == 32  # RFC 8030: at most 32 base64url characters
    assert other.headers["topic"] == OTHER.idempotency_key.replace("-", "")
    docs = [json.loads(r.decrypted or b"{}") for r in (first, repeat, other)]
    assert [d["id"] for d in docs] == [KEYED.idempotency_key] * 2 + [OTHER.idempotency_key]
    assert {d["tag"] for d in docs} == {"alert-42"}  # one notification per alert


def test_a_message_without_a_key_is_keyed_by_its_content():
    assert MESSAGE.key() == MESSAGE.model_copy().key()
    assert MESSAGE.key() != MESSAGE.model_copy(update={"title": "other"}).key()
    assert KEYED.key() == KEYED.idempotency_key

"""The SSRF guard on user-supplied notification URLs: the address classes it refuses, and the
webhook and Web Push senders refusing (or, when allowed, reaching) a real loopback receiver
and never following a redirect."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from alerts.model import ChannelKind
from alerts.notify.channels import ChannelSenders, SendError
from alerts.notify.channels.guard import address_problem, check_public_url
from alerts.notify.channels.webhook import WebhookSender
from alerts.notify.channels.webpush import WebPushSender
from tests.support.notify import MESSAGE, new_vapid

# guard ----------------------------------------------------------------------------------

REFUSED = [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("https://127.1/", "loopback"),  # short form, as the resolver reads it
    ("https://2130706433/", "loopback"),  # 127.0.0.1 as one decimal number
    ("https://localhost/hook", "loopback"),
    ("https://[::1]:5432", "loopback"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://10.0.0.5/", "private"),
    ("https://172.16.3.4/", "private"),
    ("https://192.168.1.1/admin", "private"),
    ("https://[fc00::1]/", "private"),
    ("https://[fd12:3456::1]/", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://100.64.0.1/", "carrier-grade NAT"),
    ("https://100.127.255.254/", "carrier-grade NAT"),
    ("https://224.0.0.1/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://240.0.0.1/", "reserved"),
    ("https://255.255.255.255/", "reserved"),  # limited broadcast, inside 240.0.0.0/4
    ("https://198.18.0.1/", "private"),  # benchmarking range
    ("https://[::ffff:127.0.0.1]/", "loopback (IPv4 inside IPv6)"),
    ("https://[::ffff:169.254.169.254]/", "link-local"),
    ("https://[::ffff:10.0.0.5]/", "private (IPv4 inside IPv6)"),
    ("https://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 form of 169.254.169.254
    ("https://[2002:a00:5::1]/", "private (IPv4 inside IPv6)"),  # 6to4 form of 10.0.0.5
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_non_public_addresses_are_refused_for_good(url, reason):
    with pytest.raises(SendError) as err:
        check_public_url(url, "webhook")
    assert not err.value.retryable
    text = str(err.value)
    assert reason in text
    assert text.startswith("webhook: refused to send to")
    assert "ELDERCARE_NOTIFY__ALLOW_PRIVATE_TARGETS" in text  # what the operator can do


@pytest.mark.parametrize("url", ["https://8.8.8.8/hook", "http://1.1.1.1:8080/x?y=1",
                                 "https://[2606:4700:4700::1111]/push/abc",
                                 "https://[::ffff:8.8.8.8]/"])
def test_public_addresses_pass(url):
    check_public_url(url, "webhook")


@pytest.mark.parametrize(("address", "problem"), [
    ("8.8.8.8", None), ("2a00:1450:4001::200e", None), ("::ffff:8.8.4.4", None),
    ("127.0.0.1", "loopback"), ("169.254.169.254", "link-local"), ("100.64.0.0", "carrier"),
    ("fe80::1", "link-local"), ("fec0::1", "site-local"), ("::ffff:100.64.1.1", "carrier"),
    ("2001:db8::1", "private"),
])
def test_address_problem(address, problem):
    found = address_problem(ipaddress.ip_address(address))
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_a_name_that_does_not_resolve_is_retryable():
    with pytest.raises(SendError, match=r"cannot resolve host 'nowhere\.invalid'") as err:
        check_public_url("https://nowhere.invalid/hook", "webhook")
    assert err.value.retryable


@pytest.mark.parametrize(("url", "match"), [
    ("ftp://8.8.8.8/x", "not an http"), ("https:///x", "has no host"),
    ("https://8.8.8.8:99999/", "invalid URL"),
    # urllib3 would connect to 10.0.0.5; urlsplit sees a public-looking name
    ("https://10.0.0.5\\x.example.com/push", "backslash"),
    ("https://example.com/a b", "a space"), ("https://example.com/\x00", "control"),
    ("https://straße.example/hook", r"xn-- \(punycode\)"),  # IDNA 2003 vs 2008
])
def test_malformed_urls_are_refused_for_good(url, match):
    with pytest.raises(SendError, match=match) as err:
        check_public_url(url, "web push")
    assert not err.value.retryable


# senders against a real loopback receiver -----------------------------------------------

@pytest.fixture
def strict(settings):
    """The test settings with the guard on (the default outside tests)."""
    return settings.model_copy(update={"allow_private_targets": False})


def test_webhook_to_loopback_is_refused_by_default(receiver):
    with httpx.Client(timeout=2) as http, pytest.raises(SendError) as err:
        WebhookSender(http).send(receiver.url("/hook"), {}, MESSAGE)
    assert not err.value.retryable and "loopback" in str(err.value)
    assert receiver.received("/hook") == []  # nothing left the process


def test_channel_senders_follow_the_setting(receiver, settings, strict):
    refusing = ChannelSenders(strict)
    try:
        with pytest.raises(SendError, match="loopback") as err:
            refusing.senders[ChannelKind.WEBHOOK].send(receiver.url("/hook"), {}, MESSAGE)
        assert not err.value.retryable
    finally:
        refusing.close()
    assert receiver.received("/hook") == []
    allowing = ChannelSenders(settings)
    try:
        allowing.senders[ChannelKind.WEBHOOK].send(receiver.url("/hook"), {}, MESSAGE)
    finally:
        allowing.close()
    assert len(receiver.received("/hook")) == 1


def test_webhook_never_follows_a_redirect(receiver):
    receiver.script("/hook", (307, {"location": receiver.url("/inside")}))
    # even with a client that would follow redirects on its own
    with httpx.Client(timeout=2, follow_redirects=True) as http, \
            pytest.raises(SendError, match="redirects are not followed") as err:
        WebhookSender(http, allow_private_targets=True).send(receiver.url("/hook"), {}, MESSAGE)
    assert not err.value.retryable and "/inside" in str(err.value)
    assert len(receiver.received("/hook")) == 1
    assert receiver.received("/inside") == []


def test_webpush_to_loopback_is_refused_by_default(receiver, settings, strict):
    sub = receiver.new_subscription()
    with pytest.raises(SendError, match="web push: refused") as err:
        WebPushSender(strict, new_vapid()).send(sub.endpoint, sub.secret, MESSAGE)
    assert not err.value.retryable
    assert receiver.received("/push/sub1") == []
    WebPushSender(settings, new_vapid()).send(sub.endpoint, sub.secret, MESSAGE)
    (req,) = receiver.received("/push/sub1")
    assert req.vapid_ok and req.decrypted is not None


def test_webpush_never_follows_a_redirect(receiver, settings):
    sub = receiver.new_subscription()
    inside = receiver.new_subscription("inside")
    receiver.script("/push/sub1", (308, {"location": inside.endpoint}))
    with pytest.raises(SendError, match="redirects are not followed") as err:
        WebPushSender(settings, new_vapid()).send(sub.endpoint, sub.secret, MESSAGE)
    assert not err.value.retryable
    assert len(receiver.received("/push/sub1")) == 1
    assert receiver.received("/push/inside") == []

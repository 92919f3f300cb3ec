"""Channel settings checks (pure): what each kind of notification channel may be set to."""

from __future__ import annotations

import base64
from datetime import time

import pytest

from alerts.model import ChannelKind
from alerts.notify.channels.validate import (
    P256DH_BYTES,
    PERSONAL_KINDS,
    SITE_KINDS,
    UNSIGNED_KIND_ERROR,
    check_email,
    check_kind,
    check_push_key,
    check_quiet_hours,
    check_secret,
    check_subscription,
    check_target,
    check_timezone,
    check_url,
    parse_hhmm,
)


@pytest.mark.parametrize("url", ["https://h.example/hook", " https://h.example/x?a=1 ",
                                 "http://localhost:8080/hook", "http://127.0.0.1/x"])
def test_urls_that_are_accepted(url):
    assert check_url(url) == url.strip()


@pytest.mark.parametrize(("url", "problem"), [
    ("http://h.example/hook", "must start with https://"),
    ("https://user:pw@h.example/", "user name or password"),
    ("https://10.0.0.5\\x.example.com/", "backslash"),
    ("https://bücher.example/", "non-ASCII"),
    ("https://h.example:99999/", "not a valid URL"),
    ("https:///path", "full URL"),
])
def test_urls_that_are_refused(url, problem):
    with pytest.raises(ValueError, match=problem):
        check_url(url)


def test_each_kind_takes_its_own_target():
    assert check_target(ChannelKind.EMAIL, " a@b.example ") == "a@b.example"
    assert check_target(ChannelKind.WECOM, "https://h.example/x") == "https://h.example/x"
    assert check_target(ChannelKind.WEBPUSH, None) is None
    assert check_target(None, "anything") == "anything"  # the kind itself was refused
    with pytest.raises(ValueError, match="leave empty for webpush"):
        check_target(ChannelKind.WEBPUSH, "https://push.example/1")
    with pytest.raises(ValueError, match="a email channel needs an e-mail address"):
        check_target(ChannelKind.EMAIL, " ")
    with pytest.raises(ValueError, match="needs an https:// URL"):
        check_target(ChannelKind.DINGTALK, None)
    with pytest.raises(ValueError, match="not a valid e-mail address"):
        check_email("no-at-sign")


def test_only_webpush_takes_a_subscription_and_only_signed_kinds_a_secret():
    check_subscription(ChannelKind.WEBPUSH, present=True)
    check_subscription(ChannelKind.EMAIL, present=False)
    with pytest.raises(ValueError, match="needs the browser's PushSubscription"):
        check_subscription(ChannelKind.WEBPUSH, present=False)
    with pytest.raises(ValueError, match="only webpush channels take a subscription"):
        check_subscription(ChannelKind.WECOM, present=True)
    check_secret(ChannelKind.DINGTALK, present=True)
    check_secret(ChannelKind.WECOM, present=False)
    with pytest.raises(ValueError, match=UNSIGNED_KIND_ERROR):
        check_secret(ChannelKind.WECOM, present=True)


def test_sites_may_add_robots_only():
    assert check_kind("email", PERSONAL_KINDS) == "email"
    with pytest.raises(ValueError, match="choose one of webhook, wecom, dingtalk"):
        check_kind("email", SITE_KINDS)


def test_push_keys_quiet_hours_and_time_zones():
    key = base64.urlsafe_b64encode(bytes(P256DH_BYTES)).decode().rstrip("=")
    assert check_push_key(key, P256DH_BYTES, "p256dh") == key
    with pytest.raises(ValueError, match="p256dh must encode 65 bytes"):
        check_push_key(key[:-8], P256DH_BYTES, "p256dh")
    with pytest.raises(ValueError, match="base64url"):
        check_push_key("a+b/", P256DH_BYTES, "p256dh")
    assert parse_hhmm("22:05") == time(22, 5)
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm("24:00")
    check_quiet_hours(time(22), time(6))
    check_quiet_hours(None, None)
    with pytest.raises(ValueError, match="both quiet_start and quiet_end"):
        check_quiet_hours(time(22), None)
    with pytest.raises(ValueError, match="must differ"):
        check_quiet_hours(time(22), time(22))
    assert check_timezone("Asia/Shanghai") == "Asia/Shanghai"
    with pytest.raises(ValueError, match="unknown time zone"):
        check_timezone("Mars/Olympus")

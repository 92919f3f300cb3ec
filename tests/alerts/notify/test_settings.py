"""NotifySettings validation and the backoff schedule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alerts.notify.settings import NotifySettings
from eldercare.settings import Settings


def test_defaults_are_valid():
    s = NotifySettings()
    assert s.smtp_host is None and s.max_attempts == 8


def test_backoff_doubles_up_to_the_cap():
    s = NotifySettings(retry_base_s=5, retry_cap_s=30)
    assert [s.backoff_s(n) for n in range(1, 6)] == [5, 10, 20, 30, 30]


def test_lease_must_outlast_a_send():
    with pytest.raises(ValidationError, match="lease_s"):
        NotifySettings(http_timeout_s=30, lease_s=20)


def test_webpush_subject_must_be_mailto_or_https():
    NotifySettings(webpush_subject="https://care.example.org")
    with pytest.raises(ValidationError, match="webpush_subject"):
        NotifySettings(webpush_subject="ops@example.org")


def test_public_url_trailing_slash_dropped():
    assert NotifySettings(public_url="https://care.example.org/").public_url == (
        "https://care.example.org")


def test_private_targets_are_refused_unless_the_operator_allows_them(monkeypatch):
    assert NotifySettings().allow_private_targets is False
    monkeypatch.setenv("ELDERCARE_NOTIFY__ALLOW_PRIVATE_TARGETS", "true")
    assert Settings().notify.allow_private_targets is True

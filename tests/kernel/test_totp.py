"""TOTP codes at chosen instants: the window, a wrong code, the step returned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kernel.totp import code_at, new_secret, provisioning_uri, totp_step

T = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)


def test_a_code_is_accepted_within_one_step_and_names_its_step():
    secret = new_secret()
    code = code_at(secret, T)
    step = int(T.timestamp()) // 30
    assert totp_step(secret, code, T) == step
    assert totp_step(secret, code, T + timedelta(seconds=30)) == step
    assert totp_step(secret, code, T - timedelta(seconds=30)) == step
    assert totp_step(secret, code, T + timedelta(seconds=90)) is None


def test_malformed_or_wrong_codes_are_refused():
    secret = new_secret()
    good = code_at(secret, T)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for code in ("", "12345", "1234567", "abcdef", "１２３４５６", wrong):
        assert totp_step(secret, code, T) is None


def test_the_enrolment_uri_names_the_account_and_issuer():
    uri = provisioning_uri("JBSWY3DPEHPK3PXP", "duty-north")
    assert uri.startswith("otpauth://totp/Eldercare:duty-north?")
    assert "secret=JBSWY3DPEHPK3PXP" in uri

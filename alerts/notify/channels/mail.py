"""E-mail through the configured SMTP server (optionally STARTTLS and login).

The `Message-ID` is made from the message's idempotency key, so a repeat (delivery is at least
once) has the same id and mail stores and clients that deduplicate by it show it once."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from alerts.notify.channels.base import SendError
from alerts.notify.messages import BRAND, Message
from alerts.notify.settings import NotifySettings


def message_id(message: Message, sender: str) -> str:
    """`<key@domain of the From address>`: stable across repeats, unique per message."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "eldercare.invalid"
    return f"<{message.key()}@{domain}>"


def build_email(message: Message, sender: str, recipient: str, public_url: str | None
                ) -> EmailMessage:
    """The e-mail for a message."""
    mail = EmailMessage()
    mail["Subject"] = f"[{BRAND}] {message.title}"
    mail["From"] = sender
    mail["To"] = recipient
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = message_id(message, sender)
    if message.severity is not None and message.severity.rank >= 3:
        mail["Importance"] = "high"
    mail.set_content(message.text(public_url) + "\n")
    return mail


def _smtp_error(exc: Exception) -> SendError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return SendError(f"e-mail refused: {exc.recipients}",
                         retryable=all(400 <= c < 500 for c in codes))
    if isinstance(exc, smtplib.SMTPResponseException):
        return SendError(f"e-mail: SMTP {exc.smtp_code} {exc.smtp_error!r}",
                         retryable=exc.smtp_code < 500)
    return SendError(f"e-mail: {type(exc).__name__}: {exc}", retryable=True)


class EmailSender:
    """Sends to the address in the channel target (no secret)."""

    def __init__(self, settings: NotifySettings) -> None:
        self._settings = settings

    def send(self, target: str, secret: Mapping[str, Any], message: Message) -> None:
        """Deliver one e-mail."""
        s = self._settings
        if not s.smtp_host:
            raise SendError("e-mail is not configured (notify.smtp_host)", retryable=False)
        if "@" not in target:
            raise SendError(f"{target!r} is not an e-mail address", retryable=False)
        mail = build_email(message, s.smtp_from, target, s.public_url)
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
                self._login(smtp)
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise _smtp_error(exc) from exc

    def _login(self, smtp: smtplib.SMTP) -> None:
        s = self._settings
        if s.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if s.smtp_user:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            smtp.login(s.smtp_user, password)

"""Notification settings: SMTP, Web Push, group robots, retries and the dispatcher's pace.

The platform `Settings` nests this model (e.g. `ELDERCARE_NOTIFY__SMTP_HOST`, `[notify]` in TOML).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_SUBJECT_RE = re.compile(r"\A(mailto:[^@\s]+@\S+|https://\S+)\Z")


class NotifySettings(BaseModel):
    """How notifications are sent and retried."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    smtp_host: str | None = Field(default=None,
                                  description="SMTP server for e-mail; unset = e-mail disabled.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = Field(default=None, description="Login name, if the server needs one.")
    smtp_password: SecretStr | None = None
    smtp_from: str = Field(default="eldercare@localhost", description="Sender address.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection (STARTTLS).")
    smtp_timeout_s: float = Field(default=10.0, gt=0)

    webpush_subject: str = Field(
        default="mailto:admin@localhost",
        description="VAPID contact (mailto: or https: URL) that push services may use.")
    webpush_ttl_s: int = Field(default=3600, ge=0,
                               description="How long a push service keeps an undelivered push.")

    wecom_base_url: str = Field(default="https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
                                description="WeCom group robot send URL (without ?key=).")
    dingtalk_base_url: str = Field(default="https://oapi.dingtalk.com/robot/send",
                                   description="DingTalk robot send URL (without ?access_token=).")
    http_timeout_s: float = Field(default=10.0, gt=0, description="Per HTTP request.")
    allow_private_targets: bool = Field(
        default=False,
        description="Let webhooks and push endpoints (URLs that users enter) reach loopback, "
                    "private, link-local and other non-public addresses. Off, such a target "
                    "is refused at send time (protection against server-side request "
                    "forgery); turn on only for receivers on your own network.")
    public_url: str | None = Field(
        default=None, description="Web app address (https://care.example.org); makes the "
                                  "/alerts/{id} links in messages absolute.")

    demo_inbox_url: str | None = Field(
        default=None, description="Set by `eldercare demo` only: where its local receivers "
                                  "list what they got (a link on the Sent notifications page).")

    retry_base_s: float = Field(default=5.0, gt=0, description="First retry delay.")
    retry_cap_s: float = Field(default=600.0, gt=0, description="Longest retry delay.")
    max_attempts: int = Field(default=8, ge=1, description="Then the message is 'failed'.")
    poll_s: float = Field(default=5.0, gt=0, description="Outbox poll interval besides NOTIFY.")
    lease_s: float = Field(default=120.0, gt=0,
                           description="A claimed message is retried after this if the "
                                       "dispatcher died while sending it.")
    batch_size: int = Field(default=50, ge=1)
    workers: int = Field(default=4, ge=1, description="Messages sent in parallel.")
    all_clear_interval_s: float = Field(default=10.0, gt=0,
                                        description="How often finished alerts are checked "
                                                    "for all-clear messages.")
    mqtt_publish_timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("webpush_subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if not _SUBJECT_RE.match(value):
            raise ValueError("webpush_subject must be a mailto: address or an https: URL")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> NotifySettings:
        slowest = max(self.http_timeout_s, self.smtp_timeout_s, self.mqtt_publish_timeout_s)
        if self.lease_s <= slowest:
            raise ValueError("lease_s must be longer than the slowest send timeout")
        if self.retry_cap_s < self.retry_base_s:
            raise ValueError("retry_cap_s must be at least retry_base_s")
        return self

    def backoff_s(self, attempts: int) -> float:
        """Delay before the next try after `attempts` failed tries (exponential, capped)."""
        return float(min(self.retry_cap_s, self.retry_base_s * 2 ** max(0, attempts - 1)))

"""Channel senders, one per ChannelKind, behind one interface: `send(target, secret, message)`
raising `SendError(retryable=...)`."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from py_vapid import Vapid02

from alerts.model import ChannelKind
from alerts.notify.channels.base import ChannelGoneError, Sender, SendError
from alerts.notify.channels.mail import EmailSender
from alerts.notify.channels.mqtt import MqttCommandSender
from alerts.notify.channels.robots import DingTalkSender, WeComSender
from alerts.notify.channels.webhook import WebhookSender
from alerts.notify.channels.webpush import WebPushSender
from alerts.notify.settings import NotifySettings
from kernel.endpoint import MqttEndpoint

__all__ = ["ChannelGoneError", "ChannelSenders", "SendError", "Sender"]


class ChannelSenders:
    """The senders a process uses, sharing one HTTP client; `close()` releases them."""

    def __init__(self, settings: NotifySettings, *, vapid: Vapid02 | None = None,
                 mqtt: MqttEndpoint | None = None) -> None:
        self.http = httpx.Client(timeout=httpx.Timeout(settings.http_timeout_s),
                                 follow_redirects=False)
        public = settings.public_url
        self._mqtt = (MqttCommandSender(mqtt, settings.mqtt_publish_timeout_s)
                      if mqtt is not None else None)
        senders: dict[ChannelKind, Sender] = {
            ChannelKind.EMAIL: EmailSender(settings),
            ChannelKind.WEBHOOK: WebhookSender(
                self.http, public, allow_private_targets=settings.allow_private_targets),
            ChannelKind.WECOM: WeComSender(self.http, settings.wecom_base_url, public),
            ChannelKind.DINGTALK: DingTalkSender(self.http, settings.dingtalk_base_url, public),
        }
        if vapid is not None:
            senders[ChannelKind.WEBPUSH] = WebPushSender(settings, vapid)
        if self._mqtt is not None:
            senders[ChannelKind.MQTT] = self._mqtt
        self.senders: Mapping[ChannelKind, Sender] = senders

    def close(self) -> None:
        """Close the HTTP client and the MQTT connection."""
        self.http.close()
        if self._mqtt is not None:
            self._mqtt.close()

"""Fixtures for notification tests: local protocol receivers, an SMTP server, a seeded site."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from alerts.notify.settings import NotifySettings
from eldercare.embedded import free_port
from tests.alerts.notify.receivers import Receiver
from tests.alerts.notify.seed import World, seed_world


class Inbox:
    """aiosmtpd handler keeping every envelope; while `gate` is set to an unset Event, the
    answer to DATA waits for it (a slow server; the mail is kept only once answered)."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.gate: threading.Event | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.gate is not None:
            await asyncio.to_thread(self.gate.wait, 10)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def settings(receiver: Receiver) -> NotifySettings:
    """Fast settings pointed at the local receivers (on loopback, hence private targets)."""
    return NotifySettings(
        wecom_base_url=receiver.url("/wecom"), dingtalk_base_url=receiver.url("/dingtalk"),
        webpush_subject="mailto:ops@example.org", public_url="https://care.example.org",
        http_timeout_s=2, smtp_timeout_s=2, mqtt_publish_timeout_s=2, lease_s=5,
        retry_base_s=0.05, retry_cap_s=0.2, max_attempts=3, poll_s=0.2,
        all_clear_interval_s=0.1, allow_private_targets=True)


@pytest.fixture
def world(clean_db: str) -> World:
    return seed_world(clean_db)

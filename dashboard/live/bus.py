"""The internal alert bus relayed into the live feed: one paho client (own thread) per process.

The client subscribes to the alert bus (`alerts.bus`), so a new alert reaches the screens as a
`pending` event even before, or without, the database; and to the retained part states
(`gateway.presence`: pipeline, jobs), so the duty screen says which parts are down and since
when. Paho calls back on its network thread; every callback is handed to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from alerts.bus import BUS_FILTER, AlertEvent, decode_event
from gateway.mqttclient import service_client
from gateway.presence import PARTS_FILTER, PARTS_ROOT, PartState, read_state
from kernel.endpoint import MqttEndpoint

logger = logging.getLogger(__name__)


class BusBridge:
    """The internal alert bus relayed into asyncio: one paho client (own thread) per process."""

    def __init__(self, endpoint: MqttEndpoint, on_event: Callable[[AlertEvent], None],
                 on_state: Callable[[bool], None], max_delay_s: float,
                 on_part: Callable[[PartState, bool], None] | None = None) -> None:
        self._endpoint = endpoint
        self._on_event = on_event
        self._on_part = on_part
        self._on_state = on_state
        self._max_delay = max(1, int(max_delay_s))
        self._loop: asyncio.AbstractEventLoop | None = None
        client_id = f"eldercare-web-{socket.gethostname()[:20]}-{os.getpid()}-" \
                    f"{secrets.token_hex(3)}"
        self._client = service_client(endpoint, client_id, clean_session=True,
                                      reconnect_max_s=self._max_delay)
        self._client.on_connect = self._connected
        self._client.on_subscribe = self._subscribed
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._message

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connect in the background (retrying with backoff until the broker answers)."""
        self._loop = loop
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()

    async def stop(self) -> None:
        """Disconnect and join the network thread."""
        self._loop = None  # no more callbacks into the event loop
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        """Run `fn(*args)` on the event loop (from paho's thread)."""
        loop = self._loop
        if loop is None:
            return
        # RuntimeError: the loop closed while the network thread was stopping.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn, *args)

    def _connected(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                   _props: Any) -> None:
        if reason.is_failure:
            logger.error("alert bus: the broker at %s:%d refused the login of %r: %s",
                         self._endpoint.host, self._endpoint.port, self._endpoint.username,
                         reason)
            return
        client.subscribe([(BUS_FILTER, 1), (PARTS_FILTER, 1)])

    def _subscribed(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any,
                    _props: Any) -> None:
        if any(code.is_failure for code in reasons):
            logger.error("alert bus: the broker refused the subscription to %s; the service "
                         "account needs read access to eldercare/internal/#", BUS_FILTER)
            return
        logger.info("alert bus: subscribed to %s", BUS_FILTER)
        self._call(self._on_state, True)

    def _disconnected(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                      _props: Any) -> None:
        if self._loop is not None:
            logger.warning("alert bus: disconnected (%s); reconnecting", reason)
        self._call(self._on_state, False)

    def _message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.startswith(PARTS_ROOT + "/"):
            if not msg.payload:
                return  # an operator cleared a retired part's retained state
            state = read_state(msg.topic, bytes(msg.payload))
            if state is not None and self._on_part is not None:
                self._call(self._on_part, state, bool(msg.retain))
            return
        try:
            event = decode_event(bytes(msg.payload))
        except ValidationError as exc:
            logger.warning("alert bus: unreadable event on %s: %s", msg.topic,
                           exc.errors(include_url=False)[:1])
            return
        self._call(self._on_event, event)

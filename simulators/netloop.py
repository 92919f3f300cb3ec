"""Many paho clients driven from one thread: a selector for their sockets, a heap for timers.

Every device keeps its own MQTT connection, credentials and client id (the security model
asks for it), but thousands of them share one network thread instead of one thread each.
paho's external-loop interface does the protocol work (`loop_read`, `loop_write`,
`loop_misc`); its socket callbacks tell us which sockets to watch. Everything that touches
the clients (publishing included) must run in the thread that calls `poll`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import random
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

logger = logging.getLogger(__name__)

MISC_INTERVAL_S = 1.0
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 2.0

_RW = selectors.EVENT_READ | selectors.EVENT_WRITE


class NetLoop:
    """The single network thread's loop: sockets, timers, keepalives, reconnects."""

    def __init__(self, now: Callable[[], float] = time.monotonic, seed: int = 0) -> None:
        self.now = now
        self._sel = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()
        self._clients: dict[mqtt.Client, Callable[[], bool]] = {}
        self._targets: dict[mqtt.Client, tuple[str, int, int]] = {}
        self._rng = random.Random(seed)
        self._next_misc = 0.0
        self.published = 0
        self.acked = 0

    @property
    def inflight(self) -> int:
        """QoS 1 messages published and not yet acknowledged by the broker."""
        return self.published - self.acked

    def __len__(self) -> int:
        return len(self._clients)

    # --- clients ---------------------------------------------------------------------------

    def attach(self, client: mqtt.Client, wants_online: Callable[[], bool]) -> None:
        """Let this loop drive `client`; it reconnects while `wants_online()` is true."""
        client.on_socket_open = self._on_open
        client.on_socket_close = self._on_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._clients[client] = wants_online

    def open(self, client: mqtt.Client, host: str, port: int, keepalive: int) -> None:
        """Connect (or reconnect) now; on failure, retry later with jitter."""
        self._targets[client] = (host, port, keepalive)
        try:
            client.connect(host, port, keepalive=keepalive)
        except OSError as exc:
            logger.debug("connect to %s:%d failed: %s", host, port, exc)
            self._retry(client)

    def detach(self, client: mqtt.Client) -> None:
        """Forget a client (after it disconnected)."""
        self._clients.pop(client, None)
        self._targets.pop(client, None)
        sock = client.socket()
        if isinstance(sock, socket.socket):
            self._unregister(sock)

    def _retry(self, client: mqtt.Client) -> None:
        delay = self._rng.uniform(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self.call_later(delay, lambda: self._reconnect(client))

    def _reconnect(self, client: mqtt.Client) -> None:
        wants = self._clients.get(client)
        target = self._targets.get(client)
        if wants is None or target is None or not wants() or client.socket() is not None:
            return
        self.open(client, *target)

    # --- paho socket callbacks ---------------------------------------------------------

    def _on_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._register(sock, selectors.EVENT_READ, client)

    def _on_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._unregister(sock)
        wants = self._clients.get(client)
        if wants is not None and wants():
            self._retry(client)

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._register(sock, _RW, client)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._register(sock, selectors.EVENT_READ, client)

    def _register(self, sock: Any, events: int, client: mqtt.Client) -> None:
        try:
            self._sel.modify(sock, events, client)
        except KeyError:
            with contextlib.suppress(ValueError, OSError):  # already closed
                self._sel.register(sock, events, client)
        except (ValueError, OSError):
            pass

    def _unregister(self, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._sel.unregister(sock)

    # --- timers ------------------------------------------------------------------------

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run `fn` in the loop thread after `delay` seconds."""
        heapq.heappush(self._timers, (self.now() + delay, next(self._order), fn))

    # --- running ------------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> None:
        """Wait at most `timeout` s for socket activity, handle it, run due timers."""
        if self._timers:
            timeout = min(timeout, max(0.0, self._timers[0][0] - self.now()))
        for key, mask in self._sel.select(max(timeout, 0.0)):
            client: mqtt.Client = key.data
            if mask & selectors.EVENT_READ:
                client.loop_read()
            if mask & selectors.EVENT_WRITE and client.socket() is not None:
                client.loop_write()
        now = self.now()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            try:
                fn()
            except Exception:
                logger.exception("network loop task failed")
        if now >= self._next_misc:
            self._next_misc = now + MISC_INTERVAL_S
            for client in list(self._clients):
                client.loop_misc()

    def run_until(self, done: Callable[[], bool], timeout: float, step: float = 0.02
                  ) -> bool:
        """Poll until `done()` or `timeout` seconds passed; return `done()`."""
        deadline = self.now() + timeout
        while not done():
            left = deadline - self.now()
            if left <= 0:
                return done()
            self.poll(min(step, left))
        return True

    def close(self) -> None:
        """Close the selector (the clients must have disconnected)."""
        self._clients.clear()
        self._targets.clear()
        self._sel.close()

"""The raw ASGI response of a live stream: one subscriber's queue, written until either side ends.

Written by hand rather than as a streaming body: it ends as soon as its subscriber is closed
server-side (revocation, overflow, shutdown), still sending the `close` event within a grace
period, or as soon as the client leaves, whichever comes first.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import status
from starlette.responses import Response
from starlette.types import Message, Receive, Send
from starlette.types import Scope as AsgiScope

from dashboard.live.feed import AlertStream
from dashboard.live.hub import Subscriber
from dashboard.live.sse import close_event
from kernel.i18n import DEFAULT_LANGUAGE, say

logger = logging.getLogger(__name__)


class EventStreamResponse(Response):
    """A `text/event-stream` response fed by one subscriber until it or the client ends it."""

    media_type = "text/event-stream"

    def __init__(self, stream: AlertStream, sub: Subscriber, lang: str = DEFAULT_LANGUAGE
                 ) -> None:
        self.status_code = status.HTTP_200_OK
        self._lang = lang  # the reader's: the closing reason is said in it
        self.background = None
        self._stream = stream
        self._sub = sub
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        self._stream.attach(self._sub)
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            await self._pump(receive, send)
        finally:
            self._stream.detach(self._sub)

    async def _pump(self, receive: Receive, send: Send) -> None:
        """Send until the client leaves or the stream is closed (then finish within a grace)."""
        sender = asyncio.create_task(self._send_all(send))
        gone = asyncio.create_task(_client_gone(receive))
        closed = asyncio.create_task(self._sub.wait_closed())
        tasks = (sender, gone, closed)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if closed.done() and not (sender.done() or gone.done()):
                await asyncio.wait((sender, gone), timeout=self._stream.settings.close_grace_s,
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if sender.done() and not sender.cancelled() and sender.exception() is not None:
            logger.error("alert stream to %s failed", self._sub.user.username,
                         exc_info=sender.exception())

    async def _send_all(self, send: Send) -> None:
        sub = self._sub
        try:
            while (chunk := await sub.take(self._stream.settings.heartbeat_s)) is not None:
                sub.sending = True
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sub.sending = False
            reason = say(sub.close_reason, self._lang) if sub.close_reason else None
            farewell = close_event(reason, sub.close_action)
            await send({"type": "http.response.body", "body": farewell, "more_body": False})
        except OSError:  # the client went away mid-write
            sub.close("client disconnected")


async def _client_gone(receive: Receive) -> None:
    """Return when the client disconnects."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


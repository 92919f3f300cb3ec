"""Which parts of the platform are running: a retained MQTT status per process, with a Last
Will that the broker publishes when the process dies.

Each long-running process (a pipeline, the jobs) holds one small MQTT connection that
publishes `{"part": "pipeline", "up": true, "since": ...}` retained on
`eldercare/internal/v1/parts/<part>` when it connects, and registers the Last Will
`{"up": false, "reason": "lost"}` on the same topic. A crash, a SIGKILL or a lost host makes
the broker publish the will; a clean stop publishes `{"up": false, "reason": "stopped"}` itself.
The web app subscribes to these topics and shows the duty screen which parts are down and
since when (docs/architecture.md, "Supervision"). This works the same under `eldercare serve`
and under systemd, where no common parent process knows every part.

The connection uses a fixed client id per part: a restarted process takes the old
connection over, so an old will can never arrive after the new "up".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ValidationError

from gateway.mqttclient import service_client
from gateway.schema import INTERNAL_TOPIC_ROOT
from kernel.endpoint import MqttEndpoint

logger = logging.getLogger(__name__)

PARTS_ROOT = f"{INTERNAL_TOPIC_ROOT}/v1/parts"
PARTS_FILTER = f"{PARTS_ROOT}/+"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class PartState(BaseModel):
    """One part's last known state. `since` is when it came up, or (down) when it stopped;
    a Last Will cannot know when it will be sent, so a lost part's `since` is None and the
    receiver stamps it with the time the will arrived."""

    part: str
    up: bool
    since: datetime | None = None
    reason: str = ""


def part_name(kind: str, instance: str = "main") -> str:
    """`pipeline` for the default instance, `pipeline-north` for another: a topic level."""
    name = kind if instance == "main" else f"{kind}-{instance}"
    return _UNSAFE.sub("_", name)[:64]


def part_topic(part: str) -> str:
    """The retained topic of a part's state."""
    return f"{PARTS_ROOT}/{part}"


def decode_state(payload: bytes) -> PartState:
    """Parse a part state (raises ValidationError on anything else)."""
    return PartState.model_validate_json(payload)


class Presence:
    """Announces this process as up while it runs (see the module docstring)."""

    def __init__(self, endpoint: MqttEndpoint, part: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.part = part
        self._endpoint = endpoint
        self._clock = clock
        self._client = service_client(endpoint, f"eldercare-part-{part}", clean_session=True,
                                      reconnect_max_s=10)
        self._client.will_set(part_topic(part), self._state(False, None, "lost"), qos=1,
                              retain=True)
        self._client.on_connect = self._connected

    def _state(self, up: bool, since: datetime | None, reason: str = "") -> bytes:
        return PartState(part=self.part, up=up, since=since, reason=reason
                         ).model_dump_json().encode()

    def start(self) -> None:
        """Connect in the background; retries until the broker answers."""
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=15)
        self._client.loop_start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Say "stopped" (a clean stop is not a crash) and disconnect."""
        if self._client.is_connected():
            info = self._client.publish(part_topic(self.part),
                                        self._state(False, self._clock(), "stopped"),
                                        qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except RuntimeError as exc:  # the connection dropped meanwhile: the will says it
                logger.info("presence: could not say %s stopped: %s", self.part, exc)
        self._client.disconnect()
        self._client.loop_stop()

    def _connected(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                   _props: Any) -> None:
        if reason.is_failure:
            logger.error("presence: the broker refused %s: %s", self.part, reason)
            return
        client.publish(part_topic(self.part), self._state(True, self._clock()), qos=1,
                       retain=True)


def read_state(topic: str, payload: bytes) -> PartState | None:
    """A part state from a message on PARTS_FILTER, or None (logged) when unreadable."""
    try:
        return decode_state(payload)
    except ValidationError as exc:
        logger.warning("parts: unreadable state on %r: %s", topic[:200],
                       exc.errors(include_url=False)[:1])
        return None

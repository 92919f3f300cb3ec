"""A minimal raw MQTT device for tests (real broker, the device's own credentials), and
forgetting a device's traces on the session broker."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.provisioning import DeviceCredentials
from gateway.schema import Channel, topic_for


class RawDevice:
    """Connects with a device's credentials and publishes raw bytes."""

    def __init__(self, creds: DeviceCredentials, port: int, username: str | None = None,
                 password: str | None = None, client_id: str | None = None) -> None:
        self.creds = creds
        self.connected = threading.Event()
        self.refused = threading.Event()
        self.messages: list[mqtt.MQTTMessage] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or creds.device_id)
        self.client.username_pw_set(username or creds.username, password or creds.password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.refused.set()
        else:
            self.connected.set()

    def publish(self, channel: Channel | str, payload: bytes, site: str | None = None,
                device_id: str | None = None, qos: int = 1) -> None:
        """Publish on a channel of this (or, to test ACLs, another) device's topic."""
        topic = topic_for(site or self.creds.site, device_id or self.creds.device_id, channel)
        self.client.publish(topic, payload, qos=qos).wait_for_publish(5)

    def publish_topic(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish raw on any topic."""
        self.client.publish(topic, payload, qos=qos).wait_for_publish(5)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def forget_device(creds: DeviceCredentials, port: int) -> None:
    """Remove a device's retained status and persistent session from the session broker.

    Otherwise a pipeline started by a later test (on an emptied database) receives the
    retained status of a device it does not know and dead-letters it.
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=creds.device_id,
                         clean_session=True)
    client.username_pw_set(creds.username, creds.password)
    try:
        client.connect("127.0.0.1", port)
        client.loop_start()
        info = client.publish(topic_for(creds.site, creds.device_id, Channel.STATUS), b"",
                              qos=1, retain=True)
        info.wait_for_publish(5)
    except (OSError, RuntimeError, ValueError):
        pass
    finally:
        client.disconnect()
        client.loop_stop()

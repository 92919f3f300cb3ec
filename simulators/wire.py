"""The device contract as a (simulated) device speaks it: its MQTT client, the time resolution
of `ts`, batching within the size limits, reading commands, waiting for a PUBACK.

Pure helpers and the one way a device makes its paho client, apart from what a device
*does* (simulators/devices.py), so both read in one sitting.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gateway.provisioning import DeviceCredentials
from gateway.schema import (
    LAST_WILL_PAYLOAD,
    MAX_PAYLOAD_BYTES,
    MAX_SAMPLES,
    BedReading,
    Channel,
    Command,
    PayloadError,
    decode_command,
    encode,
    topic_for,
)

QOS = 1
# Worst case of `{"ts":<15 digits>,"seq":<19 digits>,"samples":[` ... `]}` around the samples.
_BATCH_ENVELOPE_BYTES = 64


def device_time(t: datetime) -> datetime:
    """Truncate to whole milliseconds, the resolution of `ts` on the wire."""
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


def parse_command(payload: bytes) -> Command | None:
    """Read a command as a device should: unknown fields ignored, unknown types skipped."""
    try:
        return decode_command(payload)
    except PayloadError:
        return None


def chunk_samples(samples: Iterable[BedReading], max_samples: int = MAX_SAMPLES,
                  max_bytes: int = MAX_PAYLOAD_BYTES) -> list[list[BedReading]]:
    """Split readings into batches within the contract's sample-count and payload-size limits."""
    chunks: list[list[BedReading]] = []
    current: list[BedReading] = []
    size = _BATCH_ENVELOPE_BYTES
    for sample in samples:
        n = len(encode(sample)) + 1  # the sample and its comma
        if current and (len(current) >= max_samples or size + n > max_bytes):
            chunks.append(current)
            current, size = [], _BATCH_ENVELOPE_BYTES
        current.append(sample)
        size += n
    if current:
        chunks.append(current)
    return chunks


DEVICE_RECONNECT_MAX_S = 60


def device_client(creds: DeviceCredentials) -> mqtt.Client:
    """A device's paho client, not yet connected: the one way a (simulated) device makes it.

    Its own account, its device id as client id, MQTT 3.1.1 (what the cheap devices of the
    contract speak) with a persistent session (`clean_session=False`: commands queued while
    it was offline arrive when it is back), the retained Last Will on its status topic, and
    reconnect delays doubling from 1 s to 60 s on refusals and drops. Services make theirs
    with `gateway.mqttclient.service_client`.
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=creds.device_id,
                         clean_session=False, protocol=MQTTProtocolVersion.MQTTv311)
    client.username_pw_set(creds.username, creds.password)
    client.will_set(topic_for(creds.site, creds.device_id, Channel.STATUS), LAST_WILL_PAYLOAD,
                    qos=QOS, retain=True)
    client.reconnect_delay_set(1, DEVICE_RECONNECT_MAX_S)
    return client


def wait_published(info: mqtt.MQTTMessageInfo, timeout: float) -> bool:
    """Wait until a QoS 1 message was acknowledged by the broker; False on timeout or failure."""
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError):
        return False
    return info.is_published()

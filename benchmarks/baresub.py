"""The raw limit for the ingest benchmark: a bare paho subscriber that only receives and
JSON-decodes (`python -m benchmarks.baresub URL FILTER STATS_FILE CLIENT_ID [buffered]`).

With `buffered` it uses the pipeline's receive path instead of stock paho: BufferedClient
(chunked reads) with manual acks sent 1,000 at a time (a reference figure, not the limit
the issue's targets are stated against).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.mqttclient import BufferedClient
from kernel.endpoint import MqttEndpoint
from kernel.procstats import cpu_seconds, peak_rss_mib, write_json


def _report(path: Path, state: dict[str, Any]) -> None:
    elapsed = (state["last"] - state["first"]) if state["first"] is not None else 0.0
    write_json(path, {
        "ready": True, "count": state["count"], "seconds": elapsed,
        "cpu_s": cpu_seconds() - state.get("cpu0", cpu_seconds()), "peak_rss_mib": peak_rss_mib(),
    })


def main(argv: list[str]) -> int:
    """Subscribe (persistent session, QoS 1), decode every message, write stats on SIGTERM."""
    url, topic_filter, stats_file, client_id = argv[:4]
    buffered = argv[4:] == ["buffered"]
    ep = MqttEndpoint.from_url(url)
    state: dict[str, Any] = {"count": 0, "first": None, "last": None, "subscribed": False}
    client = (BufferedClient if buffered else mqtt.Client)(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=buffered)
    unacked: list[int] = []
    client.username_pw_set(ep.username, ep.password)

    def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        c.subscribe(topic_filter, qos=1)

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: Any, p: Any) -> None:
        state["subscribed"] = True
        write_json(Path(stats_file), {"ready": True})

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        json.loads(msg.payload)
        now = time.monotonic()
        if state["first"] is None:
            state["first"] = now
            state["cpu0"] = cpu_seconds()
        state["last"] = now
        state["count"] += 1
        if isinstance(c, BufferedClient):
            unacked.append(msg.mid)
            if len(unacked) >= 1000:
                c.ack_many(unacked, c.connection)
                unacked.clear()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 10_000
    client.connect(ep.host, ep.port, clean_start=False, properties=props)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client.loop_start()
    while not stop.wait(0.25):
        if state["subscribed"]:
            _report(Path(stats_file), state)
    if isinstance(client, BufferedClient):
        client.ack_many(list(unacked), client.connection)
    client.disconnect()
    client.loop_stop()
    _report(Path(stats_file), state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

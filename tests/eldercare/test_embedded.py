"""The embedded broker's configuration: queue limits and persistence cadence from settings."""

from __future__ import annotations

from pathlib import Path

from eldercare.embedded import BrokerQueue, MosquittoConfig, _mosquitto_conf
from eldercare.runtime import broker_queue
from eldercare.settings import Settings


def _conf(queue: BrokerQueue, persistence: bool = True) -> list[str]:
    cfg = MosquittoConfig(Path("/srv/mq"), 1883, "admin", "pw", persistence, queue)
    return _mosquitto_conf(cfg, None).splitlines()


def test_the_queue_holds_the_stated_outage_and_saves_by_changes():
    lines = _conf(BrokerQueue(outage_s=600, rate=2_000, message_bytes=256,
                              autosave_changes=10_000))
    assert "max_queued_messages 1200000" in lines
    assert "max_queued_bytes 307200000" in lines
    assert "autosave_on_changes true" in lines
    assert "autosave_interval 10000" in lines
    assert "persistence_location /srv/mq/" in lines
    assert not any(line.startswith("memory_limit") for line in lines)  # drops, see docs


def test_without_persistence_nothing_is_saved_but_the_limits_stay():
    lines = _conf(BrokerQueue(outage_s=10, rate=100), persistence=False)
    assert "max_queued_messages 1000" in lines
    assert not any(line.startswith(("persistence", "autosave")) for line in lines)


def test_the_settings_size_the_embedded_broker():
    settings = Settings(mqtt_queue_outage_s=60, mqtt_queue_rate=500,
                        mqtt_queue_message_bytes=100, mqtt_autosave_changes=2_000)
    assert broker_queue(settings) == BrokerQueue(60, 500, 100, 2_000)
    assert broker_queue(Settings()) == BrokerQueue()

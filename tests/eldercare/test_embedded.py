"""The embedded broker's configuration: queue limits and persistence cadence from settings."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eldercare.embedded import BrokerQueue, MosquittoConfig, _mosquitto_conf, free_port
from eldercare.runtime import broker_queue
from eldercare.settings import Settings
from tests.support.wait import wait_until


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


_PARENT = """
import sys, time
from pathlib import Path
from eldercare.embedded import MosquittoConfig, start_mosquitto
proc = start_mosquitto(MosquittoConfig(Path(sys.argv[1]), int(sys.argv[2]), "admin", "pw-123456789",
                                       persistence=False))
print(proc.proc.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie that nobody reaps has exited too
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    return True


@pytest.mark.mqtt
def test_the_broker_dies_with_its_parent_and_ignores_the_terminals_ctrl_c(tmp_path: Path):
    """The broker runs in its own process group (a terminal's Ctrl-C reaches only the parent,
    which stops the services in order) and still dies with a SIGKILLed parent: no orphan is
    left to be mistaken for an outside broker on the next start."""
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path), str(free_port())],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        broker_pid = int(parent.stdout.readline())
        assert os.getpgid(broker_pid) != os.getpgid(parent.pid)
        parent.kill()
        parent.wait(10)
        wait_until(lambda: _gone(broker_pid), timeout=20, what="the broker exiting")
    finally:
        parent.kill()

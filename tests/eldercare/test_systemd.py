"""Production under systemd: the unit files in deploy/systemd/ and the sd_notify protocol
(READY=1, WATCHDOG=1) each process speaks when systemd asks for it (NOTIFY_SOCKET)."""

from __future__ import annotations

import configparser
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eldercare.cli import build_parser
from eldercare.embedded import free_port
from gateway.presence import part_topic
from tests.support.live import bus_publisher
from tests.support.services import Broker
from tests.support.wait import wait_until

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


@pytest.mark.parametrize("name", ["eldercare-pipeline@.service", "eldercare-dashboard.service",
                                  "eldercare-jobs.service"])
def test_each_unit_restarts_always_and_has_a_watchdog(name: str) -> None:
    unit = _unit(name)
    service = unit["Service"]
    assert service["Type"] == "notify" and service["Restart"] == "always"
    assert int(service["WatchdogSec"]) > 0 and float(service["RestartSec"]) <= 1
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"  # never give up on a crash loop
    argv = shlex.split(service["ExecStart"].replace("%i", "main"))
    assert Path(argv[0]).name == "eldercare"
    args = build_parser().parse_args(argv[1:])  # the command line is one the CLI takes
    assert args.command in ("pipeline", "dashboard", "jobs")


class _NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="eldercare-notify-")) / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.5)
        self.received: list[str] = []

    def poll(self) -> list[str]:
        with contextlib.suppress(TimeoutError):
            self.received.append(self.sock.recv(4096).decode())
        return self.received

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


@pytest.fixture
def notify_socket() -> Iterator[_NotifySocket]:
    ns = _NotifySocket()
    yield ns
    ns.close()


@pytest.mark.slow
@pytest.mark.parametrize("database_up", [True, False], ids=["db-up", "db-down"])
@pytest.mark.parametrize("command", ["pipeline", "dashboard", "jobs"])
def test_process_tells_systemd_it_is_ready_then_keeps_the_watchdog_fed(
        command: str, database_up: bool, clean_db: str, broker: Broker,
        notify_socket: _NotifySocket) -> None:
    """Each process starts, says READY=1 and keeps the watchdog fed, also while its database
    is down (it waits for it instead of exiting: the unit needs no ordering on it)."""
    name = f"sd{time.time_ns()}"
    url = clean_db if database_up else f"postgresql://nobody:pw@127.0.0.1:{free_port()}/none"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env.update({"ELDERCARE_DATABASE_URL": url, "ELDERCARE_MQTT_URL": broker.pipeline.url(),
                "ELDERCARE_JWT_SECRET": "x" * 40,
                "ELDERCARE_DATA_DIR": tempfile.mkdtemp(prefix="eldercare-sd-"),
                "ELDERCARE_WEB_PORT": str(free_port()),
                "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "600000"})
    argv = [command, "--name", name] if command == "pipeline" else [command]
    proc = subprocess.Popen([sys.executable, "-m", "eldercare.cli", *argv], env=env)
    try:
        wait_until(lambda: notify_socket.poll().count("WATCHDOG=1") >= 2, timeout=90,
                   what=f"{command}: READY=1, then WATCHDOG=1 again and again")
        assert notify_socket.received[0] == "READY=1"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        part = {"pipeline": f"pipeline-{name}", "jobs": "jobs"}.get(command)
        if part is not None:  # the session broker outlives this test: clear the part state
            with bus_publisher(broker.pipeline) as pub:
                pub.publish_raw(part_topic(part), b"", retain=True)
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM; systemd
    # counts a SIGTERM death as a clean stop

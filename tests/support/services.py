"""The test services' types: the session broker, a private broker a test may kill, and the
accounts and data folders they use (the fixtures that start them are in tests/conftest.py)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eldercare.embedded import ManagedProcess, MosquittoConfig, free_port, start_mosquitto
from kernel.endpoint import MqttEndpoint

PIPELINE_USER = "test-pipeline"
PIPELINE_PASSWORD = "test-pipeline-pw"
ADMIN_USER = "test-admin"
ADMIN_PASSWORD = "test-admin-pw"


def tmpdir(prefix: str) -> Path:
    """A fresh, world-readable folder (services drop privileges when the tests run as root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)  # noqa: S103 - services drop privileges when we are root
    return path


@dataclass(frozen=True)
class Broker:
    """A running test broker and its accounts."""

    port: int
    admin: MqttEndpoint
    pipeline: MqttEndpoint
    data_dir: Path


class OwnBroker:
    """A private Mosquitto with persistence, on a fixed port and data folder, that a test may
    kill (SIGKILL), stop (SIGTERM) and start again: broker-fault tests. The pipeline and admin
    accounts survive restarts (dynamic security keeps them in the data folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.config = MosquittoConfig(path, self.port, ADMIN_USER, ADMIN_PASSWORD,
                                      persistence=True)
        self.admin = MqttEndpoint("127.0.0.1", self.port, ADMIN_USER, ADMIN_PASSWORD)
        self.pipeline = MqttEndpoint("127.0.0.1", self.port, PIPELINE_USER, PIPELINE_PASSWORD)
        self.proc: ManagedProcess | None = None

    def start(self) -> None:
        """Start (or start again) on the same port and data folder."""
        assert self.proc is None or not self.proc.alive(), "the broker is already running"
        self.proc = start_mosquitto(self.config)

    def kill(self) -> None:
        """SIGKILL: what Mosquitto had not saved is lost, as in a crash."""
        assert self.proc is not None
        self.proc.proc.kill()
        self.proc.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM: a clean stop (Mosquitto saves its persistence file)."""
        if self.proc is not None:
            self.proc.stop()

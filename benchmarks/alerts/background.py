"""Background bed telemetry from its own process (the lean load generator of `bench
ingest`), so that it does not share the measuring process's GIL."""

from __future__ import annotations

import multiprocessing
import queue
import time
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from benchmarks.alerts.common import BACKGROUND_MAX_S, describe
from benchmarks.loadgen import LoadGenerator
from eldercare.embedded import ServiceError
from gateway.provisioning import DeviceCredentials


def _background_main(creds: list[DeviceCredentials], host: str, port: int, rate: float,
                     started: MpEvent, stop: MpEvent, out: Any) -> None:
    """Child process: publish bed telemetry at `rate` until `stop`; report what was sent."""
    try:
        gen = LoadGenerator(creds, host, port)
    except Exception as exc:
        out.put({"error": describe(exc)})
        started.set()
        return
    stopped: list[float] = []

    def should_stop() -> bool:
        if stop.is_set():
            stopped.append(time.monotonic())
            return True
        return False

    try:
        started.set()
        t0 = time.monotonic()
        load = gen.run(rate, BACKGROUND_MAX_S, should_stop)
        seconds = (stopped[0] if stopped else time.monotonic()) - t0
        out.put({"sent": load.sent, "acked": load.acked, "seconds": seconds})
    except Exception as exc:
        out.put({"error": describe(exc)})
    finally:
        gen.close()


class Background:
    """Bed telemetry at a fixed rate from a separate process (the lean load generator)."""

    def __init__(self, beds: list[DeviceCredentials], host: str, port: int, rate: float
                 ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.rate = rate
        self._started = ctx.Event()
        self._stop = ctx.Event()
        self._out: Any = ctx.Queue()
        self._proc = ctx.Process(target=_background_main, name="bench-background", daemon=True,
                                 args=(beds, host, port, rate, self._started, self._stop,
                                       self._out))
        self._proc.start()
        if not self._started.wait(60):
            self._proc.terminate()
            raise ServiceError("the background load generator did not start")

    def stop(self) -> dict[str, Any]:
        """Stop the load; what it sent and acknowledged, and the achieved msg/s."""
        self._stop.set()
        try:
            result: dict[str, Any] = self._out.get(timeout=120)
        except queue.Empty:
            result = {"error": "the background load generator did not report"}
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.terminate()
        if "error" not in result:
            result["msgs_per_s"] = result["sent"] / result["seconds"] if result["seconds"] else 0
        return result

"""What an alert benchmark run is: its configuration, targets and fixed names."""

from __future__ import annotations

from dataclasses import dataclass

BENCH_SITE = "bench-alerts"
ADMIN_USERNAME = "bench-alerts-admin"
WARMUP_HOMES = 3  # extra homes pressed before the measurement (readiness, warm caches)
BACKGROUND_SHARE = 0.6
TARGET_COMMIT_P99_MS = 50.0
TARGET_SSE_P99_MS = 250.0
STREAM_PATH = "/api/v1/alerts/stream"
TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a URL, not a secret
HEALTH_PATH = "/api/v1/health"
BACKGROUND_MAX_S = 24 * 3600.0  # the background load runs until told to stop


@dataclass(frozen=True)
class AlertBenchConfig:
    """What to run."""

    homes: int = 200
    presses: int = 200  # each on a distinct call button, so at most `homes`
    rate: float | None = None  # background msg/s; None: 60 % of the bare-subscriber ceiling
    press_rate: float = 10.0
    drain_messages: int = 30_000
    settle_s: float = 30.0  # how long to wait for outstanding results after the last press
    load_warmup_s: float = 5.0  # background load before the first measured press
    seed: int = 1
    # Flood phase (off when flood_rate is 0): one call button presses SOS at flood_rate/s
    # while `flood_presses` other residents press theirs (distinct buttons, at press_rate).
    flood_rate: float = 0.0
    flood_presses: int = 50
    flood_lead_s: float = 1.0  # the flood runs this long before the first measured press

    @property
    def flooding(self) -> bool:
        """Whether the run has a flood phase."""
        return self.flood_rate > 0

    @property
    def buttons_needed(self) -> int:
        """Distinct measured call buttons (the flooder included)."""
        return self.presses + (self.flood_presses + 1 if self.flooding else 0)


def describe(exc: BaseException) -> str:
    """The exception's type and the first line of its message."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__

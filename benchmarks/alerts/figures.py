"""From presses and arrival times to latency figures (publish → commit, → first SSE event,
→ stored-alert SSE event; other residents' SOS during a flood)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.alerts.buttons import Press
from benchmarks.alerts.common import AlertBenchConfig
from benchmarks.alerts.sse import SseEvent
from benchmarks.stats import percentiles


@dataclass
class Phases:
    """What the measured presses of a run were: without a flood, and during one."""

    presses: list[Press]
    flood_presses: list[Press] = field(default_factory=list)
    flood_sent: int = 0
    flooder: str | None = None


def flood_figures(phases: Phases, rows: dict[tuple[str, int], int],
                  commits: dict[int, float], cfg: AlertBenchConfig,
                  baseline_p99_ms: float | None) -> dict[str, Any]:
    """Other residents' SOS → committed during the flood, and its p99 against the baseline."""
    samples = [_ms(commits.get(rows.get((p.device_id, p.seq), -1)), p.t0)
               for p in phases.flood_presses]
    values = [v / 1000 for v in samples if v is not None]
    commit = percentiles(values)
    p99 = commit["p99_ms"]
    return {"rate": cfg.flood_rate, "flood_sent": phases.flood_sent, "flooder": phases.flooder,
            "presses": len(phases.flood_presses),
            "lost": sum(1 for p in phases.flood_presses if (p.device_id, p.seq) not in rows),
            "commit": commit,
            "p99_ratio": (p99 / baseline_p99_ms if p99 is not None and baseline_p99_ms
                          else None)}


def latencies(presses: Sequence[Press], rows: dict[tuple[str, int], int],
              commits: dict[int, float], events: Sequence[SseEvent]) -> dict[str, Any]:
    """Per-press latencies to commit, to the first stream event and to the stored-alert event."""
    by_device: dict[str, list[SseEvent]] = {}
    for e in events:
        by_device.setdefault(e.device_id, []).append(e)
    samples = [_sample(p, presses[0].t0, rows, commits, by_device.get(p.device_id, []))
               for p in presses]
    lost = sum(1 for p in presses if (p.device_id, p.seq) not in rows)
    figures: dict[str, Any] = {"presses": len(presses), "lost": lost}
    for key in ("commit", "sse_first", "sse_stored"):
        values = [v / 1000 for v in (s[key] for s in samples) if v is not None]
        figures[key] = percentiles(values)
        figures[f"missing_{key}"] = len(presses) - len(values)
    figures["missing_commit_notify"] = figures.pop("missing_commit") - lost
    figures["samples"] = samples
    return figures


def _sample(p: Press, start: float, rows: dict[tuple[str, int], int],
            commits: dict[int, float], events: list[SseEvent]) -> dict[str, float | None]:
    """One press: when it was sent (s into the run) and its three latencies (ms)."""
    alert_id = rows.get((p.device_id, p.seq))
    after = [e for e in events if e.t >= p.t0]
    return {"at_s": p.t0 - start,
            "commit": _ms(commits.get(alert_id) if alert_id is not None else None, p.t0),
            "sse_first": _ms(min((e.t for e in after), default=None), p.t0),
            "sse_stored": _ms(min((e.t for e in after if e.name == "alert"), default=None),
                              p.t0)}


def _ms(t: float | None, t0: float) -> float | None:
    return None if t is None else (t - t0) * 1000

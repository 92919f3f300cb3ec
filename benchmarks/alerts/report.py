"""The human-readable summary of a run, against the latency targets."""

from __future__ import annotations

from typing import Any

from benchmarks.alerts.common import BENCH_SITE, TARGET_COMMIT_P99_MS, TARGET_SSE_P99_MS


def _verdict(p99: float | None, target: float) -> str:
    if p99 is None:
        return f"target p99 ≤ {target:.0f} ms: no data"
    met = "met" if p99 <= target else "NOT met"
    return f"target p99 ≤ {target:.0f} ms: {met} ({p99 / target:.2f} of target)"


def _line(label: str, pct: dict[str, float | None], target: float | None) -> str:
    if pct["p50_ms"] is None:
        figures = "no data"
    else:
        figures = (f"p50 {pct['p50_ms']:.1f} ms, p99 {pct['p99_ms']:.1f} ms, "
                   f"max {pct['max_ms']:.1f} ms")
    tail = f"   {_verdict(pct['p99_ms'], target)}" if target is not None else ""
    return f"  {label:<36} {figures}{tail}"


def _background_line(r: dict[str, Any]) -> str:
    bg, ceiling = r["background"], r["bare_subscriber_msgs_per_s"]
    if "error" in bg:
        return f"  background telemetry FAILED: {bg['error']}"
    share = (f" = {r['background_target_msgs_per_s'] / ceiling:.0%} of the bare-subscriber "
             f"ceiling {ceiling:.0f} msg/s" if ceiling else " (--rate)")
    return (f"  background: {r['homes']} bed sensors, offered "
            f"{r['background_target_msgs_per_s']:.0f} msg/s{share}; achieved "
            f"{bg['msgs_per_s']:.0f} msg/s, {bg['sent']} sent, {bg['sent'] - bg['acked']} "
            "unacknowledged")


def _pipeline_line(r: dict[str, Any]) -> str:
    lag = r["pipeline"].get("lag") or {}
    if lag.get("p50_ms") is None:
        return "  background telemetry publish→commit: no data"
    return (f"  background telemetry publish→commit: p50 {lag['p50_ms']:.0f} ms, "
            f"p99 {lag['p99_ms']:.0f} ms, max {lag['max_ms']:.0f} ms")


def _bus_state(r: dict[str, Any]) -> str:
    if "bus" not in r["stream_status"]:
        return "unknown (the stream did not open)"
    bus = r["stream_status"]["bus"]
    if bus is None:
        return "not connected to the web app (no pending events expected)"
    return "up" if bus else "down"


def report(r: dict[str, Any]) -> str:
    """Human-readable summary of a run."""
    lines = [
        f"alert benchmark: {r['presses']} SOS presses on distinct call buttons "
        f"({r['press_rate']:g}/s, random order), site {BENCH_SITE}",
        _background_line(r),
        _pipeline_line(r),
        _line("(a) publish → alert committed:", r["commit"], TARGET_COMMIT_P99_MS),
        _line("(b) publish → first SSE event:", r["sse_first"], TARGET_SSE_P99_MS),
        _line("    publish → stored-alert SSE event:", r["sse_stored"], None),
        f"  lost: {r['lost']} of {r['presses']} SOS opened no alert (must be 0); "
        f"broker unacknowledged {r['unacknowledged_by_broker']}; no commit NOTIFY "
        f"{r['missing_commit_notify']}",
        f"  stream: missing first event {r['missing_sse_first']}, missing stored-alert event "
        f"{r['missing_sse_stored']}; live alert bus in the web app: {_bus_state(r)}",
    ]
    if "flood" in r:
        lines += _flood_lines(r["flood"])
    if r["stream_error"]:
        lines.append(f"  stream error: {r['stream_error']}")
    return "\n".join(lines)


def _flood_lines(f: dict[str, Any]) -> list[str]:
    ratio = f"{f['p99_ratio']:.2f}" if f["p99_ratio"] is not None else "n/a"
    return [
        f"  flood: one call button pressed SOS {f['flood_sent']} times ({f['rate']:g}/s) while "
        f"{f['presses']} other residents pressed theirs",
        _line("(c) other SOS → committed in a flood:", f["commit"], None),
        f"      p99 during the flood / p99 of (a) in this run: {ratio}; lost {f['lost']} "
        f"of {f['presses']}",
    ]

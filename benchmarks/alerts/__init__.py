"""`python -m benchmarks alerts`: SOS publish → alert committed, and → event on the web
app's SSE feed.

Under background bed telemetry at a share of the bare-subscriber ceiling (same lean load
generator as `bench ingest`, run in its own process so it does not share our GIL), every SOS
is one QoS 1 PUBLISH on a distinct call button. Both receivers live in this process and use
the same monotonic clock as the presses: a `LISTEN alerts` connection (NOTIFY is delivered at
COMMIT, so its arrival is the commit time, late by the wake-up of our own backend) and an
SSE client of the separate web-app process.

Modules by job: `common` (configuration, targets), `registry` (the bench homes and admin),
`buttons` (raw-socket call buttons), `background` (telemetry from its own process),
`listen` (commit times), `sse` (live-feed times), `measure` (the run), `figures`
(latencies), `report` (the summary).
"""

from benchmarks.alerts.common import AlertBenchConfig
from benchmarks.alerts.figures import flood_figures, latencies
from benchmarks.alerts.measure import measure, run
from benchmarks.alerts.report import report

__all__ = ["AlertBenchConfig", "flood_figures", "latencies", "measure", "report", "run"]

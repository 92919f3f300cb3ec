"""Benchmarks of the eldercare platform (not product code; not installed with it).

Run from the checkout: `.venv/bin/python -m benchmarks ingest|alerts [flags]`. They take
the same --mqtt-port/--pg-port/--data-dir flags as `eldercare` commands and start the
embedded services when no external ones are configured (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eldercare.cli import where_parser
from eldercare.embedded import ManagedProcess
from eldercare.run import prepare_services, settings_for
from eldercare.runtime import Runtime, embedded_starters, resolve
from eldercare.settings import Settings


def cmd_bench_ingest(args: argparse.Namespace) -> int:
    """Measure the pipeline against the raw limits (see docs/benchmarks.md)."""
    from benchmarks import ingest as bench

    settings = settings_for(args)
    config = bench.BenchConfig(homes=args.homes, rate=args.rate, load=args.load,
                               seconds=args.seconds, drain_messages=args.drain_messages,
                               db_outage_s=args.db_outage)
    figures: dict[str, Any] = {}
    started: list[ManagedProcess] = []
    pg_start = dict(embedded_starters(settings)).get("postgres") if args.db_outage else None
    if args.db_outage and (pg_start is None or not resolve(settings).embedded):
        print("error: --db-outage needs the embedded PostgreSQL, started by this command",
              file=sys.stderr)
        return 2

    def outage_control() -> bench.DatabaseControl | None:
        if pg_start is None:
            return None
        index = next(i for i, p in enumerate(started) if p.name == "postgres")

        def start() -> None:
            started[index] = pg_start()
        return bench.DatabaseControl(stop=lambda: started[index].stop(), start=start)

    def run(rt: Runtime) -> dict[str, Any]:
        figures.update(bench.run(rt, config, outage_control()))
        return figures

    _run_bench(settings, run, bench.report, args.json, started)
    return bench.exit_code(figures)  # 0 targets held, 1 messages lost, 2 too slow


def _run_bench(settings: Settings, run: Callable[[Runtime], dict[str, Any]],
               report: Callable[[dict[str, Any]], str], json_path: str | None,
               services: list[ManagedProcess] | None = None) -> int:
    """Start the embedded services if needed, run a benchmark, print (and save) its figures.
    `services` receives the processes started (a benchmark may restart one in place)."""
    rt, started = prepare_services(settings)
    services = services if services is not None else []
    services[:] = started
    try:
        result = run(rt)
    finally:
        for proc in reversed(services):
            proc.stop()
    print(report(result))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=1))
    return 0


def cmd_bench_alerts(args: argparse.Namespace) -> int:
    """Measure SOS publish → alert committed / → SSE event (see docs/benchmarks.md)."""
    from benchmarks import alerts as bench

    if not 1 <= args.presses <= args.homes:
        print("error: --presses must be between 1 and --homes (one press per call button)",
              file=sys.stderr)
        return 2
    if args.flood_rate > 0 and args.presses + args.flood_presses + 1 > args.homes:
        print("error: a flood phase needs --presses + --flood-presses + 1 homes at most "
              "--homes (distinct call buttons)", file=sys.stderr)
        return 2
    settings = settings_for(args)
    config = bench.AlertBenchConfig(homes=args.homes, presses=args.presses, rate=args.rate,
                                    press_rate=args.press_rate,
                                    drain_messages=args.drain_messages,
                                    flood_rate=args.flood_rate,
                                    flood_presses=args.flood_presses)
    return _run_bench(settings, lambda rt: bench.run(rt, config), bench.report, args.json)


def cmd_bench_provision(args: argparse.Namespace) -> int:
    """Import N homes with broker accounts (see docs/benchmarks.md, record 0006)."""
    from benchmarks import provision as bench

    settings = settings_for(args)
    figures: dict[str, Any] = {}

    def run(rt: Runtime) -> dict[str, Any]:
        figures.update(bench.run(rt, args.homes, args.site_prefix))
        return figures

    _run_bench(settings, run, bench.report, args.json)
    return bench.exit_code(figures)


def build_parser() -> argparse.ArgumentParser:
    """The `python -m benchmarks` command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    where = where_parser()

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str
            ) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_,
                                                     parents=[where])
        sp.set_defaults(func=fn)
        return sp

    sp = add("ingest", cmd_bench_ingest, "ingest throughput, loss, lag, CPU vs raw limits")
    sp.add_argument("--homes", type=int, default=200, help="simulated bed sensors")
    sp.add_argument("--rate", type=float, help="msg/s (default: --load x the bare subscriber)")
    sp.add_argument("--load", type=float, default=0.95,
                    help="offered load as a fraction of the bare-subscriber limit measured "
                         "first (default 0.95; ignored with --rate)")
    sp.add_argument("--seconds", type=float, default=300.0, help="load duration")
    sp.add_argument("--drain-messages", type=int, default=60_000,
                    help="messages used to measure the bare-subscriber ceiling")
    sp.add_argument("--db-outage", type=float, default=0.0, metavar="SECONDS",
                    help="stop the embedded PostgreSQL for this long, a third into the load "
                         "(the pipeline spools; loss still counted per (device, seq))")
    sp.add_argument("--json", help="also write the figures to this file")
    sp = add("provision", cmd_bench_provision,
             "bulk import of homes with broker accounts (target: 10,000 homes in 60 s)")
    sp.add_argument("--homes", type=int, default=10_000,
                    help="homes (resident + bed sensor + call button)")
    sp.add_argument("--site-prefix", default="bench-prov",
                    help="sites <prefix>-1, -2, ... of 500 homes (created if missing)")
    sp.add_argument("--json", help="also write the figures to this file")
    sp = add("alerts", cmd_bench_alerts,
             "SOS publish → alert committed and → SSE event latency under background load")
    sp.add_argument("--homes", type=int, default=200, help="homes (bed sensor + call button)")
    sp.add_argument("--presses", type=int, default=200,
                    help="SOS presses, each on a distinct call button (at most --homes)")
    sp.add_argument("--rate", type=float,
                    help="background bed telemetry msg/s (default: 60%% of the bare subscriber)")
    sp.add_argument("--press-rate", type=float, default=10.0, help="SOS presses per second")
    sp.add_argument("--flood-rate", type=float, default=0.0,
                    help="add a flood phase: one call button presses SOS this often per "
                         "second while --flood-presses other residents press theirs")
    sp.add_argument("--flood-presses", type=int, default=50,
                    help="other residents' SOS presses during the flood (distinct buttons; "
                         "--presses + this + 1 must not exceed --homes)")
    sp.add_argument("--drain-messages", type=int, default=30_000,
                    help="messages used to measure the bare-subscriber ceiling")
    sp.add_argument("--json", help="also write the figures to this file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m benchmarks`."""
    logging.basicConfig(level=os.environ.get("ELDERCARE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

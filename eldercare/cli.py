"""The `eldercare` command: run the platform or its parts, and administer the registry."""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from alerts.overrides import OverrideError
from eldercare import systemd
from eldercare.admin import devices as devices_admin
from eldercare.migrate import migrate
from eldercare.runtime import (
    Runtime,
    embedded_starters,
    ensure_pipeline_account,
    resolve,
    start_embedded,
)
from eldercare.services import ManagedProcess, ServiceError, die_with_parent, port_open
from eldercare.settings import Settings
from eldercare.supervisor import Supervisor
from gateway import device_lifecycle
from gateway.broker_admin import BrokerAdminError
from gateway.device_accounts import DeviceAccountsError
from gateway.presence import Presence, part_name
from gateway.schema import DeviceType
from kernel import accounts, db
from kernel.sites import add_resident, add_site

logger = logging.getLogger("eldercare")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for key in ("web_port", "mqtt_port", "pg_port", "demo_homes", "data_dir"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    sites = getattr(args, "sites", None)
    if sites:
        overrides["sites"] = [s.strip() for s in sites.split(",") if s.strip()]
    settings = Settings(**overrides)
    ports = [f"--{k.replace('_', '-')}" for k in ("mqtt_port", "pg_port")
             if getattr(args, k, None) is not None]
    if ports and not settings.embedded:
        # A flag that is silently ignored sends the operator to the wrong database.
        raise SystemExit(f"{'/'.join(ports)} set the embedded services' ports, but "
                         "ELDERCARE_DATABASE_URL/ELDERCARE_MQTT_URL name external ones; "
                         "use one or the other")
    return settings


def _wait_for_signal(tick: Callable[[], None] | None = None, every_s: float = 0.2) -> None:
    """Block until SIGINT/SIGTERM, calling `tick` (the supervisor's poll, the systemd
    watchdog) every `every_s`."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(every_s):
        if tick is not None:
            tick()
    systemd.stopping()


def _watchdog(healthy: Callable[[], bool]) -> Callable[[], None]:
    """A tick that tells systemd "still alive" (WATCHDOG=1) only while `healthy()`: a process
    whose worker thread died stops pinging, and systemd restarts it (deploy/systemd/)."""
    interval = systemd.watchdog_interval_s()
    last = [0.0]

    def tick() -> None:
        now = time.monotonic()
        if now - last[0] >= interval:
            if healthy():
                systemd.watchdog()
            else:
                logger.error("a worker thread has died; no longer telling the watchdog "
                             "this process is alive")
            last[0] = now
    return tick


def _threads_alive(*names: str) -> Callable[[], bool]:
    """Whether threads of these names are running (the parts a process cannot work without)."""
    def check() -> bool:
        alive = {t.name for t in threading.enumerate() if t.is_alive()}
        return all(name in alive for name in names)
    return check


# --- long-running parts ---------------------------------------------------------------


def cmd_pipeline(args: argparse.Namespace) -> int:
    """Run one pipeline process (gateway + ingest + alerts) for a set of sites."""

    from alerts.notify.direct import DirectNotifier
    from eldercare.pipeline import Pipeline
    from ingest.metrics import LagSampler
    from ingest.spool import Spool
    from kernel.procstats import cpu_seconds, peak_rss_mib, write_json

    settings = _settings(args)
    rt = resolve(settings)
    direct = DirectNotifier(settings.notify)
    spool = (Spool(rt.data_dir / f"spool-{args.name}.sqlite",
                   max_bytes=settings.ingest_spool_max_bytes,
                   min_free_bytes=settings.ingest_spool_min_free_bytes)
             if settings.ingest_spool else None)
    pipe = Pipeline(rt.mqtt, rt.database_url, settings.sites, name=args.name,
                    batch_rows=settings.ingest_batch_rows, batch_ms=settings.ingest_batch_ms,
                    alert_settings=settings.alerts, direct=direct, on_refresh=direct.refresh,
                    raw_retention=timedelta(days=settings.raw_retention_days),
                    registry_cache=rt.data_dir / f"registry-cache-{args.name}.json",
                    spool=spool)
    # Without a spool, warn as a database outage uses up what the broker can queue for us
    # (docs/ingest.md); with one, the writer warns as the spool fills its budget.
    pipe.writer.outage_budget_s = settings.mqtt_queue_outage_s
    lag = LagSampler()
    if args.stats_file:
        pipe.writer.on_commit = lag
    pipe.start()
    # Everything loaded at start (libraries, registry, detector contexts) lives as long as
    # the process: keep it out of the collector, whose full passes over it paused every
    # thread for tens of ms (an SOS waited behind them).
    gc.collect()
    gc.freeze()
    presence = Presence(rt.mqtt, part_name("pipeline", args.name))
    presence.start()
    cpu0 = cpu_seconds()
    systemd.ready()
    _wait_for_signal(_watchdog(_threads_alive("ingest-writer", "alert-worker", "registry-listen")))
    pipe.stop()
    presence.stop()
    direct.close()
    if args.stats_file:
        samples = lag.samples
        write_json(Path(args.stats_file), {
            "received": pipe.received, "committed_rows": pipe.writer.committed_rows,
            "dead_letters": pipe.dead_letters, "cpu_s": cpu_seconds() - cpu0,
            "peak_rss_mib": peak_rss_mib(),
            # (commit time, publish-to-commit lag) pairs, each standing for the same number
            # of messages; the benchmark computes percentiles and the timeline from them.
            "lag_samples": samples,
            "spool": pipe.writer.spool_stats(),
        })
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Run the web app."""
    from dashboard.app import create_app, serve
    from dashboard.devices import DevicesConfig
    from dashboard.live.settings import StreamSettings

    settings = _settings(args)
    rt = resolve(settings)
    streams = StreamSettings(max_per_account=settings.web_streams_per_account,
                             max_per_address=settings.web_streams_per_address)
    app = create_app(rt.database_url, rt.jwt_secret, settings.token_ttl_minutes, mqtt=rt.mqtt,
                     stream_settings=streams,
                     devices=DevicesConfig(rt.device_accounts(), rt.mqtt, rt.mqtt_admin))
    _http_watchdog(settings.web_host, settings.web_port)
    serve(app, settings.web_host, settings.web_port,
          trusted_proxies=settings.web_trusted_proxies)
    return 0


def _http_watchdog(host: str, port: int) -> None:
    """Under systemd: READY=1 once the web app answers, then WATCHDOG=1 each time it answers
    /api/v1/health (any HTTP status: a 503 for a database outage is an answer; a hung event
    loop is not). Pings from a thread of the same process would prove nothing more."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return
    target = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - bind-all
    interval = systemd.watchdog_interval_s()

    def answers() -> bool:
        # The timeout outlasts the health check's own 2 s wait for a database connection.
        conn = http.client.HTTPConnection(target, port, timeout=max(5.0, interval))
        try:
            conn.request("GET", "/api/v1/health")
            conn.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):  # refused, reset, timed out, garbled
            return False
        finally:
            conn.close()

    def run() -> None:
        started = False
        while True:
            if answers():
                if not started:
                    systemd.ready()
                    started = True
                systemd.watchdog()
            time.sleep(interval if started else 0.5)

    threading.Thread(target=run, name="systemd-watchdog", daemon=True).start()


def cmd_simulate(args: argparse.Namespace) -> int:
    """Drive simulated homes: the real-time demo fleet, or a replay/fleet/load run."""
    from simulators import cli as sim

    settings = _settings(args)
    rt = resolve(settings)
    if args.provision:
        creds = Path(args.creds or rt.data_dir / f"sim-devices-{args.provision}.json")
        sim.provision_to_file(rt.database_url, rt.mqtt_admin, rt.mqtt, args.provision, creds)
        print(f"provisioned {args.provision} homes; credentials in {creds}")
    else:
        creds = Path(args.creds) if args.creds else rt.data_dir / "demo-devices.json"
    if not creds.exists():
        print(f"no device credentials at {creds}; run `eldercare demo` once to seed, "
              "or pass --provision N", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.mode == "demo":
        sim.simulate_demo(creds, rt.mqtt.host, rt.mqtt.port, stop,
                          telemetry_period_s=args.telemetry_period,
                          sos_mean_interval_s=args.sos_interval)
        return 0
    if args.start is not None:
        _warn_if_beyond_retention(args.start, settings.raw_retention_days)
    truth = Path(args.truth) if args.truth else sim.default_truth_path(rt.data_dir, args.mode)
    options: dict[str, Any] = {"telemetry_period_s": args.telemetry_period, "seed": args.seed,
                               "truth_path": truth, "progress": not args.no_progress,
                               "incidents_per_home_day": args.incidents_per_day}
    for key, value in (("days", args.days), ("duration_s", args.duration), ("rate", args.rate),
                       ("start", args.start)):
        if value is not None:
            options[key] = value
    summary = sim.simulate_from_file(args.mode, creds, rt.mqtt.host, rt.mqtt.port, stop,
                                     **options)
    print("\n".join(summary.lines()))
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    """Run the scheduled jobs: storage (rollups, daily summaries, retention), alert
    escalation, and the notification dispatcher."""

    from alerts.escalation import EscalationRunner
    from alerts.notify.dispatcher import Dispatcher
    from ingest.jobs import JobSettings, start_scheduler

    settings = _settings(args)
    rt = resolve(settings)
    scheduler = start_scheduler(
        rt.database_url, JobSettings(retention=timedelta(days=settings.raw_retention_days)))
    escalation = EscalationRunner(rt.database_url)
    dispatcher = Dispatcher(rt.database_url, settings.notify, rt.mqtt)
    escalation.start()
    dispatcher.start()
    presence = Presence(rt.mqtt, part_name("jobs"))
    presence.start()
    systemd.ready()
    healthy = _threads_alive("escalation", "notify-dispatcher")
    _wait_for_signal(_watchdog(lambda: healthy() and scheduler.running))
    escalation.stop()
    dispatcher.stop()
    scheduler.shutdown(wait=True)
    presence.stop()
    return 0


def _child(name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
    """Start `eldercare <argv>` as a child that dies with us, with exactly `env`."""
    proc = subprocess.Popen([sys.executable, "-m", "eldercare.cli", *argv],
                            preexec_fn=die_with_parent, env=env)
    return ManagedProcess(name, proc)


def _children_env(settings: Settings, rt: Runtime) -> dict[str, str]:
    """What every child of `demo`/`serve` must use: the parent's resolved broker, database,
    token key and data folder (so flags such as --pg-port reach them), and its web address.
    A child never re-derives these from its own defaults."""
    return {**rt.child_env(), "ELDERCARE_WEB_HOST": settings.web_host,
            "ELDERCARE_WEB_PORT": str(settings.web_port)}


def _prepare(settings: Settings) -> tuple[Runtime, list[ManagedProcess]]:
    """Start embedded services if configured so, and migrate the database."""
    rt = resolve(settings)
    services: list[ManagedProcess] = []
    if rt.embedded:
        services = start_embedded(settings)
    migrate(rt.database_url)
    return rt, services


def _run_platform(args: argparse.Namespace, demo: bool) -> int:
    """Start every part under one supervisor that restarts what crashes (eldercare.supervisor)
    and stops everything, in reverse order, on Ctrl-C/SIGTERM."""
    settings = _settings(args)
    rt = resolve(settings)
    supervisor = Supervisor()
    try:
        if rt.embedded:
            for name, start in embedded_starters(settings):
                supervisor.add(name, start)  # ServiceError at first start: reported by main()
            ensure_pipeline_account(settings)
            migrate(rt.database_url)  # the embedded database is up: it was waited for
        else:
            _migrate_when_up(rt.database_url)
        logins = None
        if demo:
            from eldercare.seed import seed_demo

            logins = seed_demo(rt.database_url, rt.mqtt_admin, rt.mqtt, rt.data_dir,
                               homes=settings.demo_homes)
        extra = ["--sites", ",".join(settings.sites)] if settings.sites else []
        env = _children_env(settings, rt)
        parts = [("pipeline", ["pipeline", *extra]), ("dashboard", ["dashboard"]),
                 ("jobs", ["jobs"])]
        if demo:
            # Started first so that they stop last: when the demo stops, the simulated homes
            # powering off (or their Last Wills) reach the pipeline's session only after the
            # pipeline is gone, and its next start counts them as the platform's own stop
            # (docs/alerts.md), instead of opening a device_offline per home and paging carers.
            parts.insert(0, ("simulators", ["simulate"]))
        for name, argv in parts:
            supervisor.add(name, _starter(name, argv, env))
        _banner(settings, rt, logins)
        _wait_for_signal(supervisor.poll)
    finally:
        supervisor.stop_all()
        print("eldercare stopped.")
    return 0


def _migrate_when_up(url: str) -> None:
    """Migrate, waiting for an external database that is not up yet (Ctrl-C stops the wait):
    `serve` starts with its dependencies down, like each of its parts. Each failed attempt
    is logged with its reason (a wrong password shows up there, not as a silent wait)."""
    while True:
        try:
            migrate(url)
            return
        except psycopg.OperationalError as exc:
            reason = (str(exc).strip().splitlines() or ["refused"])[0]
            logger.warning("database unavailable (%s); retrying in 2 s", reason)
            time.sleep(2)


def _starter(name: str, argv: list[str], env: dict[str, str]) -> Callable[[], ManagedProcess]:
    return lambda: _child(name, argv, env)


def _banner(settings: Settings, rt: Runtime, logins: list[Any] | None) -> None:
    from dashboard.docs_ui import DOCS_UI_DIR, docs_ui_available

    deadline = time.monotonic() + 30
    while not port_open(settings.web_port, settings.web_host) and time.monotonic() < deadline:
        time.sleep(0.1)
    web = f"http://{settings.web_host}:{settings.web_port}"
    docs = (f"{web}/docs" if docs_ui_available(DOCS_UI_DIR)
            else "off (run scripts/bootstrap.sh to install them); schema at /openapi.json")
    lines = [
        "",
        "eldercare is running.",
        f"  Web app (duty screen): {web}/",
        f"  API docs:              {docs}",
        f"  MQTT broker:           mqtt://{rt.mqtt.host}:{rt.mqtt.port} "
        "(no anonymous access; each device has its own account)",
        f"  Database:              {_redact(rt.database_url)}",
    ]
    if logins:
        lines.append(f"  Demo logins (all of them are in {rt.data_dir / 'demo-logins.json'}):")
        shown = [login for login in logins if login.role != "family"] + [
            login for login in logins if login.role == "family"][:2]
        for login in shown:
            lines.append(f"    {login.role:<13} {login.username:<20} {login.password:<14}"
                         f" {login.scope}")
    lines.append("Press Ctrl-C to stop everything.")
    print("\n".join(lines), flush=True)


def _redact(url: str) -> str:
    if "@" not in url:
        return url
    head, tail = url.split("@", 1)
    scheme, _, user_pw = head.partition("://")
    return f"{scheme}://{user_pw.split(':')[0]}:***@{tail}"


def cmd_demo(args: argparse.Namespace) -> int:
    """Start everything with a seeded demo district and simulated homes."""
    return _run_platform(args, demo=True)


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the pipeline and the web app (embedded services unless URLs are set)."""
    return _run_platform(args, demo=False)


def cmd_services(args: argparse.Namespace) -> int:
    """Start only the embedded broker and database, in the foreground."""
    settings = _settings(args)
    rt, services = _prepare(settings)  # ServiceError is reported by main()
    print(f"Mosquitto on 127.0.0.1:{settings.mqtt_port}, PostgreSQL: {_redact(rt.database_url)}"
          "\nPress Ctrl-C to stop.", flush=True)
    _wait_for_signal()
    for proc in reversed(services):
        proc.stop()
    return 0


# --- administration ------------------------------------------------------------------


def _admin_runtime(args: argparse.Namespace, broker: bool = False) -> Runtime:
    """Resolve where an admin command connects and say so on stderr, so nobody edits the
    wrong district by accident (the demo's flags apply here too: --pg-port, --data-dir)."""
    rt = resolve(_settings(args))
    print(f"using {rt.describe(broker=broker)}", file=sys.stderr, flush=True)
    try:
        db.connect(rt.database_url).close()
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or ["refused"])[0]
        raise ServiceError(
            f"cannot connect to the {rt.describe()}: {reason}. Start it with "
            "`eldercare demo` or `eldercare services` (same --pg-port/--data-dir), or set "
            "ELDERCARE_DATABASE_URL") from None
    return rt


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending database migrations."""
    rt = _admin_runtime(args)
    applied = migrate(rt.database_url)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def cmd_site_add(args: argparse.Namespace) -> int:
    """Create a site."""
    rt = _admin_runtime(args)
    with db.connect(rt.database_url) as conn:
        add_site(conn, args.id, args.name, args.timezone)
    print(json.dumps({"site": args.id}))
    return 0


def cmd_alerts_settings(args: argparse.Namespace) -> int:
    """Show, set or clear alert-threshold overrides of a site or a resident."""
    from alerts import overrides

    settings = _settings(args)
    rt = _admin_runtime(args)
    target: dict[str, Any] = ({"site": args.site} if args.site is not None
                              else {"resident": args.resident})
    with db.connect(rt.database_url) as conn:
        if args.clear:
            overrides.clear_override(conn, **target)
        elif args.set is not None:
            try:
                change = json.loads(args.set)
            except ValueError as exc:
                raise overrides.OverrideError(f"--set must be a JSON object: {exc}") from None
            if not isinstance(change, dict):
                raise overrides.OverrideError("--set must be a JSON object")
            overrides.set_override(conn, settings.alerts, change, replace=args.replace,
                                   **target)
        conn.commit()
        stored = overrides.get_override(conn, **target)
        out: dict[str, Any] = {**target, "override": stored}
        if args.resident is not None:
            out["effective"] = overrides.resident_settings(
                conn, settings.alerts, args.resident).model_dump(mode="json")
    print(json.dumps(out, indent=2))
    return 0


def cmd_resident_add(args: argparse.Namespace) -> int:
    """Create a resident."""
    rt = _admin_runtime(args)
    with db.connect(rt.database_url) as conn:
        rid = add_resident(conn, args.site, args.name, args.address, args.birth_year)
    print(json.dumps({"resident_id": rid, "site": args.site}))
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create a person's account (password prompted, or generated and shown once)."""
    import getpass
    import secrets

    rt = _admin_runtime(args)
    password = args.password
    generated = False
    if password is None:
        if sys.stdin.isatty():
            password = getpass.getpass(f"Password for {args.username}: ")
        else:
            password, generated = secrets.token_urlsafe(12), True
    with db.connect(rt.database_url) as conn:
        uid = accounts.add_user(conn, args.username, password, args.role, args.site,
                                args.full_name or "", args.on_duty, args.resident)
    out: dict[str, Any] = {"user_id": uid, "username": args.username, "role": args.role}
    if generated:
        out["password"] = password
    print(json.dumps(out))
    return 0


def cmd_user_activate(args: argparse.Namespace) -> int:
    """Let an account log in again (its old sessions stay revoked)."""
    return _set_user_active(args, True)


def cmd_user_deactivate(args: argparse.Namespace) -> int:
    """Lock an account out: it cannot log in, and its sessions and live streams end now."""
    return _set_user_active(args, False)


def _set_user_active(args: argparse.Namespace, active: bool) -> int:
    rt = _admin_runtime(args)
    with db.connect(rt.database_url) as conn:
        uid = accounts.set_user_active(conn, args.username, active)
    print(json.dumps({"user_id": uid, "username": args.username, "active": active}))
    return 0


def cmd_device_add(args: argparse.Namespace) -> int:
    """Register a device and create its broker account; print its credentials once."""
    rt = _admin_runtime(args, broker=True)
    with db.connect(rt.database_url) as conn:
        creds = device_lifecycle.provision(conn, rt.device_accounts(), rt.mqtt, args.resident,
                                           DeviceType(args.type), "cli", args.device_id)
    print(json.dumps(creds.as_dict(), indent=2))
    return 0


def _warn_if_beyond_retention(start: datetime, retention_days: int) -> None:
    """Say so when a simulated start lies before the raw retention window: the platform
    dead-letters such readings as too old (docs/protocol.md), so nothing would be stored."""
    oldest = datetime.now(UTC) - timedelta(days=retention_days)
    if start < oldest:
        print(f"warning: --start {start.isoformat()} is older than the platform's raw retention "
              f"window ({retention_days} days, ELDERCARE_RAW_RETENTION_DAYS): the platform "
              "will refuse those readings as too old (dead letters); choose a start after "
              f"{oldest:%Y-%m-%d}", file=sys.stderr, flush=True)


def _aware_datetime(text: str) -> datetime:
    """An ISO 8601 date-time with an explicit offset: a naive one would be read in the
    machine's time zone, and the same command would simulate different hours elsewhere."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset (e.g. Z or +08:00)")
    return value


def _where_parent() -> argparse.ArgumentParser:
    """The one set of flags saying where the embedded broker and database are, shared by
    every command that connects (demo, serve, the parts, the admin commands), so an admin
    command reaches the same district as the demo started with the same flags."""
    where = argparse.ArgumentParser(add_help=False)
    group = where.add_argument_group(
        "embedded services (with ELDERCARE_DATABASE_URL/ELDERCARE_MQTT_URL set, the "
        "external ones are used and the port flags are refused)")
    group.add_argument("--mqtt-port", type=int,
                       help="Mosquitto port on 127.0.0.1 (default 18830, ELDERCARE_MQTT_PORT)")
    group.add_argument("--pg-port", type=int,
                       help="PostgreSQL port on 127.0.0.1 (default 15432, ELDERCARE_PG_PORT)")
    group.add_argument("--data-dir", type=Path,
                       help="folder of the embedded services' data and generated secrets "
                            "(default: data/ in the checkout, ELDERCARE_DATA_DIR)")
    return where


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="eldercare", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    where = _where_parent()
    web = argparse.ArgumentParser(add_help=False)
    web.add_argument("--web-port", type=int,
                     help="web app port on 127.0.0.1 (default 8080, ELDERCARE_WEB_PORT)")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str,
            parent: Any = sub, parents: Sequence[argparse.ArgumentParser] = (where,),
            ) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_,
                                                        parents=list(parents))
        sp.set_defaults(func=fn)
        return sp

    for name, fn, help_ in (("demo", cmd_demo, "start everything with simulated homes"),
                            ("serve", cmd_serve, "start pipeline and web app")):
        sp = add(name, fn, help_, parents=(where, web))
        sp.add_argument("--sites", help="comma-separated sites the pipeline owns")
        if name == "demo":
            sp.add_argument("--homes", dest="demo_homes", type=int, help="homes to seed")
    add("services", cmd_services, "start only the embedded broker and database")
    sp = add("pipeline", cmd_pipeline, "run one pipeline process")
    sp.add_argument("--sites", help="comma-separated sites this process owns (default: all)")
    sp.add_argument("--name", default="main", help="unique per pipeline process")
    sp.add_argument("--stats-file", help="benchmarks: write throughput/CPU/lag stats here")
    add("jobs", cmd_jobs, "run the scheduled jobs: rollups, retention, alert escalation and "
                          "notifications (one per database)")
    add("dashboard", cmd_dashboard, "run the web app", parents=(where, web))
    sp = add("simulate", cmd_simulate, "drive simulated homes (see docs/simulators.md)")
    sp.add_argument("--mode", default="demo",
                    choices=["demo", "realtime", "accelerated", "fleet", "load"],
                    help="demo: the demo fleet in real time (default); realtime/accelerated:"
                         " scripted days with incidents; fleet: many homes; load: fixed rate")
    sp.add_argument("--creds", help="JSON list of device credentials (default: the demo's)")
    sp.add_argument("--provision", type=int, metavar="N",
                    help="first create N simulated homes (devices + broker accounts)")
    sp.add_argument("--telemetry-period", type=float, default=5.0)
    sp.add_argument("--sos-interval", type=float, default=180.0,
                    help="demo: mean seconds between simulated SOS presses across the fleet")
    sp.add_argument("--days", type=float, help="simulated days (realtime/accelerated)")
    sp.add_argument("--duration", type=float, help="wall seconds (fleet/load)")
    sp.add_argument("--rate", type=float, help="load: total messages per second")
    sp.add_argument("--start", type=_aware_datetime, metavar="ISO-8601",
                    help="simulated start with its UTC offset, e.g. 2026-03-01T03:00:00Z "
                         "(default: accelerated ends now, the others start now)")
    sp.add_argument("--seed", type=int, default=1)
    sp.add_argument("--incidents-per-day", type=float, default=0.5,
                    help="incidents per home and simulated day")
    sp.add_argument("--truth", help="ground-truth file (default: data/ground-truth/...)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")

    dbp = sub.add_parser("db", help="database administration").add_subparsers(
        dest="db_command", required=True)
    add("migrate", cmd_migrate, "apply pending migrations", dbp)

    site = sub.add_parser("site", help="sites").add_subparsers(dest="site_cmd", required=True)
    sp = add("add", cmd_site_add, "create a site", site)
    sp.add_argument("id", help="slug, e.g. riverside")
    sp.add_argument("--name", required=True)
    sp.add_argument("--timezone", default="UTC")

    alerts_p = sub.add_parser("alerts", help="alert rules").add_subparsers(
        dest="alerts_cmd", required=True)
    sp = add("settings", cmd_alerts_settings,
             "show/set/clear threshold overrides of a site or resident (docs/alerts.md)",
             alerts_p)
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument("--site")
    who.add_argument("--resident", type=int)
    what = sp.add_mutually_exclusive_group()
    what.add_argument("--set", metavar="JSON",
                      help='partial settings, e.g. \'{"heart_rate": {"urgent_at_or_above": 140}}\'')
    what.add_argument("--clear", action="store_true", help="remove the override")
    sp.add_argument("--replace", action="store_true",
                    help="replace the stored override instead of merging into it")

    res = sub.add_parser("resident", help="residents").add_subparsers(dest="res_cmd",
                                                                      required=True)
    sp = add("add", cmd_resident_add, "create a resident", res)
    sp.add_argument("--site", required=True)
    sp.add_argument("--name", required=True)
    sp.add_argument("--address")
    sp.add_argument("--birth-year", type=int)

    user = sub.add_parser("user", help="people's accounts").add_subparsers(dest="user_cmd",
                                                                           required=True)
    sp = add("add", cmd_user_add, "create an account", user)
    sp.add_argument("--username", required=True)
    sp.add_argument("--role", required=True, choices=accounts.ROLES)
    sp.add_argument("--site", help="required for duty_officer and care_worker")
    sp.add_argument("--resident", type=int, action="append",
                    help="resident id a family member may see (repeatable)")
    sp.add_argument("--full-name")
    sp.add_argument("--password", help="default: prompt, or generate when not a terminal")
    sp.add_argument("--on-duty", action="store_true")
    for name, func, text in (
            ("deactivate", cmd_user_deactivate,
             "lock an account out: its sessions and live streams end at once"),
            ("activate", cmd_user_activate, "let a deactivated account log in again")):
        sp = add(name, func, text, user)
        sp.add_argument("--username", required=True)

    dev = sub.add_parser("device", help="devices").add_subparsers(dest="dev_cmd", required=True)
    sp = add("add", cmd_device_add, "register a device and print its credentials", dev)
    sp.add_argument("--resident", type=int, required=True)
    sp.add_argument("--type", required=True, choices=[t.value for t in DeviceType])
    sp.add_argument("--device-id", help="default: generated")
    devices_admin.register(sub, add, dev, _settings)
    return p


def where_parser() -> argparse.ArgumentParser:
    """The --mqtt-port/--pg-port/--data-dir parent parser, for tools outside the product
    (benchmarks/) that must connect exactly where `eldercare` commands do."""
    return _where_parent()


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings with the where-flags of `args` applied (see `where_parser`)."""
    return _settings(args)


def prepare_services(settings: Settings) -> tuple[Runtime, list[ManagedProcess]]:
    """Start the embedded services if configured so and migrate; the caller stops them."""
    return _prepare(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `eldercare` command."""
    logging.basicConfig(level=os.environ.get("ELDERCARE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (accounts.RegistryError, BrokerAdminError, ServiceError, OverrideError,
            DeviceAccountsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

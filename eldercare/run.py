"""The long-running commands of `eldercare`: the whole platform under one supervisor (demo,
serve), each part on its own (pipeline, dashboard, jobs, simulate) and the embedded services.

Kept apart from eldercare/cli.py (the parser and the administration commands) because these
own a process's life: signals, the systemd watchdog, child processes, the banner. A child
of demo/serve is started as `python -m eldercare.cli <part>` and lands back here.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from eldercare import systemd
from eldercare.embedded import ManagedProcess, die_with_parent, port_open
from eldercare.migrate import migrate
from eldercare.runtime import (
    Runtime,
    embedded_starters,
    ensure_database_role,
    ensure_pipeline_account,
    resolve,
    start_embedded,
)
from eldercare.settings import Settings
from eldercare.supervisor import Supervisor
from gateway.broker_admin import BrokerAdminError
from gateway.device_accounts import DeviceAccountsError
from gateway.presence import Presence, part_name

if TYPE_CHECKING:
    from simulators.sinks import SinkAddresses

logger = logging.getLogger("eldercare")


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings with the where-flags of `args` applied (`eldercare.cli.where_parser`); a port
    flag next to external URLs is refused rather than silently ignored."""
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

    settings = settings_for(args)
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
    pipe.writer.write_timeout_s = settings.ingest_write_timeout_s
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

    settings = settings_for(args)
    rt = resolve(settings)
    streams = StreamSettings(max_per_account=settings.web_streams_per_account,
                             max_per_address=settings.web_streams_per_address)
    app = create_app(rt.database_url, rt.jwt_secret, settings.token_ttl_minutes, mqtt=rt.mqtt,
                     stream_settings=streams,
                     totp_required_roles=frozenset(settings.auth_totp_required_roles),
                     notify_settings=settings.notify,
                     devices=DevicesConfig(rt.device_accounts(), rt.mqtt, rt.mqtt_admin),
                     display_token_minutes=settings.display_token_minutes)
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


def cmd_sinks(args: argparse.Namespace) -> int:
    """Run the demo's notification sinks until SIGINT/SIGTERM (simulators/sinks.py)."""
    from simulators.sinks import SinkAddresses, serve_sinks

    settings = settings_for(args)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    addresses = SinkAddresses(smtp_port=args.smtp_port, webhook_port=args.webhook_port)
    systemd.ready()
    serve_sinks(addresses, settings.data_dir, stop)
    return 0


def cmd_responder(args: argparse.Namespace) -> int:
    """Run the demo's responder (simulators/responder.py) until SIGINT/SIGTERM: a simulated
    care worker answering the demo sites' alerts through the web app's API."""
    import json

    from eldercare.seed import RESPONDER_FILE
    from simulators.responder import Responder, ResponderPolicy, logins_from

    settings = settings_for(args)
    path = Path(args.logins) if args.logins else settings.data_dir / RESPONDER_FILE
    if not path.exists():
        print(f"no responder accounts at {path}; `eldercare demo` creates them",
              file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "") else settings.web_host  # noqa: S104
    # One INFO line per action is the responder's own; httpx would add one per request.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    responder = Responder(f"http://{host}:{settings.web_port}",
                          logins_from(json.loads(path.read_text())), seed=args.seed,
                          policy=ResponderPolicy(escalation=settings.alerts.escalation))
    systemd.ready()
    try:
        responder.run(stop)
    finally:
        responder.close()
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Drive simulated homes: the real-time demo fleet, or a replay/fleet/load run."""
    from simulators import cli as sim

    settings = settings_for(args)
    rt = resolve(settings)
    if args.provision:
        creds = Path(args.creds or rt.data_dir / f"sim-devices-{args.provision}.json")
        sim.provision_to_file(rt.database_url, rt.device_accounts(), rt.mqtt, args.provision,
                              creds)
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
                          sos_mean_interval_s=args.sos_interval,
                          site_tz=sim.site_zones(rt.database_url))
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
    """Run the scheduled jobs: storage (rollups, daily summaries, retention), learning
    (baselines and routine change), alert escalation, and the notification dispatcher."""

    from alerts.escalation import EscalationRunner
    from alerts.learning.job import JOB as LEARNING_JOB
    from alerts.learning.job import LearningSettings, run_learning
    from alerts.learning.outliers import DIGEST_JOB, digest_job
    from alerts.notify.dispatcher import Dispatcher
    from ingest.jobs import DAILY_JOB, JobSettings, start_scheduler

    settings = settings_for(args)
    rt = resolve(settings)
    cfg = JobSettings(retention=timedelta(days=settings.raw_retention_days),
                      audit_retention=timedelta(days=settings.audit_retention_days))
    # Routine change and the outlier digest (issue 15) read the days the daily summaries
    # completed: they check as often as those run (the digest writes once a day per site).
    learning = LearningSettings(alerts=settings.alerts, daily_job=DAILY_JOB)
    scheduler = start_scheduler(
        rt.database_url, cfg,
        extra=[(LEARNING_JOB, lambda conn, now, _cfg: run_learning(conn, now, learning),
                cfg.daily_interval_s),
               (DIGEST_JOB, digest_job(settings.alerts), cfg.daily_interval_s)])
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
    # Its own process group: a terminal's Ctrl-C reaches only the parent, which stops the
    # children in order (simulators, then the pipeline, ... the database last).
    proc = subprocess.Popen([sys.executable, "-m", "eldercare.cli", *argv],
                            preexec_fn=die_with_parent, env=env, process_group=0)
    return ManagedProcess(name, proc)


def _children_env(settings: Settings, rt: Runtime) -> dict[str, str]:
    """What every child of `demo`/`serve` must use: the parent's resolved broker, database,
    token key and data folder (so flags such as --pg-port reach them), and its web address.
    A child never re-derives these from its own defaults."""
    return {**rt.child_env(), "ELDERCARE_WEB_HOST": settings.web_host,
            "ELDERCARE_WEB_PORT": str(settings.web_port)}


def demo_public_url(settings: Settings) -> dict[str, str]:
    """The demo's web address for the links in its messages ("Open: http://…/alerts/3"),
    unless one is configured: without it they read "Open: /alerts/3", which nobody can
    click in an e-mail or a chat robot's message."""
    if settings.notify.public_url:
        return {}
    every = ("0.0.0.0", "::", "")  # noqa: S104 (addresses compared, nothing bound)
    host = "127.0.0.1" if settings.web_host in every else settings.web_host
    if ":" in host:
        host = f"[{host}]"
    return {"ELDERCARE_NOTIFY__PUBLIC_URL": f"http://{host}:{settings.web_port}"}


def prepare_services(settings: Settings) -> tuple[Runtime, list[ManagedProcess]]:
    """Start the embedded services if configured so and migrate; the caller stops them."""
    rt = resolve(settings)
    services: list[ManagedProcess] = []
    if rt.embedded:
        services = start_embedded(settings)
    migrate(rt.owner_url)
    return rt, services


def _run_platform(args: argparse.Namespace, demo: bool) -> int:
    """Start every part under one supervisor that restarts what crashes (eldercare.supervisor)
    and stops everything, in reverse order, on Ctrl-C/SIGTERM."""
    settings = settings_for(args)
    rt = resolve(settings)
    supervisor = Supervisor()
    responder = demo and not getattr(args, "no_responder", False)
    try:
        if rt.embedded:
            for name, start in embedded_starters(settings):
                supervisor.add(name, start)  # ServiceError at first start: reported by main()
            ensure_database_role(settings)
            ensure_pipeline_account(settings)
            migrate(rt.owner_url)  # the embedded database is up: it was waited for
        else:
            _migrate_when_up(rt.owner_url)
        _migrate_plugin_accounts(rt)
        logins = None
        env = _children_env(settings, rt)
        sinks = None
        if demo:
            from eldercare.seed import configure_demo_channels, ensure_demo_responders, seed_demo
            from simulators.sinks import SinkAddresses, free_port

            logins = seed_demo(rt.database_url, rt.device_accounts(), rt.mqtt, rt.data_dir,
                               homes=settings.demo_homes)
            configure_demo_channels(rt.database_url)  # also for a demo seeded before them
            if responder:
                ensure_demo_responders(rt.database_url, rt.data_dir)  # likewise
            # The demo's stand-ins for the mail server and the chat robots (docs/alerts.md,
            # "The demo's receivers"): every child sends e-mail and robot messages there.
            sinks = SinkAddresses(smtp_port=free_port(), webhook_port=free_port())
            env.update(sinks.notify_env())
            env.update(demo_public_url(settings))
        for name, argv in platform_parts(settings.sites, sinks, responder):
            supervisor.add(name, _starter(name, argv, env))
        _banner(settings, rt, logins, sinks.webhook_url if sinks else None, responder)
        _wait_for_signal(supervisor.poll)
    finally:
        supervisor.stop_all()
        print("eldercare stopped.")
    return 0


def platform_parts(sites: list[str], sinks: SinkAddresses | None, responder: bool
                   ) -> list[tuple[str, list[str]]]:
    """The children of `serve` (pipeline, web app, jobs) and of `demo`: with the demo's
    receivers (`sinks`), the receivers and the simulated homes first, and the demo's
    responder last (`responder`). The order is the start order; shutdown goes in reverse."""
    extra = ["--sites", ",".join(sites)] if sites else []
    parts = [("pipeline", ["pipeline", *extra]), ("dashboard", ["dashboard"]),
             ("jobs", ["jobs"])]
    if sinks is not None:
        # Started first so that they stop last: when the demo stops, the simulated homes
        # powering off (or their Last Wills) reach the pipeline's session only after the
        # pipeline is gone, and its next start counts them as the platform's own stop
        # (docs/alerts.md), instead of opening a device_offline per home and paging carers.
        parts.insert(0, ("simulators", ["simulate"]))
        parts.insert(0, ("sinks", ["sinks", "--smtp-port", str(sinks.smtp_port),
                                   "--webhook-port", str(sinks.webhook_port)]))
    if responder:
        # After the web app it talks to, and stopped first: no action half-way at shutdown.
        parts.append(("responder", ["responder"]))
    return parts


def _migrate_plugin_accounts(rt: Runtime) -> None:
    """Device accounts still in the dynamic-security plugin move to the password/ACL files
    (record 0006; a no-op once done). A broker that cannot take the change now is logged,
    not fatal: those devices keep logging in through the plugin until the next start."""
    from eldercare.admin.devices import migrate_plugin_accounts

    try:
        result = migrate_plugin_accounts(rt)
    except (BrokerAdminError, DeviceAccountsError, OSError) as exc:
        logger.error("device accounts in the dynamic-security plugin not migrated: %s", exc)
        return
    if result.converted or result.removed_from_plugin:
        logger.info("device accounts migrated from the dynamic-security plugin: %s",
                    result.as_dict())


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


def _banner(settings: Settings, rt: Runtime, logins: list[Any] | None,
            sinks_url: str | None = None, responder: bool = False) -> None:
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
    if sinks_url:
        lines.append(f"  Sent notifications:    {web}/admin/notifications "
                     f"(the demo's receivers: {sinks_url}/inbox)")
    if responder:
        lines.append("  Demo responder:        a simulated care worker answers the alerts "
                     "(responder-<site>; `demo --no-responder` leaves them to you)")
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
    settings = settings_for(args)
    rt, services = prepare_services(settings)  # ServiceError is reported by main()
    print(f"Mosquitto on 127.0.0.1:{settings.mqtt_port}, PostgreSQL: {_redact(rt.database_url)}"
          "\nPress Ctrl-C to stop.", flush=True)
    _wait_for_signal()
    for proc in reversed(services):
        proc.stop()
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

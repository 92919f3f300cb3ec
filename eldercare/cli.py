"""The `eldercare` command: its parser, `main`, and the administration commands.

The long-running commands (demo, serve and each part) are in eldercare/run.py; this module
wires them into the parser next to the commands that edit the registry and then exit.
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

import psycopg

from alerts.overrides import OverrideError
from eldercare.admin import audit as admin_audit
from eldercare.admin import devices as devices_admin
from eldercare.admin import digest as digest_cli
from eldercare.admin import ledger
from eldercare.admin import staff as staff_cli
from eldercare.admin.audited import audited, note, unaudited
from eldercare.argtypes import aware_datetime
from eldercare.embedded import ServiceError
from eldercare.evaluation import cli as eval_cli
from eldercare.migrate import migrate
from eldercare.run import (
    cmd_dashboard,
    cmd_demo,
    cmd_jobs,
    cmd_pipeline,
    cmd_responder,
    cmd_serve,
    cmd_services,
    cmd_simulate,
    cmd_sinks,
    settings_for,
)
from eldercare.runtime import Runtime, ensure_database_role, resolve
from gateway import device_lifecycle
from gateway.broker_admin import BrokerAdminError
from gateway.device_accounts import DeviceAccountsError
from gateway.schema import DeviceType
from kernel import accounts, db
from kernel.audit import Action, Target

logger = logging.getLogger("eldercare")

for _running in (cmd_dashboard, cmd_demo, cmd_jobs, cmd_pipeline, cmd_responder, cmd_serve,
                 cmd_services, cmd_simulate, cmd_sinks):
    unaudited("runs the platform or its simulator; the web app and the parts record what "
              "people do through them")(_running)


# --- administration ------------------------------------------------------------------


def _admin_runtime(args: argparse.Namespace, broker: bool = False) -> Runtime:
    """Resolve where an admin command connects and say so on stderr, so nobody edits the
    wrong district by accident (the demo's flags apply here too: --pg-port, --data-dir)."""
    rt = resolve(settings_for(args))
    print(f"using {rt.describe(broker=broker)}", file=sys.stderr, flush=True)
    try:
        if rt.embedded:  # a server started by older code: its application role, first
            ensure_database_role(settings_for(args))
        db.connect(rt.database_url).close()
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or ["refused"])[0]
        raise ServiceError(
            f"cannot connect to the {rt.describe()}: {reason}. Start it with "
            "`eldercare demo` or `eldercare services` (same --pg-port/--data-dir), or set "
            "ELDERCARE_DATABASE_URL") from None
    return rt


def admin_runtime(args: argparse.Namespace, broker: bool = False) -> Runtime:
    """`_admin_runtime` for the command modules of eldercare.admin."""
    return _admin_runtime(args, broker)


@unaudited("changes the schema, not people's data (the audit table may not exist yet)")
def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending database migrations."""
    rt = _admin_runtime(args)
    applied = migrate(rt.owner_url)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def _alerts_settings_action(args: argparse.Namespace) -> Action | None:
    """A change is a site or resident change; showing a resident's settings reads their
    record; showing a site's reads nobody's data."""
    changing = args.clear or args.set is not None
    if args.site is not None:
        return Action.SITE_UPDATE if changing else None
    return Action.RESIDENT_UPDATE if changing else Action.RESIDENT_READ


def _alerts_settings_target(args: argparse.Namespace) -> Target:
    if args.site is not None:
        return Target("site", args.site)
    return Target("resident", args.resident, args.resident)


@audited(_alerts_settings_action, _alerts_settings_target)
def cmd_alerts_settings(args: argparse.Namespace) -> int:
    """Show, set or clear alert-threshold overrides of a site or a resident."""
    from alerts import overrides

    settings = settings_for(args)
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
        if args.clear or args.set is not None:
            note().detail.update(alert_settings="cleared" if args.clear else args.set,
                                 replace=bool(args.replace))
        stored = overrides.get_override(conn, **target)
        out: dict[str, Any] = {**target, "override": stored}
        if args.resident is not None:
            out["effective"] = overrides.resident_settings(
                conn, settings.alerts, args.resident).model_dump(mode="json")
    print(json.dumps(out, indent=2))
    return 0


@audited(Action.USER_CREATE, lambda args: Target("user"))
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
        conn.commit()
    note().target = Target("user", uid)
    note().detail.update(username=args.username, role=args.role, site=args.site,
                         residents=args.resident or [])
    out: dict[str, Any] = {"user_id": uid, "username": args.username, "role": args.role}
    if generated:
        out["password"] = password
    print(json.dumps(out))
    return 0


@audited(Action.USER_ACTIVATE, lambda args: Target("user"))
def cmd_user_activate(args: argparse.Namespace) -> int:
    """Let an account log in again (its old sessions stay revoked)."""
    return _set_user_active(args, True)


@audited(Action.USER_DEACTIVATE, lambda args: Target("user"))
def cmd_user_deactivate(args: argparse.Namespace) -> int:
    """Lock an account out: it cannot log in, and its sessions and live streams end now."""
    return _set_user_active(args, False)


def _set_user_active(args: argparse.Namespace, active: bool) -> int:
    rt = _admin_runtime(args)
    with db.connect(rt.database_url) as conn:
        uid = accounts.set_user_active(conn, args.username, active)
        conn.commit()
    note().target = Target("user", uid)
    note().detail["username"] = args.username
    print(json.dumps({"user_id": uid, "username": args.username, "active": active}))
    return 0


@audited(Action.DEVICE_PROVISION, lambda args: Target("device", args.device_id, args.resident))
def cmd_device_add(args: argparse.Namespace) -> int:
    """Register a device and create its broker account; print its credentials once."""
    rt = _admin_runtime(args, broker=True)
    with db.connect(rt.database_url) as conn:
        creds = device_lifecycle.provision(conn, rt.device_accounts(), rt.mqtt, args.resident,
                                           DeviceType(args.type), "cli", args.device_id)
        conn.commit()
    entry = device_lifecycle.provision_entry(creds)
    note().target, note().detail = entry.target, entry.detail
    print(json.dumps(creds.as_dict(), indent=2))
    return 0


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
            sp.add_argument("--no-responder", action="store_true",
                            help="do not start the simulated care worker who answers the "
                                 "demo's alerts (then nobody acknowledges them but you)")
    add("services", cmd_services, "start only the embedded broker and database")
    sp = add("pipeline", cmd_pipeline, "run one pipeline process")
    sp.add_argument("--sites", help="comma-separated sites this process owns (default: all)")
    sp.add_argument("--name", default="main", help="unique per pipeline process")
    sp.add_argument("--stats-file", help="benchmarks: write throughput/CPU/lag stats here")
    add("jobs", cmd_jobs, "run the scheduled jobs: rollups, retention, alert escalation and "
                          "notifications (one per database)")
    add("dashboard", cmd_dashboard, "run the web app", parents=(where, web))
    sp = add("sinks", cmd_sinks, "run the demo's local notification receivers (an SMTP sink "
                                 "and a WeCom/DingTalk webhook sink)")
    sp.add_argument("--smtp-port", type=int, required=True)
    sp.add_argument("--webhook-port", type=int, required=True)
    sp = add("responder", cmd_responder, "the demo's simulated care worker: answers the demo "
                                         "sites' alerts through the web app's API (started by "
                                         "`demo`; see docs/simulators.md)", parents=(where, web))
    sp.add_argument("--logins", help="its accounts (default: demo-responder.json in the data "
                                     "folder, written by the demo's seed)")
    sp.add_argument("--seed", type=int, default=1, help="seed of its answer times and outcomes")
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
    sp.add_argument("--start", type=aware_datetime, metavar="ISO-8601",
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

    ledger.register(sub, add)
    admin_audit.register(sub, add)
    eval_cli.register(sub, add)

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
    digest_cli.register(alerts_p, add, _admin_runtime, settings_for)

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
    staff_cli.register(user, add, _admin_runtime)

    dev = sub.add_parser("device", help="devices").add_subparsers(dest="dev_cmd", required=True)
    sp = add("add", cmd_device_add, "register a device and print its credentials", dev)
    sp.add_argument("--resident", type=int, required=True)
    sp.add_argument("--type", required=True, choices=[t.value for t in DeviceType])
    sp.add_argument("--device-id", help="default: generated")
    devices_admin.register(sub, add, dev, settings_for)
    return p


def where_parser() -> argparse.ArgumentParser:
    """The --mqtt-port/--pg-port/--data-dir parent parser, for tools outside the product
    (benchmarks/) that must connect exactly where `eldercare` commands do."""
    return _where_parent()


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

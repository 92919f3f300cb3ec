"""`eldercare device list|show|revoke|move` and `eldercare import`: device administration and
the bulk import for scripts, through the same core as the API (gateway.device_lifecycle,
gateway.bulk_import; record 0006)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from eldercare.admin import output
from eldercare.admin.audited import audited, note
from eldercare.embedded import ServiceError
from eldercare.runtime import Runtime, resolve
from eldercare.settings import Settings
from gateway import bulk_import, device_lifecycle, dynsec_migration
from gateway.broker_admin import BrokerAdmin
from gateway.device_accounts import DeviceAccountsError
from gateway.schema import DeviceType
from kernel import db
from kernel.accounts import RegistryError
from kernel.audit import Action, Target


class AddCommand(Protocol):
    """build_parser's `add` (eldercare/cli.py)."""

    def __call__(self, name: str, fn: Callable[[argparse.Namespace], int], help_: str,
                 parent: Any = ...) -> argparse.ArgumentParser: ...


Resolve = Callable[[argparse.Namespace], Settings]

DEVICE_COLUMNS = (("id", "DEVICE"), ("type", "TYPE"), ("site_id", "SITE"),
                  ("resident_id", "RESIDENT"), ("resident_name", "NAME"), ("active", "ACTIVE"),
                  ("online", "ONLINE"), ("battery", "BATTERY %"), ("last_seen", "LAST SEEN"))


def _json(value: object) -> str:
    def default(o: object) -> str:
        if isinstance(o, datetime):
            return o.isoformat()
        return str(o)
    return json.dumps(value, indent=2, default=default)


def migrate_plugin_accounts(rt: Runtime) -> dynsec_migration.MigrationResult:
    """Move device accounts still in the dynamic-security plugin (provisioned before
    migration 0012) into the password/ACL files (gateway/dynsec_migration.py). Run by
    `eldercare device migrate-accounts` and at every start of `serve`/`demo`."""
    with db.connect(rt.database_url) as conn, BrokerAdmin(rt.mqtt_admin) as admin:
        return dynsec_migration.migrate_plugin_devices(conn, rt.device_accounts(), admin)


def credentials_path(sheet: Path, given: str | None) -> Path:
    """Where an import writes its devices' credentials: `--credentials`, else
    FILE-credentials.csv next to the imported FILE (not the current directory: the secrets
    belong with the sheet they came from, docs/admin-guide.md)."""
    return Path(given) if given else sheet.with_name(f"{sheet.stem}-credentials.csv")


def write_secret_file(path: Path, text: str) -> None:
    """Write `text` readable by its owner only (mode 0600, also when the file existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


@contextmanager
def _broker_errors() -> Any:
    """A broker that cannot be reloaded is one line on stderr (main() prints ServiceError)."""
    try:
        yield
    except DeviceAccountsError as exc:
        raise ServiceError(f"{exc}; nothing was changed") from None


def register(sub: Any, add: AddCommand, device_group: Any,
             settings: Resolve) -> None:
    """Add `device list|show|revoke|move` to the `device` group and `import` to `sub`.
    `settings` turns parsed flags into Settings (cli._settings)."""

    def runtime(args: argparse.Namespace) -> Runtime:
        rt = resolve(settings(args))
        print(f"using {rt.describe(broker=True)}", file=sys.stderr, flush=True)
        return rt

    def _device(args: argparse.Namespace) -> Target:
        return Target("device", args.device_id)

    @audited(Action.DEVICE_READ, lambda args: Target("device"))
    def cmd_list(args: argparse.Namespace) -> int:
        """List devices."""
        rt = runtime(args)
        with db.connect(rt.database_url) as conn:
            rows = device_lifecycle.list_devices(
                conn, site=args.site, device_type=DeviceType(args.type) if args.type else None,
                online=args.online, include_revoked=args.all)
            zones = output.site_zones(conn)
        note().detail.update(site=args.site, count=len(rows))
        output.print_list(args, rows, DEVICE_COLUMNS, zones)
        return 0

    @audited(Action.DEVICE_READ, _device)
    def cmd_show(args: argparse.Namespace) -> int:
        """One device and its health history."""
        rt = runtime(args)
        with db.connect(rt.database_url) as conn:
            detail = device_lifecycle.device_detail(conn, args.device_id)
            zones = output.site_zones(conn)
        if detail is None:
            raise RegistryError(f"no device {args.device_id!r}")
        note().target = Target("device", args.device_id, detail["resident_id"])
        output.print_one(args, detail, zones.get(detail["site_id"]))
        return 0

    @audited(Action.DEVICE_REVOKE, _device)
    def cmd_revoke(args: argparse.Namespace) -> int:
        """Revoke a device: its live broker session ends at once."""
        rt = runtime(args)
        with _broker_errors(), db.connect(rt.database_url) as conn, \
                BrokerAdmin(rt.mqtt_admin) as admin:
            site, resident = device_lifecycle.revoke(conn, rt.device_accounts(),
                                                     args.device_id, "cli", admin)
            conn.commit()
        entry = device_lifecycle.revoke_entry(args.device_id, site, resident)
        note().target, note().detail = entry.target, entry.detail
        print(_json({"device_id": args.device_id, "revoked": True}))
        return 0

    @audited(Action.DEVICE_UPDATE, lambda args: Target("device", args.device_id,
                                                       args.resident))
    def cmd_move(args: argparse.Namespace) -> int:
        """Give a device to another resident."""
        rt = runtime(args)
        with _broker_errors(), db.connect(rt.database_url) as conn:
            old, new = device_lifecycle.move(conn, rt.device_accounts(), args.device_id,
                                             args.resident, "cli")
            conn.commit()
        entry = device_lifecycle.move_entry(args.device_id, args.resident, old, new)
        note().target, note().detail = entry.target, entry.detail
        print(_json({"device_id": args.device_id, "resident_id": args.resident,
                     "from_site": old, "site": new}))
        return 0

    @audited(Action.DEVICE_UPDATE, lambda args: Target("device"))
    def cmd_migrate_accounts(args: argparse.Namespace) -> int:
        """Move pre-0012 device accounts from the plugin to the files."""
        rt = runtime(args)
        with _broker_errors():
            result = migrate_plugin_accounts(rt)
        note().detail.update(migrate_accounts=result.as_dict())
        print(_json(result.as_dict()))
        return 0

    @audited(Action.IMPORT, lambda args: Target("import", Path(args.file).name))
    def cmd_import(args: argparse.Namespace) -> int:
        """Import residents and devices from CSV/XLSX; all rows or none."""
        path = Path(args.file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        table = bulk_import.read_table(data, path.name)
        rt = runtime(args)
        with db.connect(rt.database_url) as conn:
            report = bulk_import.check(conn, table, default_site=args.site)
            if report.ok and not args.dry_run:
                conn.commit()
                with _broker_errors():
                    bulk_import.apply(conn, rt.device_accounts(), rt.mqtt, report, "cli")
        detail, devices = bulk_import.audit_entries(report, path.name, args.dry_run)
        note().detail.update(detail)
        note().also.extend(devices)
        if report.errors:
            sys.stdout.write(bulk_import.errors_csv(report.errors))
            print(f"error: {len(report.errors)} problem(s) in {path.name}; nothing imported",
                  file=sys.stderr)
            return 1
        if report.applied:
            out = credentials_path(path, args.credentials)
            write_secret_file(out, bulk_import.credentials_csv(report.credentials))
            print(f"device credentials (shown once, keep safe): {out}", file=sys.stderr)
        print(_json(report.summary()))
        return 0

    sp = add("list", cmd_list, "list devices", device_group)
    output.add_json_flag(sp)
    sp.add_argument("--site")
    sp.add_argument("--type", choices=[t.value for t in DeviceType])
    state = sp.add_mutually_exclusive_group()
    state.add_argument("--online", dest="online", action="store_const", const=True)
    state.add_argument("--offline", dest="online", action="store_const", const=False)
    sp.add_argument("--all", action="store_true", help="include revoked devices")
    sp = add("show", cmd_show, "a device and its health history", device_group)
    sp.add_argument("device_id")
    output.add_json_flag(sp)
    sp = add("revoke", cmd_revoke, "revoke a device: the broker cuts its session at once",
             device_group)
    sp.add_argument("device_id")
    sp = add("move", cmd_move, "give a device to another resident", device_group)
    sp.add_argument("device_id")
    sp.add_argument("--resident", type=int, required=True)
    add("migrate-accounts", cmd_migrate_accounts,
        "move device accounts made before migration 0012 from the dynamic-security plugin "
        "to the password/ACL files (start does this too; safe to repeat)", device_group)
    sp = add("import", cmd_import,
             "import residents and their devices from CSV or XLSX (docs/admin-guide.md)", sub)
    sp.add_argument("file")
    sp.add_argument("--dry-run", action="store_true", help="validate only; print the report")
    sp.add_argument("--site", help="site of rows without one (rows of other sites refused)")
    sp.add_argument("--credentials", metavar="PATH",
                    help="where to write the devices' credentials CSV (default: "
                         "FILE-credentials.csv next to FILE; mode 0600)")

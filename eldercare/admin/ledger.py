"""`eldercare site ...` and `eldercare resident ...`: the ledger from the command line, for
scripting (every read takes --json).

The same checks as the web API: changes go through the API's request model
(dashboard.ledger.models.LedgerFields), and the SQL is kernel.ledger's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

from pydantic import ValidationError

from dashboard.ledger.models import ContactIn, LedgerFields
from eldercare.admin import output
from eldercare.admin.audited import audited, note, unaudited
from kernel import db, ledger
from kernel.accounts import RegistryError
from kernel.audit import Action, Target
from kernel.db import Conn
from kernel.i18n import DEFAULT_LANGUAGE, LANGUAGES
from kernel.sites import add_resident, create_site, update_site

logger = logging.getLogger(__name__)

Add = Callable[..., argparse.ArgumentParser]


def _connect(args: argparse.Namespace) -> Conn:
    """A connection where the other admin commands connect (said on stderr)."""
    from eldercare.cli import _admin_runtime  # the CLI imports this module: import late

    return db.connect(_admin_runtime(args).database_url)


def _out(text: str) -> None:
    """One result on stdout (the CLI's output; diagnostics go to stderr)."""
    sys.stdout.write(text + "\n")


SITE_COLUMNS = (("id", "SITE"), ("name", "NAME"), ("timezone", "TIME ZONE"),
                ("language", "LANGUAGE"), ("address", "ADDRESS"))
RESIDENT_COLUMNS = (("id", "ID"), ("site_id", "SITE"), ("full_name", "NAME"),
                    ("birth_year", "BORN"), ("status", "STATUS"), ("risks", "RISKS"),
                    ("open_alerts", "OPEN ALERTS"), ("address", "ADDRESS"))


# --- sites ----------------------------------------------------------------------------------

_SITES = "SELECT id, name, timezone, language, address, created_at FROM sites {} ORDER BY id"


def _sites(conn: Conn, site: str | None = None) -> list[dict[str, Any]]:
    query = _SITES.format("WHERE id = %(site)s" if site is not None else "")
    rows = conn.execute(query, {"site": site}).fetchall()
    return [dict(zip(("id", "name", "timezone", "language", "address", "created_at"), row,
                     strict=True))
            for row in rows]


def _site(args: argparse.Namespace) -> Target:
    return Target("site", args.id)


def _resident(args: argparse.Namespace) -> Target:
    return Target("resident", args.id, args.id)


@audited(Action.SITE_CREATE, _site)
def cmd_site_add(args: argparse.Namespace) -> int:
    """Create a site; an existing site is an error (use `site update`)."""
    with _connect(args) as conn:
        create_site(conn, args.id, args.name, args.timezone, args.address, args.language)
    note().detail.update(name=args.name, timezone=args.timezone, language=args.language)
    _out(json.dumps({"site": args.id}))
    return 0


@unaudited("a site's name, zone and address are nobody's personal data")
def cmd_site_list(args: argparse.Namespace) -> int:
    """List the sites."""
    with _connect(args) as conn:
        found = _sites(conn)
    output.print_list(args, found, SITE_COLUMNS)
    return 0


@unaudited("a site's name, zone and address are nobody's personal data")
def cmd_site_show(args: argparse.Namespace) -> int:
    """Show one site."""
    with _connect(args) as conn:
        found = _sites(conn, args.id)
    if not found:
        raise RegistryError(f"no site {args.id!r}")
    output.print_one(args, found[0], output.zone_of(found[0]["timezone"]))
    return 0


@audited(Action.SITE_UPDATE, _site)
def cmd_site_update(args: argparse.Namespace) -> int:
    """Change a site's name, time zone, address or language."""
    if (args.name is None and args.timezone is None and args.address is None
            and args.language is None):
        raise RegistryError("nothing to change: give --name, --timezone, --address or "
                            "--language")
    with _connect(args) as conn:
        update_site(conn, args.id, name=args.name, timezone=args.timezone,
                    address=args.address or None, set_address=args.address is not None,
                    language=args.language)
        note().detail["after"] = {"name": args.name, "timezone": args.timezone,
                                  "address": args.address, "language": args.language}
        found = _sites(conn, args.id)
    output.print_one(args, found[0], output.zone_of(found[0]["timezone"]))
    return 0


# --- residents ------------------------------------------------------------------------------

# The API's list item (dashboard.ledger.models.ResidentListOut), key for key.
_LIST = """
SELECT r.id, r.site_id, r.full_name, r.address,
       (SELECT count(*) FROM alerts oa WHERE oa.resident_id = r.id AND oa.status = 'open'),
       r.status, r.risks, r.sex, r.birth_year, r.living_situation, r.phone, r.care_level
FROM residents r {where} ORDER BY r.site_id, r.full_name, r.id
"""
_LIST_FIELDS = ("id", "site_id", "full_name", "address", "open_alerts", "status", "risks",
                "sex", "birth_year", "living_situation", "phone", "care_level")
_DEVICES = """
SELECT resident_id, id, type, online, battery, last_seen FROM devices
WHERE active AND resident_id = ANY(%(ids)s) ORDER BY type, id
"""


def _with_devices(conn: Conn, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each resident's active devices, as the API lists them."""
    by_id: dict[int, list[dict[str, Any]]] = {int(r["id"]): [] for r in found}
    if by_id:
        for rid, *device in conn.execute(_DEVICES, {"ids": list(by_id)}).fetchall():
            by_id[int(rid)].append(dict(zip(("id", "type", "online", "battery", "last_seen"),
                                            device, strict=True)))
    return [{**r, "devices": by_id[int(r["id"])]} for r in found]


@audited(Action.RESIDENT_CREATE, lambda args: Target("resident"))
def cmd_resident_add(args: argparse.Namespace) -> int:
    """Create a resident."""
    given = {"full_name": args.name, "address": args.address, "birth_year": args.birth_year}
    _checked({k: v for k, v in given.items() if v is not None})  # the form's limits
    with _connect(args) as conn:
        rid = add_resident(conn, args.site, args.name, args.address, args.birth_year)
    note().target = Target("resident", rid, rid)
    note().detail["site"] = args.site
    _out(json.dumps({"resident_id": rid, "site": args.site}))
    return 0


@audited(Action.RESIDENT_LIST, lambda args: Target("resident"))
def cmd_resident_list(args: argparse.Namespace) -> int:
    """List residents, filtered by site, risk, status and text."""
    conditions, params = [], {}
    if args.site:
        conditions.append("r.site_id = %(site)s")
        params["site"] = args.site
    if args.risk:
        conditions.append("r.risks && %(risk)s::text[]")
        params["risk"] = args.risk
    conditions.append("r.status = ANY(%(status)s)")
    params["status"] = args.status or ["active", "in_hospital"]
    if args.search:
        conditions.append("(r.full_name ILIKE %(q)s OR r.address ILIKE %(q)s)")
        params["q"] = f"%{args.search}%"
    with _connect(args) as conn:
        rows = conn.execute(_LIST.format(where="WHERE " + " AND ".join(conditions)),
                            params).fetchall()
        found = _with_devices(conn, [dict(zip(_LIST_FIELDS, row, strict=True))
                                     for row in rows])
    note().detail.update(site=args.site, residents=[int(r["id"]) for r in found][:1000])
    output.print_list(args, found, RESIDENT_COLUMNS)
    return 0


def resident_detail(conn: Conn, resident_id: int) -> dict[str, Any]:
    """The ledger entry (without the door code) with contacts and consents."""
    row = conn.execute(ledger.SELECT_DETAIL, {"id": resident_id}).fetchone()
    if row is None:
        raise RegistryError(f"no resident with id {resident_id}")
    out: dict[str, Any] = dict(zip(ledger.DETAIL_COLUMNS, row, strict=False))
    out["has_door_code"] = bool(row[-1])
    out["contacts"] = [dict(zip(("position", "name", "relation", "phone", "notified"), c,
                                strict=True))
                       for c in conn.execute(ledger.SELECT_CONTACTS, {"id": resident_id})]
    out["consents"] = [dict(zip(("id", "kind", "granted", "given_by", "given_on", "method",
                                 "recorded_at"), c, strict=True))
                       for c in conn.execute(ledger.SELECT_CONSENTS, {"id": resident_id})]
    return out


@audited(Action.RESIDENT_READ, _resident)
def cmd_resident_show(args: argparse.Namespace) -> int:
    """Show a resident's ledger entry."""
    with _connect(args) as conn:
        entry = resident_detail(conn, args.id)
        zone = output.site_zones(conn).get(entry["site_id"])
    output.print_one(args, entry, zone)
    return 0


def _contact(text: str) -> dict[str, Any]:
    """NAME|RELATION|PHONE[|no] as a contact (the trailing `no`: not notified)."""
    parts = text.split("|")
    if len(parts) not in (3, 4):
        raise RegistryError(f"--contact {text!r}: use NAME|RELATION|PHONE or "
                            "NAME|RELATION|PHONE|no")
    notified = len(parts) == 3 or parts[3].strip().lower() not in ("no", "false", "0")
    return {"name": parts[0].strip(), "relation": parts[1].strip(), "phone": parts[2].strip(),
            "notified": notified}


_FLAGS = ("full_name", "sex", "birth_year", "birth_date", "address", "access_notes",
          "door_code", "phone", "living_situation", "care_level", "health_notes", "gp",
          "status")


def merged_risks(current: list[str], add: list[str] | None, remove: list[str] | None
                 ) -> list[str]:
    """`current` with `add` appended (each once, in the order given) and `remove` taken out:
    what --add-risk/--remove-risk mean (--risk alone replaces the whole list)."""
    out = [r for r in current if r not in (remove or [])]
    for risk in add or []:
        if risk not in out and risk not in (remove or []):
            out.append(risk)
    return out


def ledger_changes(args: argparse.Namespace, current_risks: list[str] | None = None
                   ) -> LedgerFields:
    """The flags given, checked by the API's request model (RegistryError naming the flag).
    `current_risks`: the stored list, which --add-risk/--remove-risk change."""
    data: dict[str, Any] = {name: getattr(args, name) for name in _FLAGS
                            if getattr(args, name) is not None}
    add, remove = getattr(args, "add_risk", None), getattr(args, "remove_risk", None)
    if args.risk is not None and (add or remove):
        raise RegistryError("--risk replaces the whole list: give it, or --add-risk/"
                            "--remove-risk, not both")
    if args.risk is not None:
        data["risks"] = [] if args.risk == ["none"] else args.risk
    elif add or remove:
        data["risks"] = merged_risks(current_risks or [], add, remove)
    if args.contact is not None:
        data["contacts"] = [_contact(c) for c in args.contact]
    if not data:
        raise RegistryError("nothing to change: give at least one field flag")
    return _checked(data)


def _checked(data: dict[str, Any]) -> LedgerFields:
    """`data` checked by the API's request model (the ledger's limits, kernel/ledger.py), or a
    RegistryError naming each refused flag."""
    try:
        return LedgerFields.model_validate(data)
    except ValidationError as exc:
        raise RegistryError("; ".join(
            f"--{'-'.join(str(p) for p in e['loc'][:1]).replace('_', '-')}: {e['msg']}"
            if e["loc"] else e["msg"] for e in exc.errors())) from None


def apply_changes(conn: Conn, resident_id: int, fields: LedgerFields) -> None:
    """Write `fields` to resident `resident_id` in one transaction."""
    if conn.execute("SELECT 1 FROM residents WHERE id = %s", (resident_id,)).fetchone() is None:
        raise RegistryError(f"no resident with id {resident_id}")
    with conn.transaction():
        changes = fields.column_changes()
        if changes:
            query, params = ledger.update_statement(changes)
            conn.execute(query, {**params, "id": resident_id})
        if fields.contacts is not None:
            conn.execute(ledger.DELETE_CONTACTS, {"id": resident_id})
            for position, contact in enumerate(fields.contacts, start=1):
                conn.execute(ledger.INSERT_CONTACT, {"id": resident_id, "position": position,
                                                     **ContactIn.model_dump(contact)})


@audited(Action.RESIDENT_UPDATE, _resident)
def cmd_resident_update(args: argparse.Namespace) -> int:
    """Change fields of a resident's ledger entry."""
    with _connect(args) as conn:
        row = conn.execute("SELECT risks FROM residents WHERE id = %s FOR UPDATE",
                           (args.id,)).fetchone()
        fields = ledger_changes(args, list(row[0]) if row is not None else [])
        apply_changes(conn, args.id, fields)
        note().detail["after"] = sorted(fields.model_fields_set)
        entry = resident_detail(conn, args.id)
        zone = output.site_zones(conn).get(entry["site_id"])
    output.print_one(args, entry, zone)
    return 0


@audited(Action.RESIDENT_UPDATE, _resident)
def cmd_resident_deactivate(args: argparse.Namespace) -> int:
    """Discharge a resident: monitoring stops, the ledger entry stays."""
    with _connect(args) as conn:
        apply_changes(conn, args.id, LedgerFields(status=ledger.ResidentStatus.DISCHARGED))
        note().detail["after"] = {"status": "discharged"}
        entry = resident_detail(conn, args.id)
    output.print_one(args, {"resident_id": args.id, "status": entry["status"]})
    return 0


# --- the parsers ----------------------------------------------------------------------------


def _json_flag(sp: argparse.ArgumentParser) -> None:
    output.add_json_flag(sp)


_LANGUAGE_HELP = (f"the language of the site's group channels (chat robots, group e-mail): "
                  f"{', '.join(LANGUAGES)}")


def _register_sites(sub: Any, add: Add) -> None:
    site = sub.add_parser("site", help="sites").add_subparsers(dest="site_cmd", required=True)
    sp = add("add", cmd_site_add, "create a site (an existing one is an error)", site)
    sp.add_argument("id", help="slug, e.g. riverside")
    sp.add_argument("--name", required=True)
    sp.add_argument("--timezone", default="UTC", help="IANA name, e.g. Asia/Shanghai")
    sp.add_argument("--address")
    sp.add_argument("--language", default=DEFAULT_LANGUAGE, help=_LANGUAGE_HELP)
    _json_flag(add("list", cmd_site_list, "list the sites", site))
    sp = add("show", cmd_site_show, "show a site", site)
    sp.add_argument("id")
    _json_flag(sp)
    sp = add("update", cmd_site_update, "change a site's name, time zone, address or language",
             site)
    sp.add_argument("id")
    sp.add_argument("--name")
    sp.add_argument("--timezone", help="IANA name, e.g. Asia/Shanghai")
    sp.add_argument("--address", help="'' clears it")
    sp.add_argument("--language", help=_LANGUAGE_HELP)
    _json_flag(sp)


def _resident_fields(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--name", dest="full_name")
    sp.add_argument("--sex", choices=[s.value for s in ledger.Sex])
    sp.add_argument("--birth-year", type=int)
    sp.add_argument("--birth-date", type=date.fromisoformat, metavar="YYYY-MM-DD")
    sp.add_argument("--address")
    sp.add_argument("--access-notes", help="how to get in, e.g. where the key safe is")
    sp.add_argument("--door-code", help="held privately; the API reveals it on request")
    sp.add_argument("--phone")
    sp.add_argument("--living", dest="living_situation",
                    choices=[s.value for s in ledger.LivingSituation])
    risks = [r.value for r in ledger.Risk]
    sp.add_argument("--risk", action="append", metavar="RISK", choices=[*risks, "none"],
                    help="risk category (repeatable). REPLACES the whole stored list with "
                         "the ones given; 'none' clears it. To change one category, use "
                         f"--add-risk/--remove-risk. One of: {', '.join(risks)}")
    sp.add_argument("--add-risk", action="append", metavar="RISK", choices=risks,
                    help="add a risk category, keeping the others (repeatable)")
    sp.add_argument("--remove-risk", action="append", metavar="RISK", choices=risks,
                    help="remove a risk category, keeping the others (repeatable)")
    sp.add_argument("--care-level")
    sp.add_argument("--health-notes")
    sp.add_argument("--gp", help="general practitioner and how to reach them")
    sp.add_argument("--status", choices=[s.value for s in ledger.ResidentStatus])
    sp.add_argument("--contact", action="append", metavar="NAME|RELATION|PHONE[|no]",
                    help="emergency contact, in calling order (repeatable; replaces the list)")


def _register_residents(sub: Any, add: Add) -> None:
    res = sub.add_parser("resident", help="residents").add_subparsers(dest="res_cmd",
                                                                      required=True)
    sp = add("add", cmd_resident_add, "create a resident", res)
    sp.add_argument("--site", required=True)
    sp.add_argument("--name", required=True)
    sp.add_argument("--address")
    sp.add_argument("--birth-year", type=int)
    sp = add("list", cmd_resident_list, "list residents (default: not discharged)", res)
    sp.add_argument("--site")
    sp.add_argument("--risk", action="append", choices=[r.value for r in ledger.Risk],
                    help="any of these risk categories (repeatable)")
    sp.add_argument("--status", action="append",
                    choices=[s.value for s in ledger.ResidentStatus], help="repeatable")
    sp.add_argument("--search", help="text in the name or address")
    _json_flag(sp)
    sp = add("show", cmd_resident_show, "show a resident's ledger entry", res)
    sp.add_argument("id", type=int)
    _json_flag(sp)
    sp = add("update", cmd_resident_update, "change fields of a resident's ledger entry", res)
    sp.add_argument("id", type=int)
    _resident_fields(sp)
    _json_flag(sp)
    sp = add("deactivate", cmd_resident_deactivate,
             "discharge a resident (monitoring stops; the entry stays)", res)
    sp.add_argument("id", type=int)
    _json_flag(sp)


def register(sub: Any, add: Add) -> None:
    """Add the `site` and `resident` command groups to the CLI."""
    _register_sites(sub, add)
    _register_residents(sub, add)

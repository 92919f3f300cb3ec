"""`eldercare user list|show|update|reset-password`: the staff and family accounts from a
script, as the web app's administrators see them (dashboard/staff.py). `user add`,
`activate` and `deactivate` stay in eldercare/cli.py. `list` and `show` print a table or
`key: value` lines, and with `--json` an array of the API's account objects or one object
(eldercare.admin.output); `update` shows the account the same way; `reset-password` prints
one JSON object (a script reads the temporary password). Errors are one line on stderr with
exit 1 (RegistryError, via cli.main)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from psycopg.rows import dict_row

from eldercare.admin import output
from eldercare.admin.audited import audited, note
from eldercare.argtypes import phone_number
from kernel import db
from kernel.accounts import ROLES, RegistryError, reset_password, username_key
from kernel.audit import Action, Target
from kernel.roster import override_of

Runtime = Callable[[argparse.Namespace], Any]  # resolves args to an object with database_url
Add = Callable[..., argparse.ArgumentParser]

_ACCOUNTS = """
SELECT u.id, u.username, u.full_name, u.role, u.site_id, u.phone, u.active, u.on_duty,
       u.duty_forced_off, u.must_change_password, u.totp_enabled,
       coalesce(array_agg(f.resident_id ORDER BY f.resident_id)
                FILTER (WHERE f.resident_id IS NOT NULL), '{{}}') AS residents,
       (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL
        AND s.expires_at > now()) AS live_sessions
FROM users u LEFT JOIN family_contacts f ON f.user_id = u.id
{where}
GROUP BY u.id ORDER BY u.role, u.username
"""


USER_COLUMNS = (("id", "ID"), ("username", "USERNAME"), ("full_name", "NAME"),
                ("role", "ROLE"), ("site_id", "SITE"), ("active", "ACTIVE"),
                ("duty_override", "DUTY OVERRIDE"), ("residents", "RESIDENTS"))
# The API's list item (dashboard.staff.AccountOut); `show` adds the live session count.
_LIST_KEYS = ("id", "username", "full_name", "role", "site_id", "phone", "active",
              "duty_override", "must_change_password", "totp_enabled", "residents")


def _emit(obj: dict[str, Any]) -> None:
    """One JSON object on a line of stdout (what scripts read)."""
    sys.stdout.write(json.dumps(obj) + "\n")


def _item(account: dict[str, Any]) -> dict[str, Any]:
    return {k: account[k] for k in _LIST_KEYS}


def _account(row: dict[str, Any]) -> dict[str, Any]:
    override = override_of(row.pop("on_duty"), row.pop("duty_forced_off"))
    return {**row, "residents": list(row["residents"]),
            "duty_override": override.value if override else None}


def _query(database_url: str, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with db.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return [_account(r) for r in cur.execute(_ACCOUNTS.format(where=where),
                                                 params).fetchall()]


def register(user: Any, add: Add, runtime: Runtime) -> None:
    """Add the commands to the `user` sub-command group; `runtime(args)` says where the
    database is (eldercare.cli._admin_runtime)."""

    @audited(Action.USER_READ, lambda args: Target("user"))
    def cmd_list(args: argparse.Namespace) -> int:
        conditions, params = [], {}
        for column, value in (("site_id", args.site), ("role", args.role)):
            if value is not None:
                conditions.append(f"u.{column} = %({column})s")
                params[column] = value
        if not args.all:
            conditions.append("u.active")
        where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
        found = _query(runtime(args).database_url, where, params)
        note().detail.update(site=args.site, role=args.role, count=len(found))
        output.print_list(args, [_item(a) for a in found], USER_COLUMNS)
        return 0

    @audited(Action.USER_READ, lambda args: Target("user"))
    def cmd_show(args: argparse.Namespace) -> int:
        return _show(args)

    def _show(args: argparse.Namespace) -> int:
        found = _query(runtime(args).database_url, "WHERE lower(u.username) = %(key)s",
                       {"key": username_key(args.username)})
        if not found:
            raise RegistryError(f"user {args.username!r} does not exist")
        note().target = Target("user", found[0]["id"])
        note().detail.setdefault("username", args.username)
        output.print_one(args, {**_item(found[0]), "live_sessions": found[0]["live_sessions"]})
        return 0

    @audited(Action.USER_UPDATE, lambda args: Target("user"))
    def cmd_update(args: argparse.Namespace) -> int:
        changes = {k: v for k, v in (("full_name", args.full_name), ("role", args.role),
                                     ("site_id", args.site), ("phone", args.phone))
                   if v is not None}
        if not changes:
            raise RegistryError("nothing to change: give --full-name, --role, --site or "
                                "--phone")
        rt = runtime(args)
        sets = ", ".join(f"{k} = %({k})s" for k in changes)
        try:
            with db.connect(rt.database_url) as conn:
                row = conn.execute(f"UPDATE users SET {sets} WHERE lower(username) = %(key)s "
                                   "RETURNING id", {**changes,
                                                    "key": username_key(args.username)}
                                   ).fetchone()
        except Exception as exc:  # check or foreign-key violation: say which rule
            raise RegistryError(f"cannot update {args.username!r}: "
                                f"{str(exc).splitlines()[0]}") from None
        if row is None:
            raise RegistryError(f"user {args.username!r} does not exist")
        note().detail["after"] = changes
        return _show(args)

    @audited(Action.PASSWORD_RESET, lambda args: Target("user"))
    def cmd_reset(args: argparse.Namespace) -> int:
        with db.connect(runtime(args).database_url) as conn:
            uid, password = reset_password(conn, args.username, args.password)
        note().target = Target("user", uid)
        note().detail["username"] = args.username
        _emit({"user_id": uid, "username": args.username,
               "temporary_password": password, "must_change_password": True})
        return 0

    sp = add("list", cmd_list, "list accounts (active ones unless --all)", user)
    output.add_json_flag(sp)
    sp.add_argument("--site")
    sp.add_argument("--role", choices=ROLES)
    sp.add_argument("--all", action="store_true", help="include deactivated accounts")
    sp = add("show", cmd_show, "one account: role, site, duty override, residents, sessions",
             user)
    sp.add_argument("--username", required=True)
    output.add_json_flag(sp)
    sp = add("update", cmd_update, "change an account's name, role, site or phone", user)
    sp.add_argument("--username", required=True)
    sp.add_argument("--full-name")
    sp.add_argument("--role", choices=ROLES)
    sp.add_argument("--site")
    sp.add_argument("--phone", type=phone_number)
    output.add_json_flag(sp)
    sp = add("reset-password", cmd_reset,
             "set a temporary password (generated unless --password) to be changed at the "
             "next login; ends the account's sessions and removes its second factor", user)
    sp.add_argument("--username", required=True)
    sp.add_argument("--password", help="default: generated and printed once")

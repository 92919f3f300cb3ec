"""`eldercare audit verify [--since]`: check the audit trail's hash chain.

Exits 0 when every record chains to the one before (from the anchor left by the retention
job, or from the first record at or after --since), 1 naming the first broken record
otherwise. Run it from cron or after restoring a backup (docs/admin-guide.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from eldercare.admin.audited import audited, note
from eldercare.argtypes import aware_datetime
from kernel import audit, db
from kernel.audit import Action, Target

Add = Callable[..., argparse.ArgumentParser]


def register(sub: Any, add: Add) -> None:
    """Add the `audit` commands to the CLI (eldercare.cli.build_parser)."""
    group = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="audit_cmd", required=True)
    sp = add("verify", cmd_verify, "check that the audit trail's hash chain is intact", group)
    sp.add_argument("--since", type=aware_datetime, metavar="ISO-8601",
                    help="check from the first record at or after this time (with offset)")


@audited(Action.AUDIT_READ, lambda args: Target("audit"))
def cmd_verify(args: argparse.Namespace) -> int:
    """Verify the chain; print what was checked; exit 1 at the first broken record."""
    from eldercare.cli import admin_runtime  # the composition root's; imported late (cycle)

    rt = admin_runtime(args)
    with db.connect(rt.database_url) as conn:
        verdict = audit.verify(conn, args.since)
    note().detail.update(verify={"intact": verdict.intact, "checked": verdict.checked,
                                 "broken_id": verdict.broken_id})
    if verdict.intact:
        print(json.dumps({"intact": True, "checked": verdict.checked}))
        return 0
    print(f"error: audit record {verdict.broken_id} is broken: {verdict.reason} "
          f"({verdict.checked} records before it are intact)", file=sys.stderr)
    return 1

"""The one way a CLI command leaves its audit record (the CLI's twin of the web app's
`audited(...)` dependency in dashboard/audit.py).

Every command registered on the `eldercare` parser is either decorated:

    @audited(Action.RESIDENT_READ, lambda args: Target("resident", args.id, args.id))
    def cmd_resident_show(args): ...

or explicitly exempted with `@unaudited("why")` (the long-running commands, schema
migrations, the sites' own settings); tests/eldercare/admin/test_audited.py walks the parser
and fails on a command that is neither. The record is written when the command has returned
or raised, on its own connection to the same database: actor `cli:<os user>`, address
"local", outcome ok (exit 0) or error (with the error's text), the target from the
decorator, and what the command added through `note()` (the id it created, before/after,
one more record per device an import made).
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from kernel import audit, db
from kernel.audit import Action, Entry, Event, Outcome, Target

logger = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace], int]
TargetOf = Callable[[argparse.Namespace], Target]
ActionOf = Callable[[argparse.Namespace], "Action | None"]


@dataclass
class CliNote:
    """The record a command is about to make; the command may fill in target and detail,
    and add records (`also`) written before it when the command succeeds."""

    action: str
    target: Target
    detail: dict[str, Any] = field(default_factory=dict)
    also: list[Entry] = field(default_factory=list)


_current: ContextVar[CliNote | None] = ContextVar("cli_audit_note", default=None)


def note() -> CliNote:
    """The running command's record (a throwaway one outside an audited command, so core
    helpers shared with tests can call it freely)."""
    current = _current.get()
    return current if current is not None else CliNote("", Target())


def _database_url(args: argparse.Namespace) -> str:
    """Where the command connected: the same resolution as its own (late import: the CLI
    module imports the command modules)."""
    from eldercare.run import settings_for
    from eldercare.runtime import resolve

    return resolve(settings_for(args)).database_url


def _write(args: argparse.Namespace, rec: CliNote, outcome: Outcome,
           extra: dict[str, Any]) -> None:
    actor, now = audit.cli_actor(), datetime.now(UTC)
    with db.connect(_database_url(args)) as conn:
        if outcome is Outcome.OK:
            for entry in rec.also:
                audit.append(conn, Event(now, actor, entry.action, outcome, entry.target,
                                         entry.detail))
        audit.append(conn, Event(now, actor, rec.action, outcome, rec.target,
                                 {**rec.detail, **extra}))
        conn.commit()


def audited(action: Action | ActionOf, target: TargetOf | None = None) -> Callable[
        [Command], Command]:
    """Record every run of the command: `action` (or a function of the arguments giving it;
    None: this run reads or changes nothing of people's data), `target` from the
    arguments (the command may refine it with `note().target`)."""

    def wrap(fn: Command) -> Command:
        @functools.wraps(fn)
        def run(args: argparse.Namespace) -> int:
            what = action(args) if callable(action) and not isinstance(action, str) else action
            if what is None:
                return fn(args)
            rec = CliNote(str(what), target(args) if target is not None else Target())
            token = _current.set(rec)
            try:
                code = fn(args)
            except Exception as exc:
                try:
                    _write(args, rec, Outcome.ERROR, {"error": str(exc)[:300]})
                except psycopg.OperationalError:  # unreachable: the command's error says so
                    logger.debug("no audit record of the failed %s: no database", what)
                except Exception as failure:  # the command's own error matters more
                    logger.warning("audit record of the failed %s could not be written: %s",
                                   what, failure)
                raise
            finally:
                _current.reset(token)
            _write(args, rec, Outcome.OK if code == 0 else Outcome.ERROR,
                   {} if code == 0 else {"exit": code})
            return code

        run.__audit_action__ = what_of(action)  # type: ignore[attr-defined]
        return run

    return wrap


def what_of(action: Action | ActionOf) -> str:
    """The action's name for listings (a computed action: "<computed>")."""
    return str(action) if isinstance(action, str) else "<computed>"


def unaudited(reason: str) -> Callable[[Command], Command]:
    """Mark a command that records nothing, with the reason (checked by the tests)."""

    def wrap(fn: Command) -> Command:
        fn.__audit_exempt__ = reason  # type: ignore[attr-defined]
        return fn

    return wrap

"""Every `eldercare` command that reads people's data or changes anything leaves its audit
record (actor `cli:<os user>`, address "local", outcome, target), through the one decorator
of eldercare/admin/audited.py. Found by the issue 13 new-user trial: `resident show`,
`resident list --json`, `user reset-password` and `import` recorded nothing."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from pathlib import Path
from typing import Any

import pytest

from eldercare.cli import build_parser
from kernel import db
from tests.support.cli import run_main
from tests.support.services import Broker

PW = ("--password", "quiet harbour lantern 42")
SHEET = ("site,full_name,address,birth_year,bed_sensor,call_button\n"
         "north,Dag Dahl,4 Fjord Road,1936,yes,yes\n"
         "north,Eva Eide,,1941,no,yes\n")
ANY = "<any>"
"""A target id the test does not know in advance (made by the command), but not empty."""


def _rows(url: str, after: int = 0) -> list[dict[str, Any]]:
    with db.connect(url, autocommit=True) as conn:
        cur = conn.execute("SELECT id, actor, address, action, target_type, target_id, "
                           "resident_id, outcome, detail FROM audit_log WHERE id > %s "
                           "ORDER BY id", (after,))
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _last_id(url: str) -> int:
    rows = _rows(url)
    return int(rows[-1]["id"]) if rows else 0


@pytest.fixture
def world(cli_db: str, broker: Broker, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> dict[str, str]:
    """A site, two residents, a call button and a duty officer, made through the CLI."""
    monkeypatch.setenv("ELDERCARE_BROKER_ACCOUNTS_DIR", str(broker.data_dir))
    run_main(capsys, "site", "add", "north", "--name", "North")
    _, out, _ = run_main(capsys, "resident", "add", "--site", "north", "--name", "Ida")
    rid = str(json.loads(out)["resident_id"])
    _, out, _ = run_main(capsys, "resident", "add", "--site", "north", "--name", "Jon")
    rid2 = str(json.loads(out)["resident_id"])
    _, out, _ = run_main(capsys, "device", "add", "--resident", rid, "--type", "call_button",
                         "--device-id", "btn-ida")
    _, out, _ = run_main(capsys, "user", "add", "--username", "dora", "--role",
                         "duty_officer", "--site", "north", *PW)
    uid = str(json.loads(out)["user_id"])
    (tmp_path / "new.csv").write_text(SHEET)
    return {"rid": rid, "rid2": rid2, "dev": "btn-ida", "uid": uid,
            "sheet": str(tmp_path / "new.csv")}


SET = '{"heart_rate": {"urgent_at_or_above": 140}}'
# (argv, action, target type, target id); {name} is filled from `world`.
COMMANDS: list[tuple[tuple[str, ...], str, str | None, str | None]] = [
    (("site", "add", "south", "--name", "South"), "site.create", "site", "south"),
    (("site", "update", "north", "--name", "North 2"), "site.update", "site", "north"),
    (("resident", "add", "--site", "north", "--name", "Bo"), "resident.create", "resident",
     ANY),
    (("resident", "list", "--json"), "resident.list", "resident", None),
    (("resident", "show", "{rid}"), "resident.read", "resident", "{rid}"),
    (("resident", "update", "{rid}", "--phone", "555 0100"), "resident.update", "resident",
     "{rid}"),
    (("resident", "deactivate", "{rid}"), "resident.update", "resident", "{rid}"),
    (("alerts", "settings", "--resident", "{rid}"), "resident.read", "resident", "{rid}"),
    (("alerts", "settings", "--resident", "{rid}", "--set", SET), "resident.update",
     "resident", "{rid}"),
    (("alerts", "settings", "--site", "north", "--set", SET), "site.update", "site", "north"),
    (("user", "add", "--username", "bob", "--role", "admin", *PW), "user.create", "user",
     ANY),
    (("user", "list", "--json"), "user.read", "user", None),
    (("user", "show", "--username", "dora"), "user.read", "user", "{uid}"),
    (("user", "update", "--username", "dora", "--phone", "555 0101"), "user.update", "user",
     "{uid}"),
    (("user", "reset-password", "--username", "dora"), "user.password_reset", "user",
     "{uid}"),
    (("user", "deactivate", "--username", "dora"), "user.deactivate", "user", "{uid}"),
    (("user", "activate", "--username", "dora"), "user.activate", "user", "{uid}"),
    (("device", "add", "--resident", "{rid}", "--type", "bed_sensor", "--device-id",
      "bed-ida"), "device.provision", "device", "bed-ida"),
    (("device", "list", "--json"), "device.read", "device", None),
    (("device", "show", "{dev}"), "device.read", "device", "{dev}"),
    (("device", "move", "{dev}", "--resident", "{rid2}"), "device.update", "device", "{dev}"),
    (("device", "revoke", "{dev}"), "device.revoke", "device", "{dev}"),
    (("import", "{sheet}", "--dry-run"), "import", "import", "new.csv"),
    (("import", "{sheet}"), "import", "import", "new.csv"),
    (("audit", "verify"), "audit.read", "audit", None),
]


@pytest.mark.parametrize(("argv", "action", "target_type", "target_id"), COMMANDS,
                         ids=[" ".join(c[0][:2]) + ("" if i == 0 else f" #{i}")
                              for i, c in enumerate(COMMANDS)])
def test_each_command_leaves_its_record(world: dict[str, str], cli_db: str,
                                        capsys: pytest.CaptureFixture[str],
                                        argv: tuple[str, ...], action: str,
                                        target_type: str | None, target_id: str | None
                                        ) -> None:
    before = _last_id(cli_db)
    code, _, err = run_main(capsys, *(a if a == SET else a.format(**world) for a in argv))
    assert code == 0, err
    mine = [r for r in _rows(cli_db, before) if r["action"] == action]
    assert mine, f"no {action} record"
    row = mine[-1]
    assert (row["actor"], row["address"], row["outcome"]) == (
        f"cli:{getpass.getuser()}", "local", "ok")
    assert row["target_type"] == target_type
    if target_id == ANY:
        assert row["target_id"]
    else:
        assert row["target_id"] == (None if target_id is None else target_id.format(**world))


def test_a_failed_command_is_recorded_as_an_error(world: dict[str, str], cli_db: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    before = _last_id(cli_db)
    code, _, err = run_main(capsys, "resident", "show", "999999")
    assert code == 1 and "no resident" in err
    [row] = _rows(cli_db, before)
    assert (row["action"], row["target_id"], row["outcome"]) == (
        "resident.read", "999999", "error")
    assert "no resident" in row["detail"]["error"]


def test_an_import_records_each_device_it_made(world: dict[str, str], cli_db: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    before = _last_id(cli_db)
    code, _, err = run_main(capsys, "import", world["sheet"])
    assert code == 0, err
    rows = _rows(cli_db, before)
    devices = [r for r in rows if r["action"] == "device.provision"]
    [done] = [r for r in rows if r["action"] == "import"]
    assert len(devices) == 3 and all(r["target_type"] == "device" for r in devices)
    assert all(r["resident_id"] == r["detail"]["resident"] for r in devices)
    assert all(r["detail"]["import_file"] == "new.csv" for r in devices)
    assert {k: done["detail"][k] for k in ("file", "residents", "devices", "broker_accounts",
                                           "dry_run")} == {
        "file": "new.csv", "residents": 2, "devices": 3, "broker_accounts": 3,
        "dry_run": False}


def test_import_writes_the_credentials_next_to_the_sheet(
        world: dict[str, str], cli_db: str, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = run_main(capsys, "import", world["sheet"])
    assert code == 0, err
    written = tmp_path / "new-credentials.csv"
    assert written.exists() and not list(elsewhere.iterdir())
    assert os.stat(written).st_mode & 0o777 == 0o600
    assert str(written) in err


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
            ) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for action in parser._actions:  # argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _leaves(sub, (*path, name))
    if not out and parser.get_default("func") is not None:
        out.append((" ".join(path), parser.get_default("func")))
    return out


def test_every_command_is_audited_or_says_why_not() -> None:
    leaves = _leaves(build_parser())
    assert len(leaves) > 30
    missing = [name for name, fn in leaves
               if not hasattr(fn, "__audit_action__") and not hasattr(fn, "__audit_exempt__")]
    assert missing == []

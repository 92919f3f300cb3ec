"""`eldercare device list|show|revoke|move` and `eldercare import`, as a script runs them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.support.cli import run
from tests.support.probe import NOT_AUTHORIZED, TIMEOUT, Probe
from tests.support.services import Broker

SHEET = ("site,full_name,address,birth_year,bed_sensor,call_button\n"
         "east,Dag Dahl,4 Fjord Road,1936,yes,yes\n"
         ",Eva Eide,,1941,no,yes\n")


def test_import_list_show_move_revoke(env: dict[str, str], broker: Broker,
                                      tmp_path: Path) -> None:
    run(env, "site", "add", "east", "--name", "East")
    run(env, "site", "add", "west", "--name", "West")
    sheet = tmp_path / "elders.csv"
    sheet.write_text(SHEET)
    bad = run(env, "import", str(sheet), ok=False)  # row 3 has no site and no --site
    assert bad.returncode == 1 and "nothing imported" in bad.stderr
    assert "3,site,site is required" in bad.stdout
    missing = run(env, "import", str(tmp_path / "nope.csv"), "--dry-run", ok=False)
    assert missing.returncode == 1 and "error: cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr
    dry = json.loads(run(env, "import", str(sheet), "--site", "east", "--dry-run").stdout)
    assert (dry["valid_rows"], dry["applied"]) == (2, False)
    assert (dry["residents"], dry["devices"], dry["broker_accounts"]) == (2, 3, 3)
    creds_path = tmp_path / "creds.csv"
    done = json.loads(run(env, "import", str(sheet), "--site", "east",
                          "--credentials", str(creds_path)).stdout)
    assert (done["residents"], done["devices"]) == (2, 3)
    assert creds_path.stat().st_mode & 0o077 == 0
    twice = run(env, "import", str(sheet), "--site", "east", ok=False)
    assert twice.returncode == 1 and "nothing imported" in twice.stderr
    assert [line.split(",")[:2] for line in twice.stdout.splitlines()[1:]] == [
        ["2", "full_name"], ["3", "full_name"]]
    assert "already registered as resident" in twice.stdout
    creds = list(csv.DictReader(io.StringIO(creds_path.read_text())))
    button = next(c for c in creds if c["type"] == "call_button")

    listed = json.loads(run(env, "device", "list", "--site", "east", "--json").stdout)
    assert len(listed) == 3
    dev = Probe(broker.port, button["username"], button["password"], button["device_id"])
    try:
        dev.wait_connected()
        west = json.loads(run(env, "resident", "add", "--site", "west", "--name", "Wim").stdout)
        moved = json.loads(run(env, "device", "move", button["device_id"], "--resident",
                               str(west["resident_id"])).stdout)
        assert (moved["from_site"], moved["site"]) == ("east", "west")
        run(env, "device", "revoke", button["device_id"])
        assert dev.disconnected.wait(TIMEOUT)
        again = Probe(broker.port, button["username"], button["password"],
                      button["device_id"])
        assert again.wait_refused().value == NOT_AUTHORIZED
        again.close()
    finally:
        dev.close()
    shown = json.loads(run(env, "device", "show", button["device_id"], "--json").stdout)
    assert [h["action"] for h in shown["history"]] == ["revoke", "move", "provision"]
    again_revoke = run(env, "device", "revoke", button["device_id"], ok=False)
    assert again_revoke.returncode == 1 and "no active device" in again_revoke.stderr

"""`eldercare site ...` and `eldercare resident ...` (issue 13: CLI parity for the ledger)."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import run


@pytest.mark.slow
def test_site_add_of_an_existing_site_fails_and_update_changes_it(env):
    run(env, "site", "add", "east", "--name", "East")
    again = run(env, "site", "add", "east", "--name", "Other", "--timezone", "Asia/Shanghai",
                ok=False)
    assert again.returncode == 1
    assert "site 'east' already exists" in again.stderr and "site update" in again.stderr
    shown = json.loads(run(env, "site", "show", "east", "--json").stdout)
    assert shown["name"] == "East" and shown["timezone"] == "UTC"
    run(env, "site", "update", "east", "--timezone", "Asia/Shanghai", "--address", "1 Dong Rd")
    shown = json.loads(run(env, "site", "show", "east", "--json").stdout)
    assert (shown["name"], shown["timezone"], shown["address"]) == (
        "East", "Asia/Shanghai", "1 Dong Rd")
    bad = run(env, "site", "update", "east", "--timezone", "Mars/Olympus", ok=False)
    assert bad.returncode == 1 and "unknown time zone" in bad.stderr
    missing = run(env, "site", "update", "west", "--name", "W", ok=False)
    assert missing.returncode == 1 and "no site 'west'" in missing.stderr
    listed = json.loads(run(env, "site", "list", "--json").stdout)
    assert [s["id"] for s in listed] == ["east"]
    assert "Asia/Shanghai" in run(env, "site", "list").stdout
    # the language of its group channels: shown, changed, refused when not spoken
    assert listed[0]["language"] == "en"
    run(env, "site", "update", "east", "--language", "zh-CN")
    assert json.loads(run(env, "site", "show", "east", "--json").stdout)["language"] == "zh-CN"
    assert "zh-CN" in run(env, "site", "list").stdout
    bad = run(env, "site", "update", "east", "--language", "fr", ok=False)
    assert bad.returncode == 1 and "unknown language 'fr'" in bad.stderr
    run(env, "site", "add", "south", "--name", "South", "--language", "zh-CN")
    assert json.loads(run(env, "site", "show", "south", "--json").stdout)["language"] == "zh-CN"
    bad = run(env, "site", "add", "west", "--name", "West", "--language", "fr", ok=False)
    assert bad.returncode == 1 and "unknown language 'fr'" in bad.stderr


@pytest.mark.slow
def test_resident_update_show_list_and_deactivate(env):
    run(env, "site", "add", "north", "--name", "North")
    rid = json.loads(run(env, "resident", "add", "--site", "north", "--name", "Dagny").stdout)[
        "resident_id"]
    out = json.loads(run(env, "resident", "update", str(rid), "--risk", "very_old", "--risk",
                         "alone", "--living", "alone", "--door-code", "4711",
                         "--contact", "Erik|son|+47 555 11 111",
                         "--contact", "Frida|daughter|555 22 222|no", "--json").stdout)
    assert out["risks"] == ["very_old", "alone"] and out["has_door_code"] is True
    assert "door_code" not in out
    assert [(c["name"], c["notified"]) for c in out["contacts"]] == [("Erik", True),
                                                                      ("Frida", False)]
    shown = run(env, "resident", "show", str(rid)).stdout
    assert any(line.split() == ["2", "Frida", "daughter", "555", "22", "222", "no"]
               for line in shown.splitlines())
    listed = json.loads(run(env, "resident", "list", "--risk", "alone", "--json").stdout)
    assert [r["id"] for r in listed] == [rid]
    assert json.loads(run(env, "resident", "list", "--risk", "dementia", "--json").stdout) == []
    bad = run(env, "resident", "update", str(rid), "--phone", "call me", ok=False)
    assert bad.returncode == 1 and "--phone" in bad.stderr
    bad = run(env, "resident", "update", "999", "--status", "active", ok=False)
    assert bad.returncode == 1 and "no resident with id 999" in bad.stderr
    done = json.loads(run(env, "resident", "deactivate", str(rid), "--json").stdout)
    assert done == {"resident_id": rid, "status": "discharged"}
    assert json.loads(run(env, "resident", "list", "--json").stdout) == []
    listed = json.loads(run(env, "resident", "list", "--status", "discharged", "--json").stdout)
    assert [r["id"] for r in listed] == [rid]


@pytest.mark.slow
def test_resident_add_keeps_the_ledgers_birth_year_limits(env):
    """The CLI refuses what the web form and the import refuse (kernel/ledger.py)."""
    from kernel.ledger import MAX_BIRTH_YEAR, MIN_BIRTH_YEAR
    run(env, "site", "add", "north", "--name", "North")
    for year in (MIN_BIRTH_YEAR - 1, MAX_BIRTH_YEAR + 1):
        bad = run(env, "resident", "add", "--site", "north", "--name", "Edge", "--birth-year",
                  str(year), ok=False)
        assert bad.returncode == 1 and "--birth-year" in bad.stderr
    for year in (MIN_BIRTH_YEAR, MAX_BIRTH_YEAR):
        run(env, "resident", "add", "--site", "north", "--name", "Edge", "--birth-year",
            str(year))

"""`eldercare user list|show|update|reset-password` on the real database."""

from __future__ import annotations

import json

import pytest

from kernel import accounts, db
from tests.support.cli import run_main
from tests.support.database import count


def test_list_show_update_and_reset_password(cli_db, capsys):
    run_main(capsys, "site", "add", "north", "--name", "North")
    args = ("--password", "quiet harbour lantern 42")
    run_main(capsys, "user", "add", "--username", "dora", "--role", "duty_officer", "--site",
             "north", *args)
    run_main(capsys, "user", "add", "--username", "ada", "--role", "admin", *args)
    code, out, _ = run_main(capsys, "user", "list", "--site", "north", "--json")
    assert code == 0
    assert [a["username"] for a in json.loads(out)] == ["dora"]
    code, out, _ = run_main(capsys, "user", "update", "--username", "Dora", "--full-name",
                            "Dora Duty", "--phone", "555", "--json")
    shown = json.loads(out)
    assert (shown["full_name"], shown["phone"], shown["duty_override"]) == ("Dora Duty", "555",
                                                                            None)
    code, out, _ = run_main(capsys, "user", "reset-password", "--username", "dora")
    temporary = json.loads(out)["temporary_password"]
    with db.connect(cli_db) as conn:
        row = conn.execute("SELECT password_hash, must_change_password FROM users "
                           "WHERE username = 'dora'").fetchone()
    assert row is not None and row[1] is True
    assert accounts.verify_password(temporary, str(row[0]))
    code, _, err = run_main(capsys, "user", "update", "--username", "dora", "--site", "nowhere")
    assert code == 1 and err.startswith("error: cannot update 'dora'")
    # The web app's one phone rule (dashboard.models.PhoneText): argparse refuses, exit 2.
    with pytest.raises(SystemExit) as refused:
        run_main(capsys, "user", "update", "--username", "dora", "--phone", "call me")
    assert refused.value.code == 2
    assert "not a phone number" in capsys.readouterr().err
    code, _, err = run_main(capsys, "user", "show", "--username", "nobody")
    assert code == 1 and err.strip() == "error: user 'nobody' does not exist"
    code, _, err = run_main(capsys, "user", "reset-password", "--username", "ada", "--password",
                            "123456789012")
    assert code == 1 and "password" in err
    assert count(cli_db, "SELECT count(*) FROM users WHERE must_change_password") == 1

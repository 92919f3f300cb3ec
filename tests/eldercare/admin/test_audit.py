"""`eldercare audit verify` and the CLI's own audit records."""

from __future__ import annotations

import getpass
import json

import pytest

from kernel import db
from tests.support.services import Broker


@pytest.fixture
def cli_db(clean_db: str, broker: Broker, monkeypatch: pytest.MonkeyPatch) -> str:
    """`eldercare.cli.main` in this process, on the test database and broker."""
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", clean_db)
    monkeypatch.setenv("ELDERCARE_MQTT_URL", broker.pipeline.url())
    monkeypatch.setenv("ELDERCARE_MQTT_ADMIN_URL", broker.admin.url())
    monkeypatch.setenv("ELDERCARE_JWT_SECRET", "test-secret-test-secret-test-secret")
    monkeypatch.setenv("ELDERCARE_BROKER_ACCOUNTS_DIR", str(broker.data_dir))
    return clean_db


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from eldercare.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _records(url: str) -> list[tuple[object, ...]]:
    with db.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT actor, action, target_type, target_id, resident_id, "
                            "outcome FROM audit_log ORDER BY id").fetchall()


def test_admin_commands_are_recorded_with_the_os_user(cli_db: str,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    who = f"cli:{getpass.getuser()}"
    assert _cli(capsys, "site", "add", "north", "--name", "North")[0] == 0
    code, out, _ = _cli(capsys, "resident", "add", "--site", "north", "--name", "Ida")
    rid = json.loads(out)["resident_id"]
    _cli(capsys, "user", "add", "--username", "ana", "--role", "admin",
         "--password", "a long admin password")
    _cli(capsys, "user", "deactivate", "--username", "ana")
    _cli(capsys, "user", "activate", "--username", "ana")
    code, out, err = _cli(capsys, "device", "add", "--resident", str(rid), "--type",
                          "call_button", "--device-id", "btn-ida")
    assert code == 0, err
    assert _records(cli_db) == [
        (who, "site.create", "site", "north", None, "ok"),
        (who, "resident.create", "resident", str(rid), rid, "ok"),
        (who, "user.create", "user", "1", None, "ok"),
        (who, "user.deactivate", "user", "1", None, "ok"),
        (who, "user.activate", "user", "1", None, "ok"),
        (who, "device.provision", "device", "btn-ida", rid, "ok"),
    ]


def test_verify_passes_then_names_the_tampered_record(cli_db: str, owner_url: str,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    for name in ("north", "south", "east"):
        _cli(capsys, "site", "add", name, "--name", name.title())
    code, out, _ = _cli(capsys, "audit", "verify")
    assert code == 0 and json.loads(out) == {"intact": True, "checked": 3}
    with db.connect(owner_url) as conn:  # a superuser behind the application's back
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("UPDATE audit_log SET detail = '{\"name\": \"Elsewhere\"}' WHERE id = 2")
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        conn.commit()
    code, _, err = _cli(capsys, "audit", "verify")
    assert code == 1
    assert "error: audit record 2 is broken" in err
    code, _, _ = _cli(capsys, "audit", "verify", "--since", "2000-01-01T00:00:00Z")
    assert code == 1


def test_verify_refuses_a_naive_since(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli(capsys, "audit", "verify", "--since", "2000-01-01T00:00:00")
    assert exit_info.value.code == 2
    assert "needs a UTC offset" in capsys.readouterr().err

"""Devices provisioned into the dynamic-security plugin before migration 0012 move to the
password/ACL files at start (issue 13 trial): they still connect with their secret, are in
the files, and are gone from the plugin; running it again changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eldercare.run import _migrate_plugin_accounts
from eldercare.runtime import Runtime
from gateway.device_accounts import PASSWORD_FILE
from gateway.dynsec_migration import DYNSEC_FILE, plugin_hashes
from kernel import db
from tests.support.cli import run_main
from tests.support.homes import seed_home
from tests.support.probe import Probe
from tests.support.services import Broker
from tests.support.wait import wait_until


def _plugin_clients(broker: Broker) -> set[str]:
    config = json.loads((broker.data_dir / DYNSEC_FILE).read_text())
    return {str(c["username"]) for c in config.get("clients", [])}


def _password_file_users(broker: Broker) -> set[str]:
    text = (Path(broker.data_dir) / PASSWORD_FILE).read_text()
    return {line.split(":", 1)[0] for line in text.splitlines() if line}


def test_plugin_password_becomes_a_password_file_hash() -> None:
    config = {"clients": [{"username": "btn-old", "password": "are9kDo/mFFLwIQDpjuAap6tx9afqUI"
                           "60A6f7U1JExIQUZO2nPO60uVO7JkLfjBzfhNxV79zkRWnoSmqN2kZnQ==",
                           "salt": "8Yn3h5x+4IDm6Fxf", "iterations": 101},
                          {"username": "eldercare-admin"}]}
    # broker_hash("s3cret", b64decode("8Yn3h5x+4IDm6Fxf")): the same secret in both formats
    assert plugin_hashes(config) == {"btn-old": "$7$101$8Yn3h5x+4IDm6Fxf$are9kDo/mFFLwIQDpj"
                                                "uAap6tx9afqUI60A6f7U1JExIQUZO2nPO60uVO7JkLfjB"
                                                "zfhNxV79zkRWnoSmqN2kZnQ=="}


def test_start_moves_old_plugin_devices_to_the_files(bench_runtime: Runtime,
                                                     broker: Broker) -> None:
    home = seed_home(bench_runtime.database_url, broker.admin)  # the old way: the plugin
    old = {home.bed.device_id, home.button.device_id}
    with db.connect(bench_runtime.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM devices WHERE broker_hash IS NULL"
                            ).fetchone() == (2,)
    assert old <= _plugin_clients(broker) and not old & _password_file_users(broker)

    _migrate_plugin_accounts(bench_runtime)  # what `serve`/`demo` run at start

    with db.connect(bench_runtime.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM devices WHERE broker_hash IS NULL"
                            ).fetchone() == (0,)
    assert old <= _password_file_users(broker)
    wait_until(lambda: not old & _plugin_clients(broker), what="plugin clients deleted")
    probe = Probe(broker.port, home.button.username, home.button.password,
                  home.button.device_id)
    try:
        probe.wait_connected()  # the same secret, now checked against the password file
    finally:
        probe.close()
    from eldercare.admin.devices import migrate_plugin_accounts

    again = migrate_plugin_accounts(bench_runtime)  # idempotent
    assert (again.converted, again.removed_from_plugin, again.without_account) == ([], [], [])


def test_the_admin_command_runs_the_same_step(cli_db: str, broker: Broker,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ELDERCARE_BROKER_ACCOUNTS_DIR", str(broker.data_dir))
    home = seed_home(cli_db, broker.admin)
    code, out, err = run_main(capsys, "device", "migrate-accounts")
    assert code == 0, err
    assert json.loads(out) == {"converted": 2, "removed_from_plugin": 2, "without_account": []}
    assert home.bed.device_id in _password_file_users(broker)
    code, out, _ = run_main(capsys, "device", "migrate-accounts")
    assert json.loads(out) == {"converted": 0, "removed_from_plugin": 0, "without_account": []}

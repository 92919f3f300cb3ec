"""The `eldercare` command as the CLI tests run it: the environment that points it at the test
database and broker, a run in a child process (as a script runs it) and a run of
`eldercare.cli.main` in this process (the fixtures `env` and `cli_db` that use them are in
tests/eldercare/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.services import Broker

JWT_SECRET = "test-secret-test-secret-test-secret"
IN_PROCESS_KEYS = ("ELDERCARE_DATABASE_URL", "ELDERCARE_DATABASE_OWNER_URL",
                   "ELDERCARE_MQTT_URL", "ELDERCARE_MQTT_ADMIN_URL", "ELDERCARE_JWT_SECRET")
"""What `cli_db` copies from the child-process environment into this process's."""


def cli_env(database_url: str, broker: Broker, owner_url: str | None = None
            ) -> dict[str, str]:
    """This process's environment plus the production settings (URLs set) of the test
    database (`database_url`: the application role; `owner_url`: the owner, who migrates)
    and broker."""
    env = os.environ.copy()
    env.update({
        "ELDERCARE_DATABASE_URL": database_url,
        "ELDERCARE_DATABASE_OWNER_URL": owner_url or database_url,
        "ELDERCARE_MQTT_URL": broker.pipeline.url(),
        "ELDERCARE_MQTT_ADMIN_URL": broker.admin.url(),
        "ELDERCARE_JWT_SECRET": JWT_SECRET,
        "ELDERCARE_BROKER_ACCOUNTS_DIR": str(broker.data_dir),
    })
    return env


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """`eldercare ARGS` in a child process; with `ok`, fail unless it exits 0."""
    proc = subprocess.run([sys.executable, "-m", "eldercare.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`eldercare.cli.main(argv)` in this process: (exit code, stdout, stderr after the line
    saying which database it uses, which every admin command prints first)."""
    from eldercare.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    where, _, rest = err.partition("\n")
    assert where.startswith("using database "), err  # every admin command says where
    return code, out, rest

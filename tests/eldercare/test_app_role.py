"""The embedded database's two roles (migration 0017_app_role): a data dir made by older
code, with one superuser role for everything, gains the application role on its next start,
and the platform then connects as that role."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from eldercare.embedded import PostgresConfig, free_port, start_postgres
from eldercare.migrate import _yoyo_url as yoyo_url
from eldercare.migrate import migrate, migrations_dir
from eldercare.runtime import _pg_config, resolve
from eldercare.settings import Settings
from ingest import rollups
from kernel import audit, db
from tests.support.services import tmpdir

BEFORE = datetime(2026, 3, 1, 12, tzinfo=UTC)
_STATUS = ("INSERT INTO device_status (time, device_id, resident_id, online, received_at) "
           "VALUES (%s, 'btn-1', 1, true, %s)")
OLD_SECRETS = {"pg_password": "old-owner-pw", "mqtt_admin_password": "a",
               "mqtt_pipeline_password": "p", "jwt_secret": "j" * 32}


def _migrate_up_to(url: str, last: str) -> None:
    """Apply the migrations up to `last` only (what the older code shipped)."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_url(url))
    wanted = read_migrations(str(migrations_dir())).filter(lambda m: m.id <= last)
    with backend.lock():
        backend.apply_migrations(backend.to_apply(wanted))
    backend.connection.close()


@pytest.fixture
def old_data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A data dir as the code before 0017 left it: secrets.json without the application
    role's password, a cluster with only initdb's superuser, migrated to 0016, with one
    audit record written by that superuser; the server stopped."""
    for key in ("ELDERCARE_DATABASE_URL", "ELDERCARE_DATABASE_OWNER_URL", "ELDERCARE_MQTT_URL"):
        monkeypatch.delenv(key, raising=False)
    path = tmpdir("eldercare-upgrade-")
    (path / "secrets.json").write_text(json.dumps(OLD_SECRETS))
    (path / "secrets.json").chmod(0o600)
    settings = Settings(data_dir=path, pg_port=free_port())
    old = PostgresConfig(path / "postgres", settings.pg_port, OLD_SECRETS["pg_password"],
                         "unused", durable=False)
    proc = start_postgres(old)
    try:
        with db.connect(old.maintenance_url, autocommit=True) as conn:
            conn.execute("DROP ROLE eldercare_app")  # the older code never made it
        _migrate_up_to(old.owner_url, "0016_audit_trail")
        with db.connect(old.owner_url, autocommit=True) as conn:
            audit.append(conn, audit.Event(datetime(2026, 3, 1, tzinfo=UTC),
                                           audit.Actor("before-upgrade"), audit.Action.LOGIN))
            conn.execute(_STATUS, (BEFORE, BEFORE))  # a chunk made before the role existed
    finally:
        proc.stop()
    yield settings
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.db
def test_an_old_data_dir_gains_the_application_role_on_start(old_data_dir: Settings) -> None:
    rt = resolve(old_data_dir)
    saved = json.loads((old_data_dir.data_dir / "secrets.json").read_text())
    assert {k: saved[k] for k in OLD_SECRETS} == OLD_SECRETS  # kept, and one added
    assert saved["pg_app_password"]
    assert stat.S_IMODE((old_data_dir.data_dir / "secrets.json").stat().st_mode) == 0o600
    pg = _pg_config(old_data_dir, saved)
    proc = start_postgres(pg)
    try:
        assert "0017_app_role" in migrate(rt.owner_url)
        assert rt.database_url != rt.owner_url
        with db.connect(rt.database_url, autocommit=True) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("eldercare_app",)
            audit.append(conn, audit.Event(datetime(2026, 3, 2, tzinfo=UTC),
                                           audit.Actor("after-upgrade"), audit.Action.LOGIN))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM audit_log")
        with db.connect(rt.database_url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM residents").fetchone() == (0,)
            verdict = audit.verify(conn)
            conn.execute(_STATUS, (BEFORE, BEFORE))  # the old chunk is granted too
            assert conn.execute("SELECT count(*) FROM device_status").fetchone() == (2,)
            dropped = rollups.drop_chunks(conn, "device_status", datetime(2026, 4, 1, tzinfo=UTC))
        assert verdict.intact and verdict.checked == 2
        assert len(dropped) == 1
    finally:
        proc.stop()
    proc = start_postgres(pg)  # a second start changes nothing: the role is already there
    try:
        assert migrate(rt.owner_url) == []
        with db.connect(rt.database_url, autocommit=True) as conn:
            assert audit.verify(conn).checked == 2
    finally:
        proc.stop()


def test_one_external_url_serves_for_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", "postgresql://app:pw@db.example/eldercare")
    monkeypatch.setenv("ELDERCARE_MQTT_URL", "mqtt://u:p@mq.example:1883")
    monkeypatch.setenv("ELDERCARE_JWT_SECRET", "s" * 32)
    monkeypatch.delenv("ELDERCARE_DATABASE_OWNER_URL", raising=False)
    one = resolve(Settings(data_dir=Path("/nonexistent")))
    assert one.owner_url == one.database_url
    assert "ELDERCARE_DATABASE_OWNER_URL" not in one.child_env()
    monkeypatch.setenv("ELDERCARE_DATABASE_OWNER_URL", "postgresql://own:pw@db.example/eldercare")
    two = resolve(Settings(data_dir=Path("/nonexistent")))
    assert two.owner_url.startswith("postgresql://own:")
    assert two.database_url.startswith("postgresql://app:")
    assert "ELDERCARE_DATABASE_OWNER_URL" not in two.child_env()  # children never migrate

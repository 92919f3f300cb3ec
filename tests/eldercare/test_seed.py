"""The demo district's seed (issue 13 trial): residents' ages agree with their birth years at
the injected clock, and their devices are provisioned like every other device (the
password file, not the dynamic-security plugin)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from eldercare.seed import (
    MAX_AGE,
    MIN_AGE,
    RESPONDER_FILE,
    configure_demo_channels,
    ensure_demo_responders,
    seed_demo,
)
from gateway.device_accounts import PASSWORD_FILE, DeviceAccounts
from kernel import db
from kernel.accounts import verify_password
from tests.support.services import Broker


def test_demo_residents_ages_match_birth_years_and_devices_use_the_files(
        clean_db: str, broker: Broker, tmp_path: Path) -> None:
    now = datetime(2041, 6, 1, 8, 0, tzinfo=UTC)  # any year: ages follow the clock
    accounts = DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port))
    logins = seed_demo(clean_db, accounts, broker.pipeline, tmp_path, homes=6, now=lambda: now)
    with db.connect(clean_db) as conn:
        residents = conn.execute("SELECT full_name, birth_year FROM residents").fetchall()
        devices = conn.execute("SELECT id, broker_hash FROM devices").fetchall()
    assert len(residents) == 6
    for name, birth_year in residents:
        assert MIN_AGE <= now.year - birth_year <= MAX_AGE, (name, birth_year)
        assert not re.search(r"\d", name), f"a stored age goes stale: {name!r}"
    family = [login.scope for login in logins if login.role == "family"]
    assert sorted(family) == sorted(name for name, _ in residents)
    assert len(devices) == 12 and all(h is not None for _, h in devices)
    users = {line.split(":", 1)[0] for line in
             (broker.data_dir / PASSWORD_FILE).read_text().splitlines()}
    assert {d for d, _ in devices} <= users


def test_demo_seed_gives_sites_group_robots_and_families_an_email_channel(
        clean_db: str, broker: Broker, tmp_path: Path) -> None:
    """So that an SOS in the demo reaches the staff groups and the family (through the demo's
    local receivers, simulators/sinks.py) instead of "no active notification channel"."""
    now = datetime(2041, 6, 1, 8, 0, tzinfo=UTC)
    accounts = DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port))
    seed_demo(clean_db, accounts, broker.pipeline, tmp_path, homes=4, now=lambda: now)
    with db.connect(clean_db) as conn:
        groups = conn.execute("SELECT site_id, kind, target, timezone FROM "
                              "notification_channels WHERE site_id IS NOT NULL "
                              "ORDER BY site_id").fetchall()
        languages = conn.execute("SELECT id, timezone, language FROM sites ORDER BY id"
                                 ).fetchall()
        family = conn.execute("SELECT u.username, c.kind, c.target, c.min_severity "
                              "FROM notification_channels c JOIN users u ON u.id = c.user_id "
                              "WHERE u.role = 'family' ORDER BY u.username").fetchall()
        staff = conn.execute("SELECT u.username, c.target, c.timezone "
                             "FROM notification_channels c JOIN users u ON u.id = c.user_id "
                             "WHERE u.role <> 'family' ORDER BY u.username").fetchall()
    assert groups == [("hillview", "dingtalk", "demo-hillview-care-team", "Asia/Shanghai"),
                      ("riverside", "wecom", "demo-riverside-care-team", "Asia/Shanghai")]
    # the demo's sites are in China: their group robots are written to in Chinese
    assert languages == [("hillview", "Asia/Shanghai", "zh-CN"),
                         ("riverside", "Asia/Shanghai", "zh-CN")]
    assert family == [(f"family{n:02d}", "email", f"family{n:02d}@family.example", "high")
                      for n in range(1, 5)]
    # the printed staff logins are reached by e-mail (escalations to staff show), the
    # responder is not (it is no person)
    assert [u for u, _t, _z in staff] == ["carer1-hillview", "carer1-riverside",
                                         "carer2-hillview", "carer2-riverside",
                                         "duty-hillview", "duty-riverside"]
    assert all(t == f"{u}@care.example" and z == "Asia/Shanghai" for u, t, z in staff)
    assert configure_demo_channels(clean_db) == 0  # every demo start: nothing added twice


def test_demo_seed_gives_each_site_an_off_duty_responder_account_whose_password_works(
        clean_db: str, broker: Broker, tmp_path: Path) -> None:
    """The demo's responder (simulators/responder.py) logs in as a care worker of each site;
    it is off duty, so the platform never assigns it an alert, and its accounts survive a
    lost password file (a new password) and a demo seeded before it existed."""
    now = datetime(2041, 6, 1, 8, 0, tzinfo=UTC)
    accounts = DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port))
    seed_demo(clean_db, accounts, broker.pipeline, tmp_path, homes=4, now=lambda: now)
    path = tmp_path / RESPONDER_FILE
    first = json.loads(path.read_text())
    assert [(d["username"], d["role"], d["scope"]) for d in first] == [
        ("responder-hillview", "care_worker", "hillview"),
        ("responder-riverside", "care_worker", "riverside")]
    assert path.stat().st_mode & 0o777 == 0o600
    with db.connect(clean_db) as conn:
        rows = conn.execute("SELECT username, role, site_id, on_duty, password_hash FROM users "
                            "WHERE username LIKE 'responder-%' ORDER BY username").fetchall()
    assert [r[:4] for r in rows] == [("responder-hillview", "care_worker", "hillview", False),
                                     ("responder-riverside", "care_worker", "riverside", False)]
    assert all(verify_password(d["password"], r[4]) for d, r in zip(first, rows, strict=True))
    assert [vars(x) for x in ensure_demo_responders(clean_db, tmp_path)] == first  # unchanged
    path.unlink()
    again = ensure_demo_responders(clean_db, tmp_path)
    with db.connect(clean_db) as conn:
        hashes = [r[0] for r in conn.execute("SELECT password_hash FROM users WHERE username "
                                             "LIKE 'responder-%' ORDER BY username")]
    assert all(verify_password(x.password, h) for x, h in zip(again, hashes, strict=True))
    assert json.loads(path.read_text()) == [vars(x) for x in again]

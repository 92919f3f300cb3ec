"""Seed a demo district: sites, residents with a bed sensor and a call button, staff, family."""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.device_accounts import DeviceAccounts
from gateway.device_lifecycle import NewDevice, broker_change, insert_devices
from gateway.schema import DeviceType
from kernel import accounts
from kernel.db import connect
from kernel.endpoint import MqttEndpoint
from kernel.sites import add_resident, add_site

logger = logging.getLogger(__name__)

DEMO_SITES = (("riverside", "Riverside Home Care", "Asia/Shanghai"),
              ("hillview", "Hillview Home Care", "Asia/Shanghai"))
# A demo site in China (by its zone) has its group robots written to in Simplified Chinese
# (sites.language), as the duty team there reads them; any other site in English.
CHINA_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "Asia/Urumqi"})


def demo_site_language(timezone: str) -> str:
    """The language of a demo site's group channels: Chinese for a site in China."""
    return "zh-CN" if timezone in CHINA_ZONES else "en"
_GIVEN = ("Li", "Wang", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu",
          "Margaret", "Arthur", "Dorothy", "Harold", "Edith", "Walter", "Agnes", "Frank")
_FAMILY = ("Mei", "Hua", "Jun", "Lan", "Ming", "Ping", "Xiu", "Ying", "Rose", "George",
           "Helen", "Albert", "Irene", "Stanley", "Mabel", "Ernest")
MIN_AGE, MAX_AGE = 70, 94  # the demo residents' ages at seeding
_STREETS = ("Willow Lane", "Station Road", "Lotus Street", "Mill Row", "Park Avenue",
            "Orchard Way", "Bridge Street", "Garden Court")


@dataclass(frozen=True)
class DemoLogin:
    """A demo account printed at start-up."""

    username: str
    password: str
    role: str
    scope: str


def _pw() -> str:
    """A random 12-character password that passes the password policy (a random draw may,
    very rarely, look guessable to its estimate; then draw again)."""
    while True:
        password = secrets.token_urlsafe(9)
        try:
            accounts.check_password_policy(password)
        except accounts.RegistryError:
            continue
        return password


def _write_private(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)


def seed_demo(database_url: str, device_accounts: DeviceAccounts, broker: MqttEndpoint,
              data_dir: Path, homes: int = 24, seed: int = 7,
              now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[DemoLogin]:
    """Create the demo district once; return the demo logins (read back on later runs).

    Residents are 70-94 years old at `now` (the injected clock): their birth year is drawn
    from it. Names carry no age (a stored age is wrong a year later; the ledger shows the
    birth year). Devices are provisioned through the one path of every device
    (gateway.device_lifecycle, record 0006), in one broker change."""
    logins_file = data_dir / "demo-logins.json"
    devices_file = data_dir / "demo-devices.json"
    if logins_file.exists() and devices_file.exists():
        return [DemoLogin(**d) for d in json.loads(logins_file.read_text())]
    rng = random.Random(seed)  # noqa: S311 - demo names, not secrets
    this_year = now().year
    logins: list[DemoLogin] = []
    new: list[NewDevice] = []
    with connect(database_url) as conn:
        admin_pw = _pw()
        accounts.add_user(conn, "admin", admin_pw, "admin", full_name="Platform admin")
        logins.append(DemoLogin("admin", admin_pw, "admin", "all sites"))
        for index in range(homes):
            site_id, site_name, tz = DEMO_SITES[index % len(DEMO_SITES)]
            if index < len(DEMO_SITES):
                add_site(conn, site_id, site_name, tz, demo_site_language(tz))
                logins += _staff(conn, site_id)
            name = f"{rng.choice(_GIVEN)} {chr(65 + index % 26)}."
            address = f"{rng.randrange(1, 200)} {rng.choice(_STREETS)}"
            age = MIN_AGE + rng.randrange(MAX_AGE - MIN_AGE + 1)
            rid = add_resident(conn, site_id, name, address, birth_year=this_year - age)
            new += [NewDevice(rid, site_id, t)
                    for t in (DeviceType.BED_SENSOR, DeviceType.CALL_BUTTON)]
            fam_pw = _pw()
            username = f"family{index + 1:02d}"
            accounts.add_user(conn, username, fam_pw, "family",
                              full_name=f"{rng.choice(_FAMILY)} (family of {name})",
                              residents=[rid])
            logins.append(DemoLogin(username, fam_pw, "family", name))
        conn.commit()
        with broker_change(conn, device_accounts):
            creds = [c.as_dict() for c in insert_devices(conn, broker, new, "demo-seed")]
    configure_demo_channels(database_url)
    ensure_demo_responders(database_url, data_dir)
    _write_private(devices_file, creds)
    _write_private(logins_file, [login.__dict__ for login in logins])
    logger.info("seeded %d homes (%d devices)", homes, len(creds))
    return logins


def _staff(conn: Any, site_id: str) -> list[DemoLogin]:
    out = []
    duty_pw = _pw()
    accounts.add_user(conn, f"duty-{site_id}", duty_pw, "duty_officer", site_id,
                      full_name=f"Duty officer, {site_id}", on_duty=True)
    out.append(DemoLogin(f"duty-{site_id}", duty_pw, "duty_officer", site_id))
    for n in (1, 2):
        pw = _pw()
        accounts.add_user(conn, f"carer{n}-{site_id}", pw, "care_worker", site_id,
                          full_name=f"Care worker {n}, {site_id}", on_duty=True)
        if n == 1:
            out.append(DemoLogin(f"carer{n}-{site_id}", pw, "care_worker", site_id))
    return out


# The demo's notification channels: staff group robots per site and an e-mail address per
# family account. They reach the demo's local receivers because `eldercare demo` points the
# e-mail server and the robots' base URLs there (simulators/sinks.py); a robot's target is its
# key, as WeCom and DingTalk hand it out (the sender always posts to the configured base URL).
DEMO_GROUP_ROBOTS = {"riverside": ("wecom", "demo-riverside-care-team"),
                     "hillview": ("dingtalk", "demo-hillview-care-team")}
DEMO_FAMILY_MAIL_DOMAIN = "family.example"  # RFC 2606: never a real mailbox

_GROUP_CHANNEL_SQL = """
INSERT INTO notification_channels (site_id, kind, target, min_severity, timezone)
SELECT s.id, %(kind)s, %(target)s, 'warning', s.timezone FROM sites s WHERE s.id = %(site)s
ON CONFLICT (COALESCE(user_id, 0), COALESCE(site_id, ''), kind, target) DO NOTHING
"""
# Family members hear high and above (the platform's default for them).
_FAMILY_MAIL_SQL = """
INSERT INTO notification_channels (user_id, kind, target, min_severity, timezone)
SELECT u.id, 'email', u.username || '@' || %(domain)s, 'high',
       COALESCE((SELECT s.timezone FROM family_contacts f JOIN residents r ON r.id = f.resident_id
                 JOIN sites s ON s.id = r.site_id WHERE f.user_id = u.id LIMIT 1), 'UTC')
FROM users u WHERE u.role = 'family' AND u.username LIKE 'family%%'
ON CONFLICT (COALESCE(user_id, 0), COALESCE(site_id, ''), kind, target) DO NOTHING
"""


DEMO_STAFF_MAIL_DOMAIN = "care.example"  # RFC 2606: never a real mailbox
# The staff whose logins the demo prints (duty-<site>, carer<n>-<site>; not the responder)
# are reached by e-mail too, so the escalation steps to site workers and duty officers show on
# Sent notifications like the family's.
_STAFF_MAIL_SQL = """
INSERT INTO notification_channels (user_id, kind, target, min_severity, timezone)
SELECT u.id, 'email', u.username || '@' || %(domain)s, 'warning', s.timezone
FROM users u JOIN sites s ON s.id = u.site_id
WHERE u.role IN ('duty_officer', 'care_worker')
  AND (u.username LIKE 'duty-%%' OR u.username LIKE 'carer%%')
ON CONFLICT (COALESCE(user_id, 0), COALESCE(site_id, ''), kind, target) DO NOTHING
"""


def configure_demo_channels(database_url: str) -> int:
    """Give the demo sites their group robots, and the demo family accounts and printed staff
    logins an e-mail channel (idempotent: a demo seeded before these existed gets them on its
    next start). Returns the number of channels added."""
    added = 0
    with connect(database_url) as conn:
        for site, (kind, key) in DEMO_GROUP_ROBOTS.items():
            added += conn.execute(_GROUP_CHANNEL_SQL,
                                  {"site": site, "kind": kind, "target": key}).rowcount
        added += conn.execute(_FAMILY_MAIL_SQL, {"domain": DEMO_FAMILY_MAIL_DOMAIN}).rowcount
        added += conn.execute(_STAFF_MAIL_SQL, {"domain": DEMO_STAFF_MAIL_DOMAIN}).rowcount
        conn.commit()
    if added:
        logger.info("demo notification channels added: %d", added)
    return added


# The demo's responder (simulators/responder.py) answers alerts as a care worker of each demo
# site, through the web API like a person. Its accounts are apart from the printed logins (a
# newcomer logs in as carer1-...; what the responder did shows under its own name) and off
# duty, so the platform never assigns it an alert: it picks alerts up from the site's list.
RESPONDER_FILE = "demo-responder.json"
RESPONDER_NAME = "Simulated care worker (demo responder), {site}"


def responder_username(site: str) -> str:
    """The responder's account at a demo site."""
    return f"responder-{site}"


def ensure_demo_responders(database_url: str, data_dir: Path) -> list[DemoLogin]:
    """Give each demo site a care-worker account for the demo's responder, and keep their
    passwords in `data_dir`/demo-responder.json (private). Idempotent: a demo seeded before
    the responder existed gets the accounts on its next start, and an account whose password
    file was lost gets a new password."""
    path = data_dir / RESPONDER_FILE
    known = ({d["username"]: DemoLogin(**d) for d in json.loads(path.read_text())}
             if path.exists() else {})
    logins: list[DemoLogin] = []
    with connect(database_url) as conn:
        sites = [str(r[0]) for r in conn.execute(
            "SELECT id FROM sites WHERE id = ANY(%s) ORDER BY id",
            ([site for site, _, _ in DEMO_SITES],))]
        for site in sites:
            username = responder_username(site)
            row = conn.execute("SELECT id FROM users WHERE lower(username) = %s",
                               (accounts.username_key(username),)).fetchone()
            login = known.get(username)
            if row is not None and login is not None:
                logins.append(login)
                continue
            password = _pw()
            if row is None:
                accounts.add_user(conn, username, password, "care_worker", site,
                                  full_name=RESPONDER_NAME.format(site=site))
            else:  # the account outlived its password file
                conn.execute("UPDATE users SET password_hash = %s WHERE id = %s",
                             (accounts.hash_password(password), row[0]))
            logins.append(DemoLogin(username, password, "care_worker", site))
        conn.commit()
    if [login.__dict__ for login in logins] != [v.__dict__ for v in known.values()]:
        _write_private(path, [login.__dict__ for login in logins])
        logger.info("demo responder accounts: %s", ", ".join(x.username for x in logins))
    return logins

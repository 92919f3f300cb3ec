"""The `eldercare` command against the real broker and database (production path: URLs set)."""

from __future__ import annotations

import json
import time

import pytest

from gateway.schema import Channel
from tests.support.cli import run, run_main
from tests.support.database import count
from tests.support.devices import RawDevice
from tests.support.pipeline import running_pipeline
from tests.support.platform import flags_only_env
from tests.support.wait import wait_until


@pytest.mark.slow
def test_migrate_is_a_no_op_when_up_to_date(env):
    assert "up to date" in run(env, "db", "migrate").stdout


@pytest.mark.slow
def test_installer_flow_device_connects_at_once(env, broker, clean_db):

    run(env, "site", "add", "east", "--name", "East")
    rid = json.loads(run(env, "resident", "add", "--site", "east", "--name", "Walter").stdout)[
        "resident_id"]
    with running_pipeline(broker.pipeline, clean_db, ["east"], "cli"):
        out = json.loads(run(env, "device", "add", "--resident", str(rid),
                             "--type", "call_button").stdout)
        assert set(out) >= {"device_id", "site", "username", "password", "topic_prefix"}
        assert out["site"] == "east" and out["username"] == out["device_id"]
        assert out["topic_prefix"] == f"eldercare/v1/east/{out['device_id']}"
        from gateway.provisioning import DeviceCredentials

        dev = RawDevice(DeviceCredentials(**out), broker.port)
        wait_until(dev.connected.is_set, what="new device connects without any restart")
        dev.publish(Channel.EVENT, json.dumps({"ts": int(time.time() * 1000), "seq": 1,
                                               "type": "sos"}).encode())
        wait_until(lambda: count(clean_db, "SELECT count(*) FROM alerts WHERE resident_id=%s",
                                 rid), what="alert from the new device")
        dev.close()


@pytest.mark.slow
def test_clear_errors(env):
    bad = run(env, "device", "add", "--resident", "999", "--type", "bed_sensor", ok=False)
    assert bad.returncode == 1 and "no active resident with id 999" in bad.stderr
    bad = run(env, "site", "add", "Bad Site", "--name", "x", ok=False)
    assert "must be 1-32" in bad.stderr
    bad = run(env, "site", "add", "west", "--name", "West", "--timezone", "Mars/Olympus",
              ok=False)
    assert "unknown time zone 'Mars/Olympus'" in bad.stderr
    bad = run(env, "site", "add", "west", "--name", "West", "--timezone", "localtime",
              ok=False)  # the server's own zone, not an IANA name
    assert "unknown time zone 'localtime'" in bad.stderr
    bad = run(env, "user", "add", "--username", "x", "--role", "care_worker",
              "--password", "longenough", ok=False)
    assert "needs a site" in bad.stderr


@pytest.mark.slow
def test_user_add_generates_password_when_not_a_terminal(env):
    run(env, "site", "add", "west", "--name", "West")
    out = json.loads(run(env, "user", "add", "--username", "ana", "--role", "care_worker",
                         "--site", "west").stdout)
    assert out["role"] == "care_worker" and len(out["password"]) >= 12


@pytest.mark.slow
def test_simulate_accelerated_writes_ground_truth(env, broker, clean_db, tmp_path):
    from tests.support.homes import seed_home

    home = seed_home(clean_db, broker.admin)
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps([home.bed.as_dict(), home.button.as_dict()]))
    truth = tmp_path / "truth.jsonl"
    # A fixed start: with the default (the window ends "now") whether an incident fits in
    # 2.4 h depended on the hour the test ran (none between 19:00 and 20:00 UTC).
    out = run(env, "simulate", "--mode", "accelerated", "--creds", str(creds), "--days", "0.1",
              "--start", "2020-01-06T02:00:00Z", "--telemetry-period", "60",
              "--incidents-per-day", "20", "--no-progress",
              "--truth", str(truth))
    assert str(truth) in out.stdout and truth.exists()
    assert truth.read_text().strip(), "incidents were injected and recorded"
    # A start before the 90-day retention window: the platform would refuse the readings as
    # too old, and the command says so.
    assert "older than the platform's raw retention window" in out.stderr


@pytest.mark.slow
def test_simulate_start_needs_an_offset(env, tmp_path):
    bad = run(env, "simulate", "--mode", "accelerated", "--creds", str(tmp_path / "x.json"),
              "--start", "2026-01-05T02:00:00", ok=False)
    assert bad.returncode == 2 and "needs a UTC offset" in bad.stderr


@pytest.mark.slow
def test_alert_settings_override_for_a_resident(env):
    run(env, "site", "add", "north", "--name", "North")
    rid = json.loads(run(env, "resident", "add", "--site", "north", "--name", "A").stdout)[
        "resident_id"]
    out = json.loads(run(env, "alerts", "settings", "--resident", str(rid), "--set",
                         '{"heart_rate": {"urgent_at_or_above": 140}}').stdout)
    assert out["override"] == {"heart_rate": {"urgent_at_or_above": 140}}
    assert out["effective"]["heart_rate"]["urgent_at_or_above"] == 140
    assert out["effective"]["heart_rate"]["urgent_at_or_below"] == 40
    bad = run(env, "alerts", "settings", "--site", "north", "--set", '{"apnea_s": 0}', ok=False)
    assert bad.returncode == 1 and "apnea_s" in bad.stderr
    cleared = json.loads(run(env, "alerts", "settings", "--resident", str(rid), "--clear").stdout)
    assert cleared["override"] is None


@pytest.mark.slow
def test_admin_commands_take_the_demo_flags_and_say_where_they_connect(clean_db, pg_config,
                                                                       tmp_path):
    """`site add --pg-port P --data-dir D` reaches the embedded database the demo started
    with the same flags (its password is in D/secrets.json) and says so on stderr."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "secrets.json").write_text(json.dumps({
        "pg_password": pg_config.password, "pg_app_password": pg_config.app_password,
        "mqtt_admin_password": "unused",
        "mqtt_pipeline_password": "unused", "jwt_secret": "unused-unused-unused-unused"}))
    flags = ["--pg-port", str(pg_config.port), "--data-dir", str(data)]
    added = run(flags_only_env(), "site", "add", "flagged", "--name", "Flagged", *flags)
    assert json.loads(added.stdout) == {"site": "flagged"}
    assert added.stderr.splitlines()[-1] == (
        f"using database 127.0.0.1:{pg_config.port}/eldercare (embedded, data dir {data})")
    assert count(clean_db, "SELECT count(*) FROM sites WHERE id = 'flagged'") == 1


@pytest.mark.slow
def test_admin_command_says_where_an_external_database_is(env):
    added = run(env, "site", "add", "ext", "--name", "External")
    assert "(external, from ELDERCARE_DATABASE_URL/ELDERCARE_MQTT_URL)" in added.stderr
    assert "password" not in added.stderr and "test-pg-pw" not in added.stderr
    assert "test-app-pw" not in added.stderr


@pytest.mark.slow
def test_port_flags_with_external_urls_are_refused(env):
    bad = run(env, "site", "add", "x", "--name", "X", "--pg-port", "1", ok=False)
    assert bad.returncode != 0 and "--pg-port set the embedded services' ports" in bad.stderr


@pytest.mark.slow
def test_admin_command_without_a_database_says_where_it_looked(tmp_path):
    from eldercare.embedded import free_port

    port = free_port()
    bad = run(flags_only_env(), "site", "add", "x", "--name", "X", "--pg-port", str(port),
              "--data-dir", str(tmp_path), ok=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert f"cannot connect to the database 127.0.0.1:{port}" in bad.stderr


# --- user accounts: clear errors, password policy, case, activation -------------------------


def test_user_add_names_a_missing_resident_instead_of_a_traceback(cli_db, capsys):
    code, _, err = run_main(capsys, "user", "add", "--username", "son", "--role", "family",
                            "--resident", "9999", "--password", "a long family password")
    assert code == 1
    assert err.strip() == "error: resident 9999 does not exist"
    assert count(cli_db, "SELECT count(*) FROM users") == 0


@pytest.mark.parametrize("password, why", [
    ("password", "at least 12 characters"),
    ("12345678", "at least 12 characters"),
    ("123qweasdzxc", "most common passwords"),
    ("QWERTY123456", "most common passwords"),
    ("dora-duty-north", "must not be the username"),
    ("123456789012", "too easy to guess"),
    ("aaaaaaaaaaaa", "too easy to guess"),
    ("passwordpassword", "too easy to guess"),
    ("qwertyuiopas", "too easy to guess"),
    ("Dora-Duty-North-1", "too easy to guess"),
])
def test_user_add_refuses_weak_passwords(cli_db, capsys, password, why):
    run_main(capsys, "site", "add", "north", "--name", "North")
    code, _, err = run_main(capsys, "user", "add", "--username", "Dora-Duty-North", "--role",
                            "duty_officer", "--site", "north", "--password", password)
    assert code == 1 and err.startswith("error: password") and why in err
    assert count(cli_db, "SELECT count(*) FROM users") == 0


def test_usernames_are_unique_regardless_of_case(cli_db, capsys):
    from kernel import db

    args = ("--role", "admin", "--password", "a long admin password")
    assert run_main(capsys, "user", "add", "--username", "admin", *args)[0] == 0
    code, _, err = run_main(capsys, "user", "add", "--username", "Admin", *args)
    assert code == 1
    assert "user 'Admin' already exists as 'admin'" in err
    with pytest.raises(Exception, match="users_username_lower_idx"), \
            db.connect(cli_db, autocommit=True) as conn:  # the index holds for any path
        conn.execute("INSERT INTO users (username, password_hash, role) "
                     "VALUES ('ADMIN', 'x', 'admin')")


def test_user_deactivate_and_activate(cli_db, capsys):
    run_main(capsys, "user", "add", "--username", "ana", "--role", "admin",
             "--password", "a long admin password")
    code, out, _ = run_main(capsys, "user", "deactivate", "--username", "Ana")
    assert code == 0 and json.loads(out)["active"] is False
    assert count(cli_db, "SELECT count(*) FROM users WHERE NOT active") == 1
    code, out, _ = run_main(capsys, "user", "activate", "--username", "ana")
    assert code == 0 and json.loads(out)["active"] is True
    code, _, err = run_main(capsys, "user", "deactivate", "--username", "nobody")
    assert code == 1 and err.strip() == "error: user 'nobody' does not exist"


@pytest.mark.parametrize("username", ["", "x" * 151, "ana\nERROR forged", "tab\there", " ana",
                                      "carer-ea\u017ft", "duty-h\u0130llview", "李伟", ".ana"])
def test_user_add_refuses_usernames_the_login_form_would_refuse(cli_db, capsys, username):
    code, _, err = run_main(capsys, "user", "add", "--username", username, "--role", "admin",
                            "--password", "a long admin password")
    assert code == 1 and err.startswith("error: username")
    assert count(cli_db, "SELECT count(*) FROM users") == 0

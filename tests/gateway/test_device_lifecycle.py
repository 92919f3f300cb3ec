"""Device accounts in the broker's password/ACL files (record 0006), on the REAL Mosquitto:
provision, confinement to own topics, live revocation, moving across sites, history."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from gateway import device_lifecycle
from gateway.device_accounts import (
    DeviceAccount,
    DeviceAccounts,
    DeviceAccountsError,
    broker_hash,
    render_acl_file,
    render_password_file,
    wait_reloaded,
)
from gateway.provisioning import DeviceCredentials
from gateway.schema import Channel, DeviceType, topic_for
from kernel import db
from kernel.accounts import RegistryError
from kernel.sites import add_resident, add_site
from tests.support.probe import NOT_AUTHORIZED, TIMEOUT, Probe
from tests.support.services import Broker

GRANTED_QOS1 = 1


@pytest.fixture
def accounts(broker: Broker) -> DeviceAccounts:
    """The test broker's device account files."""
    return DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port))


@pytest.fixture
def residents(clean_db: str) -> tuple[int, int, int]:
    """Two residents at site-a, one at site-b."""
    with db.connect(clean_db) as conn:
        add_site(conn, "site-a", "A")
        add_site(conn, "site-b", "B")
        ids = (add_resident(conn, "site-a", "Ada"), add_resident(conn, "site-a", "Bob"),
               add_resident(conn, "site-b", "Cy"))
        conn.commit()
    return ids


def _provision(clean_db: str, accounts: DeviceAccounts, broker: Broker, resident: int,
               ) -> DeviceCredentials:
    with db.connect(clean_db) as conn:
        return device_lifecycle.provision(conn, accounts, broker.pipeline, resident,
                                          DeviceType.CALL_BUTTON, actor="tester")


def test_hash_matches_mosquitto_passwd_format() -> None:
    # Produced by `mosquitto_passwd -b pw dev-1 secret1` (Mosquitto 2.0.11).
    salt = base64.b64decode("SD1+8EwIgw5RZbAP")
    assert broker_hash("secret1", salt) == (
        "$7$101$SD1+8EwIgw5RZbAP$0XL4rAGrMj0AQPcpdFPc0hOl1l4xmO4b40/k7qzOIV+KJ1s2hG5Vi+dsTRqQ"
        "7cFd82ywFLKxDnlboKJ0jnHRbQ==")


def test_rendered_files_confine_devices_by_username() -> None:
    acc = [DeviceAccount("btn-1", "site-a", "$7$h")]
    assert render_password_file(acc) == "btn-1:$7$h\n"
    acl = render_acl_file()
    assert "pattern write eldercare/v1/+/%u/event\n" in acl
    assert "pattern read eldercare/v1/+/%u/cmd\n" in acl
    assert "#" not in acl and "%c" not in acl


def test_provisioned_device_connects_and_is_confined(
        broker: Broker, clean_db: str, accounts: DeviceAccounts,
        residents: tuple[int, int, int], probes: list[Probe]) -> None:
    cred = _provision(clean_db, accounts, broker, residents[0])
    other = _provision(clean_db, accounts, broker, residents[1])
    dev = Probe(broker.port, cred.username, cred.password, cred.device_id,
                MQTTProtocolVersion.MQTTv5)
    probes.append(dev)
    dev.wait_connected()
    own_cmd = topic_for("site-a", cred.device_id, Channel.CMD)
    assert dev.subscribe(own_cmd).value == GRANTED_QOS1
    # Mosquitto's acl_file grants the SUBSCRIBE but checks `read` on every delivery: a
    # device never receives another device's commands (nor anything else under the root).
    dev.subscribe(topic_for("site-a", other.device_id, Channel.CMD))
    dev.subscribe("eldercare/v1/#")
    pipe = Probe.pipeline(broker)
    probes.append(pipe)
    pipe.client.publish(topic_for("site-a", other.device_id, Channel.CMD), b"theirs", qos=1)
    pipe.client.publish(own_cmd, b"mine", qos=1)
    dev._wait_for(lambda: any(m.payload == b"mine" for m in dev.messages), "own command")
    assert {m.payload for m in dev.messages} == {b"mine"}
    for bad in ("wrong", ""):
        probe = Probe(broker.port, cred.username, bad, cred.device_id)
        probes.append(probe)
        assert probe.wait_refused().value == NOT_AUTHORIZED
    anon = Probe(broker.port, None, None, cred.device_id)
    probes.append(anon)
    assert anon.wait_refused().value == NOT_AUTHORIZED


def test_reserved_ids_are_refused(clean_db: str, accounts: DeviceAccounts, broker: Broker,
                                  residents: tuple[int, int, int]) -> None:
    with db.connect(clean_db) as conn, pytest.raises(RegistryError):
        device_lifecycle.provision(conn, accounts, broker.pipeline, residents[0],
                                   DeviceType.CALL_BUTTON, device_id="eldercare-pipeline")


def test_device_publishes_only_on_its_own_topics(
        broker: Broker, clean_db: str, accounts: DeviceAccounts,
        residents: tuple[int, int, int], probes: list[Probe]) -> None:
    cred = _provision(clean_db, accounts, broker, residents[0])
    other = _provision(clean_db, accounts, broker, residents[1])
    pipe = Probe.pipeline(broker)
    probes.append(pipe)
    assert not pipe.subscribe("eldercare/v1/+/+/+").is_failure
    dev = Probe(broker.port, cred.username, cred.password, cred.device_id)
    probes.append(dev)
    dev.wait_connected()
    forbidden = topic_for("site-a", other.device_id, Channel.EVENT)
    allowed = topic_for("site-a", cred.device_id, Channel.EVENT)
    dev.client.publish(forbidden, b"forged", qos=1)
    dev.client.publish(allowed, b"mine", qos=1)
    pipe._wait_for(lambda: any(m.topic == allowed for m in pipe.messages), "own event")
    # Retained statuses of other tests' devices on the session's broker are not this test's.
    assert [m.topic for m in pipe.messages if not m.retain] == [allowed]


def test_revoke_cuts_the_live_session_at_once(
        broker: Broker, clean_db: str, accounts: DeviceAccounts,
        residents: tuple[int, int, int], probes: list[Probe]) -> None:
    cred = _provision(clean_db, accounts, broker, residents[0])
    dev = Probe(broker.port, cred.username, cred.password, cred.device_id)
    probes.append(dev)
    dev.wait_connected()
    with db.connect(clean_db) as conn:
        device_lifecycle.revoke(conn, accounts, cred.device_id, actor="tester")
        actions = conn.execute("SELECT action FROM device_history WHERE device_id = %s "
                               "ORDER BY id", (cred.device_id,)).fetchall()
    assert [a for (a,) in actions] == ["provision", "revoke"]
    assert dev.disconnected.wait(TIMEOUT), "revoked device was not disconnected"
    again = Probe(broker.port, cred.username, cred.password, cred.device_id)
    probes.append(again)
    assert again.wait_refused().value == NOT_AUTHORIZED
    with db.connect(clean_db) as conn, pytest.raises(RegistryError):
        device_lifecycle.revoke(conn, accounts, cred.device_id)


def test_move_to_another_site_keeps_the_login_under_the_new_prefix(
        broker: Broker, clean_db: str, accounts: DeviceAccounts,
        residents: tuple[int, int, int], probes: list[Probe]) -> None:
    cred = _provision(clean_db, accounts, broker, residents[0])
    with db.connect(clean_db) as conn:
        assert device_lifecycle.move(conn, accounts, cred.device_id, residents[2],
                                     actor="tester") == ("site-a", "site-b")
        row = conn.execute("SELECT site_id, resident_id FROM devices WHERE id = %s",
                           (cred.device_id,)).fetchone()
    assert row == ("site-b", residents[2])
    dev = Probe(broker.port, cred.username, cred.password, cred.device_id)
    probes.append(dev)
    dev.wait_connected()
    pipe = Probe.pipeline(broker)
    probes.append(pipe)
    assert not pipe.subscribe("eldercare/v1/+/+/+").is_failure
    # The broker confines by username (the site level is the gateway's to check against
    # the registry, which now says site-b): the same login publishes under the new prefix.
    new = topic_for("site-b", cred.device_id, Channel.EVENT)
    dev.client.publish(new, b"new", qos=1)
    pipe._wait_for(lambda: any(m.topic == new for m in pipe.messages), "event at new site")
    with db.connect(clean_db) as conn:
        history = conn.execute("SELECT action, from_site_id, site_id FROM device_history "
                               "WHERE device_id = %s ORDER BY id", (cred.device_id,)).fetchall()
    assert history == [("provision", None, "site-a"), ("move", "site-a", "site-b")]


def test_a_broker_that_cannot_be_reloaded_stores_nothing(
        clean_db: str, broker: Broker, residents: tuple[int, int, int], tmp_path: Path) -> None:
    nowhere = DeviceAccounts(tmp_path / "no-broker")  # no pid file: the reload fails
    with db.connect(clean_db) as conn:
        with pytest.raises(DeviceAccountsError):
            device_lifecycle.provision(conn, nowhere, broker.pipeline, residents[0],
                                       DeviceType.BED_SENSOR, actor="tester")
        assert conn.execute("SELECT count(*) FROM devices").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM device_history").fetchone() == (0,)


def test_the_reload_check_gives_up_when_the_broker_never_accepts_its_login(
        broker: Broker) -> None:
    # A check password no rendering holds: every login is refused until the deadline.
    with pytest.raises(DeviceAccountsError, match="did not load the new device accounts"):
        wait_reloaded(("127.0.0.1", broker.port), "never-rendered", timeout=0.2)

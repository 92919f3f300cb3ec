"""Broker-side security on the REAL Mosquitto (dynamic security): logins and per-device ACLs.

No fixed sleeps: every wait is on an event or a condition with a deadline. To prove that a
forbidden publish never arrived, the device publishes an allowed message AFTER the forbidden
ones on the same connection; the broker handles one connection's packets in order and delivers
QoS 1 messages to one subscriber in order, so once the allowed one has arrived, anything the
broker had accepted before it would already be there.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from gateway.broker_admin import BrokerAdmin
from gateway.schema import (
    ALL_SITES_FILTER,
    LAST_WILL_PAYLOAD,
    Channel,
    DeviceStatus,
    SosAckCommand,
    decode_command,
    decode_status,
    encode,
    topic_for,
)
from tests.support.homes import Home, seed_home
from tests.support.probe import NOT_AUTHORIZED, TIMEOUT, Probe
from tests.support.services import Broker

PROTOCOLS = [
    pytest.param(MQTTProtocolVersion.MQTTv311, id="mqtt311"),
    pytest.param(MQTTProtocolVersion.MQTTv5, id="mqtt5"),
]


@pytest.fixture
def retained(broker: Broker) -> Iterator[list[tuple[str, str, str]]]:
    """(device_id, password, topic) whose retained message is cleared after the test.

    The broker lives for the whole session: a retained Last Will left behind would reach
    every later pipeline that subscribes afresh, as a dead letter for an unknown device.
    """
    topics: list[tuple[str, str, str]] = []
    yield topics
    for device_id, password, topic in topics:
        dev = Probe(broker.port, device_id, password, device_id)
        try:
            dev.wait_connected()
            dev.publish(topic, b"", retain=True)  # an empty retained message clears it
        finally:
            dev.close()


@pytest.fixture
def home(clean_db: str, broker: Broker) -> Home:
    """A resident at site `north` with a bed sensor and a call button."""
    return seed_home(clean_db, broker.admin, site="north")


@pytest.fixture
def other_home(clean_db: str, broker: Broker, home: Home) -> Home:
    """A resident at another site, `south`."""
    return seed_home(clean_db, broker.admin, site="south", name="Other Resident")


def marker() -> bytes:
    """A unique payload to recognise one publish among everything on the broker."""
    return json.dumps({"marker": uuid.uuid4().hex}).encode()


def fresh_device(broker: Broker, site: str = "north") -> tuple[str, str]:
    """Create a broker account with BrokerAdmin.add_device; return (device_id, password)."""
    device_id = f"sec-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    with BrokerAdmin(broker.admin) as admin:
        admin.add_device(device_id, site, password)
    return device_id, password


# --- logins ------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", ["anonymous", "wrong-password", "unknown-user",
                                  "client-id-differs", "empty-password"])
def test_login_refused(broker: Broker, probes: list[Probe], protocol: MQTTProtocolVersion,
                       case: str) -> None:
    device_id, password = fresh_device(broker)
    username, pw, client_id = {
        "anonymous": (None, None, device_id),
        "wrong-password": (device_id, password + "x", device_id),
        "unknown-user": ("nobody-" + device_id, password, "nobody-" + device_id),
        "client-id-differs": (device_id, password, device_id + "-2"),
        "empty-password": (device_id, "", device_id),
    }[case]
    probe = Probe(broker.port, username, pw, client_id, protocol)
    probes.append(probe)
    assert probe.wait_refused().value == NOT_AUTHORIZED


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_device_credentials_with_own_client_id_connect(broker: Broker, probes: list[Probe],
                                                        protocol: MQTTProtocolVersion) -> None:
    device_id, password = fresh_device(broker)
    probe = Probe(broker.port, device_id, password, device_id, protocol)
    probes.append(probe)
    probe.wait_connected()


def test_seeded_device_credentials_connect(home: Home, broker: Broker,
                                           probes: list[Probe]) -> None:
    for creds in (home.bed, home.button):
        assert creds.username == creds.device_id
        probe = Probe(broker.port, creds.username, creds.password, creds.device_id)
        probes.append(probe)
        probe.wait_connected()


# --- publish ACLs --------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_device_cannot_publish_outside_its_own_topics(
        home: Home, other_home: Home, broker: Broker, probes: list[Probe],
        protocol: MQTTProtocolVersion) -> None:
    pipeline = Probe.pipeline(broker)
    probes.append(pipeline)
    assert not pipeline.subscribe(ALL_SITES_FILTER).is_failure
    bed = Probe(broker.port, home.bed.username, home.bed.password, home.bed.device_id,
                protocol)
    probes.append(bed)
    bed.wait_connected()

    forbidden = {
        "same site, other device": topic_for("north", home.button.device_id, Channel.EVENT),
        "same site, other device status": topic_for("north", home.button.device_id,
                                                    Channel.STATUS),
        "other site, other device": topic_for("south", other_home.bed.device_id,
                                              Channel.TELEMETRY),
        "own cmd": topic_for("north", home.bed.device_id, Channel.CMD),
        "other device's cmd": topic_for("north", home.button.device_id, Channel.CMD),
        "internal alert bus": "eldercare/internal/v1/alerts/north",
    }
    payload = marker()
    pubacks = {what: bed.publish(topic, payload) for what, topic in forbidden.items()}
    own = topic_for("north", home.bed.device_id, Channel.TELEMETRY)
    assert not bed.publish(own, payload).is_failure

    pipeline.wait_message(own, payload)
    assert pipeline.received(payload) == [own]
    # Not here: its own device id under another site's topic. The broker's ACL patterns
    # bind the device-id level to the username but leave the site level to the gateway,
    # which refuses it against the registry (record 0006;
    # tests/gateway/test_gateway.py, "registered to site").
    if protocol == MQTTProtocolVersion.MQTTv5:  # v5 PUBACK says so; 3.1.1 drops silently
        assert {what: code.value for what, code in pubacks.items()} == dict.fromkeys(
            forbidden, NOT_AUTHORIZED)
    else:
        assert not any(code.is_failure for code in pubacks.values())
    assert bed.connected.is_set() and not bed.disconnected.is_set()  # not kicked either


def test_device_can_publish_on_all_its_device_channels(home: Home, broker: Broker,
                                                       probes: list[Probe]) -> None:
    pipeline = Probe.pipeline(broker)
    probes.append(pipeline)
    assert not pipeline.subscribe(ALL_SITES_FILTER).is_failure
    button = Probe(broker.port, home.button.username, home.button.password,
                   home.button.device_id)
    probes.append(button)
    button.wait_connected()
    payload = marker()
    topics = [topic_for("north", home.button.device_id, ch)
              for ch in (Channel.TELEMETRY, Channel.EVENT, Channel.STATUS)]
    for topic in topics:
        button.publish(topic, payload)
    pipeline.wait_message(topics[-1], payload)
    assert pipeline.received(payload) == topics


def test_device_cannot_send_dynamic_security_commands(broker: Broker,
                                                      probes: list[Probe]) -> None:
    device_id, password = fresh_device(broker)
    dev = Probe(broker.port, device_id, password, device_id, MQTTProtocolVersion.MQTTv5)
    probes.append(dev)
    dev.wait_connected()
    evil = f"evil-{secrets.token_hex(4)}"
    command = {"commands": [{"command": "createClient", "username": evil, "password": "pw",
                             "roles": [{"rolename": "admin"}]}]}
    assert dev.publish("$CONTROL/dynamic-security/v1",
                       json.dumps(command).encode()).value == NOT_AUTHORIZED
    # The PUBACK came after the broker handled the publish: had it run, the account exists.
    attempt = Probe(broker.port, evil, "pw", evil)
    probes.append(attempt)
    assert attempt.wait_refused().value == NOT_AUTHORIZED


def test_service_account_uses_the_internal_alert_bus(broker: Broker,
                                                     probes: list[Probe]) -> None:
    with BrokerAdmin(broker.admin) as admin:  # re-applying the role is harmless
        admin.ensure_service_account(broker.pipeline.username or "",
                                     broker.pipeline.password or "")
    listener = Probe.pipeline(broker)
    probes.append(listener)
    assert not listener.subscribe("eldercare/internal/v1/alerts/+").is_failure
    talker = Probe.pipeline(broker)
    probes.append(talker)
    payload = marker()
    topic = "eldercare/internal/v1/alerts/north"
    assert not talker.publish(topic, payload).is_failure
    listener.wait_message(topic, payload)


# --- subscribe ACLs -----------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_device_cannot_subscribe_outside_its_own_cmd(
        home: Home, other_home: Home, broker: Broker, probes: list[Probe],
        protocol: MQTTProtocolVersion) -> None:
    bed = Probe(broker.port, home.bed.username, home.bed.password, home.bed.device_id,
                protocol)
    probes.append(bed)
    bed.wait_connected()
    own_prefix = f"eldercare/v1/north/{home.bed.device_id}"
    denied = [
        topic_for("north", home.button.device_id, Channel.CMD),
        topic_for("south", other_home.bed.device_id, Channel.CMD),
        "eldercare/v1/#",
        "eldercare/v1/north/+/cmd",
        "eldercare/v1/+/+/+",
        f"{own_prefix}/+",
        f"{own_prefix}/#",
        f"{own_prefix}/telemetry",
        topic_for("north", home.button.device_id, Channel.EVENT),
        "#",
        "$SYS/#",
        "$CONTROL/dynamic-security/v1/response",
        "eldercare/internal/#",
        "eldercare/internal/v1/alerts/north",
    ]
    # With the broker's acl_file loaded (device accounts, record 0006), Mosquitto 2.0 grants
    # every SUBSCRIBE and checks `read` on each delivery instead: the property is that
    # nothing outside the device's own cmd topic ever reaches it.
    for f in denied:
        bed.subscribe(f)
    own_cmd = topic_for("north", home.bed.device_id, Channel.CMD)
    assert bed.subscribe(own_cmd).value == 1  # granted QoS 1
    pipeline = Probe.pipeline(broker)
    probes.append(pipeline)
    for topic in (topic_for("north", home.button.device_id, Channel.CMD),
                  topic_for("south", other_home.bed.device_id, Channel.CMD),
                  "eldercare/internal/v1/alerts/north"):
        assert not pipeline.publish(topic, marker()).is_failure
    assert not pipeline.publish(own_cmd, b"own").is_failure
    bed.wait_message(own_cmd)
    # (overlapping filters may deliver the own command more than once)
    assert {m.topic for m in bed.messages} == {own_cmd}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_device_receives_its_own_commands_only(home: Home, broker: Broker,
                                               probes: list[Probe],
                                               protocol: MQTTProtocolVersion) -> None:
    bed = Probe(broker.port, home.bed.username, home.bed.password, home.bed.device_id,
                protocol)
    button = Probe(broker.port, home.button.username, home.button.password,
                   home.button.device_id, protocol)
    probes.extend([bed, button])
    for dev, device_id in ((bed, home.bed.device_id), (button, home.button.device_id)):
        dev.wait_connected()
        assert dev.subscribe(topic_for("north", device_id, Channel.CMD)).value == 1
    pipeline = Probe.pipeline(broker)
    probes.append(pipeline)

    now = datetime.now(UTC).replace(microsecond=0)
    ack_bed = SosAckCommand(ts=now, alert_id=101, message="Nurse on the way")
    ack_button = SosAckCommand(ts=now, alert_id=102)
    bed_cmd = topic_for("north", home.bed.device_id, Channel.CMD)
    button_cmd = topic_for("north", home.button.device_id, Channel.CMD)
    assert not pipeline.publish(bed_cmd, encode(ack_bed)).is_failure
    assert not pipeline.publish(button_cmd, encode(ack_button)).is_failure

    assert decode_command(bytes(bed.wait_message(bed_cmd).payload)) == ack_bed
    assert decode_command(bytes(button.wait_message(button_cmd).payload)) == ack_button
    # The bed's command was routed before the button's: the button never saw it.
    assert [m.topic for m in button.messages] == [button_cmd]


# --- Last Will ----------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_retained_last_will_on_own_status_topic(
        broker: Broker, probes: list[Probe], retained: list[tuple[str, str, str]],
        protocol: MQTTProtocolVersion) -> None:
    device_id, password = fresh_device(broker)
    status = topic_for("north", device_id, Channel.STATUS)
    retained.append((device_id, password, status))
    pipeline = Probe.pipeline(broker)
    probes.append(pipeline)
    assert not pipeline.subscribe(ALL_SITES_FILTER).is_failure
    dev = Probe(broker.port, device_id, password, device_id, protocol, will_topic=status)
    dev.wait_connected()
    dev.drop_connection()

    will = pipeline.wait_message(status, LAST_WILL_PAYLOAD)
    assert decode_status(bytes(will.payload)) == DeviceStatus(online=False)
    # Retained: whoever subscribes later (a restarted dashboard) learns it at once.
    late = Probe.pipeline(broker)
    probes.append(late)
    assert not late.subscribe(status).is_failure
    assert late.wait_message(status, LAST_WILL_PAYLOAD).retain


def test_last_will_on_another_devices_topic_is_discarded(
        broker: Broker, probes: list[Probe], retained: list[tuple[str, str, str]]) -> None:
    device_id, password = fresh_device(broker)
    victim, victim_password = fresh_device(broker)
    own = topic_for("north", device_id, Channel.STATUS)
    spoofed = topic_for("north", victim, Channel.STATUS)
    retained.extend([(device_id, password, own), (victim, victim_password, spoofed)])
    pipeline = Probe.pipeline(broker)
    probes.append(pipeline)
    assert not pipeline.subscribe(ALL_SITES_FILTER).is_failure

    liar = Probe(broker.port, device_id, password, device_id, will_topic=spoofed)
    liar.wait_connected()  # the broker does not refuse the login...
    liar.drop_connection()
    # Same client id again: the broker finishes the first session (will and all) before it
    # accepts this one, so its will is published strictly after the first one's would be.
    honest = Probe(broker.port, device_id, password, device_id, will_topic=own)
    honest.wait_connected()
    honest.drop_connection()

    pipeline.wait_message(own, LAST_WILL_PAYLOAD)
    assert spoofed not in pipeline.received(LAST_WILL_PAYLOAD)  # ...it drops the will


# --- live account changes -------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_revoked_device_is_disconnected_and_cannot_reconnect(
        broker: Broker, probes: list[Probe], protocol: MQTTProtocolVersion) -> None:
    device_id, password = fresh_device(broker)
    dev = Probe(broker.port, device_id, password, device_id, protocol)
    probes.append(dev)
    dev.wait_connected()

    with BrokerAdmin(broker.admin) as admin:
        admin.remove_device(device_id)

    assert dev.disconnected.wait(TIMEOUT), "revoked device was not disconnected"
    assert dev.disconnect_reason is not None and dev.disconnect_reason.is_failure
    if protocol == MQTTProtocolVersion.MQTTv5:
        assert dev.disconnect_reason.value == 0x98  # Administrative action
    again = Probe(broker.port, device_id, password, device_id, protocol)
    probes.append(again)
    assert again.wait_refused().value == NOT_AUTHORIZED


def test_revoked_device_automatic_reconnect_is_refused(broker: Broker,
                                                          probes: list[Probe]) -> None:
    device_id, password = fresh_device(broker)
    dev = Probe(broker.port, device_id, password, device_id)
    probes.append(dev)
    dev.wait_connected()
    with BrokerAdmin(broker.admin) as admin:
        admin.remove_device(device_id)
    assert dev.disconnected.wait(TIMEOUT)
    # paho keeps retrying in the background; every retry is refused.
    assert dev.refused.wait(TIMEOUT), "automatic reconnect was not refused"


def test_device_added_live_can_connect_and_publish_at_once(broker: Broker,
                                                           probes: list[Probe]) -> None:
    pipeline = Probe.pipeline(broker)
    probes.append(pipeline)
    assert not pipeline.subscribe(ALL_SITES_FILTER).is_failure
    device_id, password = fresh_device(broker, site="east")
    dev = Probe(broker.port, device_id, password, device_id)
    probes.append(dev)
    dev.wait_connected()
    topic = topic_for("east", device_id, Channel.EVENT)
    payload = marker()
    dev.publish(topic, payload)
    pipeline.wait_message(topic, payload)  # no broker restart: it arrives within TIMEOUT


def test_re_adding_a_device_replaces_its_password(broker: Broker, probes: list[Probe]) -> None:
    device_id, old_password = fresh_device(broker)
    new_password = secrets.token_urlsafe(12)
    with BrokerAdmin(broker.admin) as admin:
        admin.add_device(device_id, "north", new_password)
    old = Probe(broker.port, device_id, old_password, device_id)
    probes.append(old)
    assert old.wait_refused().value == NOT_AUTHORIZED
    new = Probe(broker.port, device_id, new_password, device_id)
    probes.append(new)
    new.wait_connected()


"""End to end on real services: an SOS or fall in a malformed message is dead-lettered for
the integrator AND raised as a critical alert, confirmed to the device, and its repeats open
nothing new (docs/protocol.md, "Invalid messages"; docs/alerts.md, sos row)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from eldercare.pipeline import Pipeline
from gateway.schema import Channel, topic_for
from kernel import db
from tests.support.database import count
from tests.support.devices import RawDevice, forget_device
from tests.support.homes import Home, seed_home
from tests.support.pipeline import running_pipeline
from tests.support.services import Broker
from tests.support.wait import wait_until


def local_ts() -> str:
    """A current device time in the +08:00 zone, seconds precision, as firmware writes it."""
    return datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M:%S+08:00")


# Each form fails strict validation; the alarm in it must still reach staff.
FORMS = {
    "offset without colon": lambda: {"ts": local_ts().replace("+08:00", "+0800"),
                                     "type": "sos"},
    "hour-only offset": lambda: {"ts": local_ts().replace("+08:00", "+08"), "type": "sos"},
    "no seconds": lambda: {"ts": local_ts()[:16] + "+08:00", "type": "sos"},
    "surrounding spaces": lambda: {"ts": f" {local_ts()} ", "type": "sos"},
    "unknown field": lambda: {"ts": local_ts(), "type": "sos", "battery": 80},
    "fall, no seconds": lambda: {"ts": local_ts()[:16] + "+08:00", "type": "fall"},
}


@pytest.fixture
def home(clean_db: str, broker: Broker) -> Iterator[Home]:
    home = seed_home(clean_db, broker.admin)
    yield home
    forget_device(home.button, broker.port)


@pytest.fixture
def pipeline(clean_db: str, broker: Broker, home: Home) -> Iterator[Pipeline]:
    with running_pipeline(broker.pipeline, clean_db, prefix="rescue") as p:
        yield p


@pytest.fixture
def button(home: Home, broker: Broker) -> Iterator[RawDevice]:
    """The call button, subscribed to its `cmd` topic (it gets the alarm receipts)."""
    dev = RawDevice(home.button, broker.port)
    wait_until(dev.connected.is_set, what="button connected")
    subscribed = threading.Event()
    dev.client.on_subscribe = lambda *args: subscribed.set()
    dev.client.subscribe(topic_for(home.site, home.button.device_id, Channel.CMD), qos=1)
    wait_until(subscribed.is_set, what="cmd subscription")
    yield dev
    dev.close()


def receipts(dev: RawDevice, seq: int) -> int:
    """`alarm_received` commands the device got for alarm `seq`."""
    bodies = [json.loads(m.payload) for m in list(dev.messages)]
    return sum(1 for b in bodies if b.get("type") == "alarm_received" and b.get("seq") == seq)


def alerts(url: str, resident_id: int) -> list[tuple[str, str, int, int, str]]:
    """(type, severity, source_seq, count, detail) of a resident's alerts."""
    with db.connect(url, autocommit=True) as conn:
        return [(str(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4])) for r in conn.execute(
            "SELECT type, severity, source_seq, count, details->>'detail' FROM alerts "
            "WHERE resident_id = %s ORDER BY id", (resident_id,)).fetchall()]


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_a_malformed_alarm_opens_one_critical_alert_and_leaves_a_dead_letter(
        pipeline: Pipeline, home: Home, clean_db: str, button: RawDevice, form) -> None:
    body = {**form(), "seq": 41}
    payload = json.dumps(body).encode()
    button.publish(Channel.EVENT, payload)
    wait_until(lambda: receipts(button, 41) == 1, timeout=30, what="the alarm's receipt")
    # The receipt is sent after storage: the alert and the dead letter are committed.
    (opened,) = alerts(clean_db, home.resident_id)
    assert opened[:4] == (body["type"], "critical", 41, 1)
    assert opened[4].startswith("rescued from a malformed message: ")
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM dead_letters WHERE payload = %s",
                             payload) == 1, what="the original dead-lettered")

    button.publish(Channel.EVENT, payload)  # the device repeats it: receipt lost or late
    wait_until(lambda: receipts(button, 41) == 2, timeout=30, what="the repeat answered")
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM dead_letters") == 2,
               what="the repeat dead-lettered")
    assert alerts(clean_db, home.resident_id) == [opened]  # no second alert, no press counted


def test_ambiguous_or_non_alarm_events_are_only_dead_lettered(
        pipeline: Pipeline, home: Home, clean_db: str, broker: Broker,
        button: RawDevice) -> None:
    bad_ts = local_ts()[:16] + "+08:00"
    button.publish(Channel.EVENT,
                   b'{"ts":"%s","seq":1,"type":"test","type":"sos"}' % bad_ts.encode())
    button.publish(Channel.EVENT, json.dumps({"ts": bad_ts, "seq": 2, "type": "test"}).encode())
    button.publish(Channel.EVENT, json.dumps({"ts": bad_ts, "seq": 3,
                                              "type": "low_battery"}).encode())
    bed = RawDevice(home.bed, broker.port)
    wait_until(bed.connected.is_set, what="bed connected")
    bed.publish(Channel.EVENT, json.dumps({"ts": bad_ts, "seq": 4, "type": "sos"}).encode())
    bed.close()
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM dead_letters") == 4,
               timeout=30, what="4 dead letters")
    # A valid event after them, from the same button: once it is stored, all before it were
    # handled, and none of them left an event or an alert.
    button.publish(Channel.EVENT, json.dumps({"ts": local_ts(), "seq": 5,
                                              "type": "tamper"}).encode())
    wait_until(lambda: count(clean_db, "SELECT count(*) FROM device_events") == 1,
               timeout=30, what="the valid event stored")
    assert count(clean_db, "SELECT count(*) FROM device_events WHERE seq <> 5") == 0
    assert count(clean_db, "SELECT count(*) FROM alerts WHERE type IN ('sos', 'fall')") == 0

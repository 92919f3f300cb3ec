"""The rule seam (`alerts.rules`): the detector is built from a list of rules behind one
protocol, so a new rule plugs in as one more entry, with its own state in the snapshot.
Decisions carry the vocabulary's enums. No broker, no database."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from alerts.detector import Detector, ResidentDetector
from alerts.model import AlertTrigger, AlertType, Severity
from alerts.rules import DEFAULT_RULES, RuleBase
from alerts.rules.state import DeviceState, ResidentState
from gateway.records import Record, TelemetryRecord
from gateway.schema import EventType
from tests.support.detector import BED, BTN, RID, SITE, Feed, at, context, run, triggers


class HighReadings(RuleBase):
    """A plug-in rule: counts in-bed readings at or above 100 bpm and, at the third, raises
    heart_rate_high (warning); it also records each hook it was called with."""

    name = "high_readings"
    consumes = frozenset({TelemetryRecord})

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def on_record(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        assert type(rec) is TelemetryRecord
        self.calls.append(("record", dev.device_id))
        if rec.heart_rate is None or rec.heart_rate < 100:
            return
        count = dev.extra.get(self.name, 0) + 1
        dev.extra[self.name] = count
        if count == 3:
            rs.em.trigger(dev, AlertType.HEART_RATE_HIGH, Severity.WARNING, t,
                          {"source": self.name})

    def on_tick(self, rs: ResidentState, dev: DeviceState, now: float | None,
                wall_now: datetime) -> None:
        self.calls.append(("tick", dev.device_id))

    def dump(self, dev: DeviceState) -> dict[str, Any]:
        return {self.name: dev.extra.get(self.name, 0)}

    def load(self, dev: DeviceState, d: dict[str, Any]) -> None:
        dev.extra[self.name] = int(d.get(self.name, 0))


def test_a_plugged_in_rule_gets_its_records_and_ticks_after_the_default_rules() -> None:
    rule = HighReadings()
    det = ResidentDetector(context(), rules=(*DEFAULT_RULES, rule))
    feed = Feed()
    out = run(det, [feed.event(at(0), EventType.SOS), feed.status(at(1), device=BTN),
                    *(feed.reading(at(2 + i), hr=120.0) for i in range(3))])
    assert [(t.type, t.severity, t.device_id) for t in triggers(out)] == [
        (AlertType.SOS, Severity.CRITICAL, BTN),
        (AlertType.HEART_RATE_HIGH, Severity.WARNING, BED)]
    assert rule.calls == [("record", BED)] * 3  # telemetry only: not the event, the status
    det.tick(at(10))
    assert sorted(rule.calls[3:]) == [("tick", BED), ("tick", BTN)]


def test_a_plugged_in_rules_state_is_saved_and_restored_with_the_residents() -> None:
    rules = (*DEFAULT_RULES, HighReadings())
    feed = Feed()
    det = ResidentDetector(context(), rules=rules)
    run(det, [feed.reading(at(0), hr=120.0), feed.reading(at(1), hr=120.0)])
    state = json.loads(json.dumps(det.snapshot(), allow_nan=False))
    assert state["devices"][BED]["high_readings"] == 2
    again = Detector(lambda rid: context() if rid == RID else None, {RID: state}, rules)
    [trig] = triggers(again.process([feed.reading(at(2), hr=120.0)]))
    assert (trig.type, trig.details) == (AlertType.HEART_RATE_HIGH, {"source": "high_readings"})


def test_the_default_rules_keep_the_stored_state_format() -> None:
    """`detector_state` rows saved by earlier versions load, and new ones look the same."""
    feed = Feed()
    det = ResidentDetector(context())
    run(det, [feed.reading(at(0)), feed.event(at(1), EventType.SOS)])
    devices = det.snapshot()["devices"]
    assert set(devices[BED]) == set(devices[BTN]) == {
        "kind", "hb", "seen_t", "seen_recv", "open", "batt_last", "batt_t", "batt_ok_t",
        "test_anchor",
        "test_src", "sos_times", "recent", "bed", "off_at", "will_recv", "data_t", "ev_t"}
    assert set(devices[BED]["bed"]) == {
        "tel_t", "cap_until", "occupied", "occ_since", "out_since", "session_occ", "exit_due",
        "absence_due", "not_up_due", "hr", "rr", "apnea"}


def test_decisions_carry_the_vocabularys_enums_with_unchanged_values() -> None:
    feed = Feed()
    det = ResidentDetector(context())
    [trig] = run(det, [feed.event(at(0), EventType.FALL)])
    assert isinstance(trig, AlertTrigger)
    assert type(trig.type) is AlertType and type(trig.severity) is Severity
    assert (trig.type, trig.severity, trig.site) == ("fall", "critical", SITE)
    open_ = ResidentDetector(context())
    run(open_, [feed.status(at(0), battery=5)])
    assert json.loads(json.dumps(open_.snapshot()))["devices"][BED]["open"] == {
        "low_battery": "info"}

"""`--e2e-sample N`: N residents x 1 day through the real path, compared with the direct run.

The sample's devices are registered in the database and on the broker, a real pipeline
(`eldercare.pipeline.Pipeline`: gateway, ingest, alert engine and store) serves their site,
and the simulator's engine (`simulators.engine.Engine`) replays the very actions of the
direct run over MQTT, as fast as the broker takes them (device clocks in simulated time).
The alerts the pipeline stored are then compared with the alerts the direct run stores
(`eldercare.evaluation.runner.run_resident`, as configured), by type and opening time.

Device clocks must be plausible to the platform (not in the future, within the raw
retention), so the sample's day is the day before yesterday of `now`, with the cohort's
seed, zone and telemetry period: the same spec, a recent day. The pipeline runs on a clock
stopped at that `now` (`replay_clock`), not on the wall clock: the sample gives the same
result at any date and however fast the machine replays.

The replay is held at each device event and connection change until the pipeline has taken
everything before it (`_in_step`), so its two MQTT sessions stay in event-time order. The
stored alerts are read once the pipeline has provably finished (`_wait_done`): a
barrier message on each of its MQTT sessions, sent after every device message, is taken,
and its alert engine has stored every decision (`AlertEngine.settled`).
"""

from __future__ import annotations

import argparse
import heapq
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.config import AlertSettings
from eldercare.embedded import wait_for
from eldercare.evaluation.runner import run_resident
from eldercare.evaluation.variants import variants
from eldercare.pipeline import Pipeline
from gateway.broker_admin import BrokerAdmin
from gateway.mqttclient import service_client
from gateway.provisioning import DeviceCredentials, add_device
from gateway.schema import Channel, DeviceType, topic_for
from kernel import db
from kernel.endpoint import MqttEndpoint
from kernel.sites import add_resident, add_site
from simulators.clock import ManualClock
from simulators.cohort import HEARTBEAT_S, CohortSpec, Resident, build_resident, home_actions
from simulators.engine import Engine
from simulators.timeline import Action, ActionKind
from simulators.wire import wait_published

logger = logging.getLogger(__name__)

AlertKey = tuple[str, str]  # alert type, opening time (ISO 8601 UTC, milliseconds)
TIMEOUT_S = 600.0
BARRIER_PAYLOAD = b"end of the end-to-end sample"  # not JSON: dead-lettered, in order
WILL_SLACK = timedelta(minutes=15)  # see SampleResult.will_stamped


@dataclass
class SampleResult:
    """The two runs' alerts per cohort resident, and how the replay went."""

    spec: CohortSpec
    direct: dict[int, list[AlertKey]]
    e2e: dict[int, list[AlertKey]]
    wall_s: float = 0.0
    messages: int = 0
    notes: list[str] = field(default_factory=list)

    def differences(self) -> list[str]:
        """Every alert one run stored and the other did not (`will_stamped` aside)."""
        out: list[str] = []
        for rid in sorted(self.direct):
            a, b = self._unmatched(rid)
            out += [f"resident {rid}: {t} at {at} only in the direct run" for t, at in a]
            out += [f"resident {rid}: {t} at {at} only through MQTT" for t, at in b]
        return out

    def will_stamped(self) -> list[str]:
        """device_offline alerts opened by a Last Will, earlier through MQTT than in the
        direct run by at most `WILL_SLACK`: the platform puts a Last Will on the device's
        event-time clock (the last record it has processed from the device plus the time
        since on the pipeline's clock, which stands still in the sample: `replay_clock`),
        possibly before it has processed all of them, where a live system (the direct run)
        has the real silence."""
        out = []
        for rid in sorted(self.direct):
            a, b = set(self.direct[rid]), set(self.e2e.get(rid, []))
            for pair in _will_pairs(sorted(a - b), sorted(b - a)):
                out.append(f"resident {rid}: device_offline at {pair[0]} (direct) and "
                           f"{pair[1]} (MQTT)")
        return out

    def _unmatched(self, rid: int) -> tuple[list[AlertKey], list[AlertKey]]:
        a, b = set(self.direct[rid]), set(self.e2e.get(rid, []))
        only_a, only_b = sorted(a - b), sorted(b - a)
        for x, y in _will_pairs(only_a, only_b):
            only_a.remove(("device_offline", x))
            only_b.remove(("device_offline", y))
        return only_a, only_b

    @property
    def same(self) -> bool:
        """True when both runs stored the same alerts."""
        return not self.differences()

    def lines(self) -> list[str]:
        """The report's section body."""
        n = sum(len(v) for v in self.direct.values())
        first = self.spec.start.astimezone(ZoneInfo(self.spec.timezone))
        out = [f"{len(self.direct)} resident(s) x {self.spec.days} day from "
               f"{first:%Y-%m-%d %H:%M} ({self.spec.timezone}): {self.messages:,} MQTT "
               f"messages replayed in {self.wall_s:.0f} s; {n} alert(s) in the direct run, "
               f"{sum(len(v) for v in self.e2e.values())} stored by the pipeline.", ""]
        diffs = self.differences()
        if not diffs:
            out.append("**Same decisions**: every alert (type and opening time) is the same "
                       "in both runs.")
        else:
            out.append(f"**{len(diffs)} difference(s)**:")
            out += [f"- {d}" for d in diffs]
        wills = self.will_stamped()
        if wills:
            out += ["", "Not counted as differences: device_offline opened by a Last Will, "
                    "stamped through MQTT at a record the pipeline had processed from the "
                    "device before the will arrived, and at the disconnection itself in the "
                    "direct run (the replay's clock stands still between a device's last "
                    "records and its will; a live system has the real silence): "
                    + "; ".join(wills) + "."]
        return out + [f"- note: {n}" for n in self.notes]


def _will_pairs(a: list[AlertKey], b: list[AlertKey]) -> list[tuple[str, str]]:
    """device_offline times of `a` (direct) and `b` (MQTT) pairing up: the MQTT one (a
    record heard before) no later than the direct one (the disconnection), by at most
    `WILL_SLACK`."""
    pairs: list[tuple[str, str]] = []
    taken: set[str] = set()
    for t, x in a:
        if t != "device_offline":
            continue
        tx = datetime.fromisoformat(x)
        for u, y in b:
            if u == t and y not in taken and (
                    timedelta(0) <= tx - datetime.fromisoformat(y) <= WILL_SLACK):
                pairs.append((x, y))
                taken.add(y)
                break
    return pairs


def sample_spec(spec: CohortSpec, now: datetime) -> CohortSpec:
    """The cohort's spec on one recent day (the day before yesterday, local)."""
    today = now.astimezone(ZoneInfo(spec.timezone)).date()
    return replace(spec, days=1, first_day=today - timedelta(days=2))


def direct_alerts(residents: Sequence[Resident], spec: CohortSpec, settings: AlertSettings,
                  tag: str) -> dict[int, list[AlertKey]]:
    """The direct run's stored alerts (as configured) of each resident, with nobody
    resolving alerts (the sample's database has no care worker either)."""
    default = variants(settings)[0]
    out: dict[int, list[AlertKey]] = {}
    for r in residents:
        run = run_resident(r, spec, [default], resolve_after_s=math.inf,
                           registered={d: _device_id(tag, d) for d in r.home.devices})
        out[r.resident_id] = sorted((a.type, alert_key(a.at)) for a in run.alerts[default.name])
    return out


def alert_key(at: datetime) -> str:
    """An opening time as the runs are compared: ISO 8601 UTC, to the millisecond."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def replay_clock(now: datetime) -> Callable[[], datetime]:
    """The sample pipeline's clock: `now`, standing still.

    What the pipeline does with its clock must not depend on how fast this machine replays
    a day. It stamps each message's receipt (the gateway's retention and future checks, so
    a fixed `now` keeps the sample day plausible at any real date) and puts a Last Will on
    the device's event-time clock: its last record plus the wall time since that record
    arrived. A live system's wall time since is the real silence; an accelerated replay has
    almost none, and a loaded machine a random few seconds, which could push the will past
    the disconnection in event time. Standing still, the will lands exactly on the last
    record the pipeline processed from the device (never later than the disconnection), and
    the alert engine's ticks see each device at its last record, as the replay left it:
    time-based rules move on records only, never on how long the machine took."""
    return lambda: now


def compare_sample(database_url: str, admin: MqttEndpoint, pipeline: MqttEndpoint,
                   spec: CohortSpec, resident_ids: Sequence[int], *, tag: str,
                   now: datetime, settings: AlertSettings | None = None,
                   timeout: float = TIMEOUT_S,
                   clock: Callable[[], float] = time.monotonic) -> SampleResult:
    """Replay the residents' day through MQTT and the pipeline (on `replay_clock(now)`);
    compare with the direct run. `tag` makes the site and device ids unique in that
    database; `now` is when the pipeline receives the messages (after `spec`'s day)."""
    settings = settings or AlertSettings()
    residents = [build_resident(spec, rid) for rid in resident_ids]
    t0 = clock()
    e2e, messages = replay(database_url, admin, pipeline, spec, residents, tag=tag,
                           settings=settings, timeout=timeout, now=now)
    wall = clock() - t0
    return SampleResult(spec, direct_alerts(residents, spec, settings, tag), e2e, wall,
                        messages)


def replay(database_url: str, admin: MqttEndpoint, endpoint: MqttEndpoint, spec: CohortSpec,
           residents: Sequence[Resident], *, tag: str, settings: AlertSettings,
           timeout: float, now: datetime) -> tuple[dict[int, list[AlertKey]], int]:
    """The residents' actions through a real pipeline (on `replay_clock(now)`); the alerts
    it stored per cohort resident, and the messages sent."""
    site = f"eval-{tag}"
    creds, ids = _register(database_url, admin, site, spec, residents, tag)
    barrier = _Barrier(_device_id(tag, "barrier"), site)
    with BrokerAdmin(admin) as ba:
        ba.add_device(barrier.device_id, site, barrier.password)
    pipe = Pipeline(endpoint, database_url, [site], name=f"eval-{tag}", batch_ms=50,
                    alert_settings=settings, clock=replay_clock(now))
    engine = Engine(creds, endpoint.host, endpoint.port, clock=ManualClock(spec.start),
                    seed=spec.seed, heartbeat_s=HEARTBEAT_S,
                    resident_tz=ZoneInfo(spec.timezone))
    pipe.start()
    try:
        wait_for(pipe.connected.is_set, timeout, "the pipeline to connect")
        barrier.send(endpoint, timeout)  # taken: both subscriptions are live at the broker
        wait_for(lambda: barrier.taken(database_url), timeout,
                 "the pipeline's subscriptions to be live", interval=0.2)
        if engine.connect(timeout) < len(engine.devices):
            raise RuntimeError("not every sample device could connect to the broker")
        stats = engine.replay(_in_step(_actions(residents, spec, tag), engine, pipe,
                                       barrier, timeout), threading.Event(), pace=None)
        if not engine.drain(timeout):
            raise RuntimeError("the broker did not take every message of the sample")
        barrier.send(endpoint, timeout)
        _wait_done(database_url, pipe, list(ids.values()), stats.readings, barrier, timeout)
        return _stored(database_url, ids), sum(engine.messages().values())
    finally:
        pipe.stop()
        engine.close()
        with BrokerAdmin(admin) as ba:
            ba.remove_device(barrier.device_id)


@dataclass
class _Barrier:
    """A broker account the platform does not know, sending one message per pipeline session
    (telemetry: readings and status; event: device events) that the pipeline dead-letters
    (unknown device) once it has taken every message before it on that session.

    Sent before the devices connect, its dead letters prove the pipeline's subscriptions are
    live at the broker (`Pipeline.connected` is set when they are sent, not granted: a
    device's first messages could otherwise go to nobody). Sent after the replay: the broker
    routes a QoS 1 message into the pipeline's session queues before it acknowledges it, so
    once every device message was acknowledged (`Engine.drain`), the barrier's come after
    all of them on both sessions; its dead letters stored = every device message went
    through the gateway and the detector."""

    device_id: str
    site: str
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    sent: int = 0  # rounds sent

    @property
    def topics(self) -> list[str]:
        return [topic_for(self.site, self.device_id, ch)
                for ch in (Channel.TELEMETRY, Channel.EVENT)]

    def send(self, endpoint: MqttEndpoint, timeout: float) -> None:
        account = MqttEndpoint(endpoint.host, endpoint.port, self.device_id, self.password)
        client = service_client(account, self.device_id)
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        try:
            infos = [client.publish(t, BARRIER_PAYLOAD, qos=1) for t in self.topics]
            if not all(wait_published(i, timeout) for i in infos):
                raise RuntimeError("the broker did not take the sample's barrier messages")
            self.sent += 1
        finally:
            client.disconnect()
            client.loop_stop()

    def taken(self, database_url: str) -> bool:
        """True once the pipeline has dead-lettered every barrier message sent."""
        with db.connect(database_url, autocommit=True) as conn:
            return _count(conn, "SELECT count(*) FROM dead_letters WHERE topic = ANY(%s)",
                          (self.topics,)) >= self.sent * len(self.topics)


def _in_step(actions: Iterator[Action], engine: Engine, pipe: Pipeline, barrier: _Barrier,
             timeout: float) -> Iterator[Action]:
    """The actions, held at each device event and connection change until the pipeline has
    taken every message sent before, and after it (or after any action that made the device
    send an event) until the pipeline has taken it.

    Events travel on their own MQTT session (readings and status on the other), which the
    pipeline takes on its own thread; at replay speed a few milliseconds of scheduling put
    one session minutes of event time ahead of the other, and a rule that keeps only the
    newest report across both (`low_battery`) would then decide by the machine's load.
    A live system's sessions are never minutes apart: holding the replay at events keeps
    them in event-time order, as the direct run takes them. Taken: every device message
    acknowledged by the broker, except those a dropped device could not get acknowledged
    before it went offline (resent when it is back), plus the Last Wills so far and the
    barrier's, received by the pipeline and through its detector (or dead-lettered)."""
    wills = 0
    stuck: dict[str, int] = {}  # device -> messages unacknowledged when it dropped

    def received_all() -> bool:
        return (pipe.received
                >= engine.loop.acked + wills + barrier.sent * len(barrier.topics))

    def caught_up() -> bool:
        received = pipe.received
        return (engine.loop.inflight <= sum(stuck.values()) and received_all()
                and pipe.alerts.taken + pipe.dead_letters >= received)

    def hold(until: Callable[[], bool] = caught_up) -> None:
        if not engine.loop.run_until(until, timeout):
            raise RuntimeError(f"the pipeline did not take the sample's messages in {timeout} s "
                               f"(received {pipe.received}, taken {pipe.alerts.taken}, "
                               f"acknowledged by the broker {engine.loop.acked}, "
                               f"in flight {engine.loop.inflight})")

    def events_sent(device_id: str) -> int:
        sent = engine.devices[device_id].sent
        return sum(n for kind, n in sent.items() if kind.startswith("event:"))

    for a in actions:
        step = a.kind in (ActionKind.EVENT, ActionKind.OFFLINE, ActionKind.ONLINE)
        if step:
            hold()
        before = events_sent(a.device_id)
        yield a
        # a status can make the device send an event too (its low_battery warning)
        step = step or events_sent(a.device_id) > before
        if a.kind is ActionKind.OFFLINE:
            wills += 1  # the broker publishes the device's Last Will
            stuck[a.device_id] = 0
            hold(received_all)  # its will is in: nothing more of it will be acknowledged
            stuck[a.device_id] = engine.loop.inflight - sum(stuck.values())
        elif a.kind is ActionKind.ONLINE:
            stuck.pop(a.device_id, None)
        if step:
            hold()


def _device_id(tag: str, device_id: str) -> str:
    return f"{tag}-{device_id}"


def _register(database_url: str, admin: MqttEndpoint, site: str, spec: CohortSpec,
              residents: Sequence[Resident], tag: str
              ) -> tuple[list[DeviceCredentials], dict[int, int]]:
    """The sample's site, residents and devices (with broker accounts); cohort id -> id."""
    creds: list[DeviceCredentials] = []
    ids: dict[int, int] = {}
    with db.connect(database_url) as conn, BrokerAdmin(admin) as ba:
        add_site(conn, site, "Evaluation sample", spec.timezone)
        for r in residents:
            ids[r.resident_id] = add_resident(conn, site, f"Sample resident {r.resident_id}")
        conn.commit()
        for r in residents:
            for device_id, typ in ((r.bed, DeviceType.BED_SENSOR),
                                   (r.button, DeviceType.CALL_BUTTON)):
                creds.append(add_device(conn, ba, admin, ids[r.resident_id], typ,
                                        _device_id(tag, device_id)))
    return creds, ids


def _actions(residents: Sequence[Resident], spec: CohortSpec, tag: str) -> Iterator[Action]:
    """Every home's actions, merged in time order, on the registered device ids."""
    streams = [(a._replace(device_id=_device_id(tag, a.device_id))
                for a in home_actions(r, spec)) for r in residents]
    return heapq.merge(*streams, key=lambda a: a.t)


def _count(conn: Any, sql: str, params: tuple[Any, ...]) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _wait_done(database_url: str, pipe: Pipeline, resident_ids: list[int], readings: int,
               barrier: _Barrier, timeout: float) -> None:
    """Until the pipeline has provably finished the sample: every reading stored, the
    barrier taken on both sessions (every device message went through the detector before
    it), and every decision the alert engine made stored. No quiet period is assumed: on a
    loaded machine the worker may be behind by any time, and this waits for it (up to
    `timeout`)."""
    with db.connect(database_url, autocommit=True) as conn:
        wait_for(lambda: _count(conn, "SELECT count(*) FROM bed_telemetry "
                                      "WHERE resident_id = ANY(%s)",
                                (resident_ids,)) >= readings,
                 timeout, "every reading of the sample to be stored")
    wait_for(lambda: barrier.taken(database_url), timeout,
             "the pipeline to take every message of the sample", interval=0.2)
    wait_for(lambda: pipe.alerts.settled and pipe.parked == 0, timeout,
             "the sample's alerts to be stored")


def _stored(database_url: str, ids: dict[int, int]) -> dict[int, list[AlertKey]]:
    back = {v: k for k, v in ids.items()}
    out: dict[int, list[AlertKey]] = {rid: [] for rid in ids}
    with db.connect(database_url, autocommit=True) as conn:
        rows: list[tuple[Any, ...]] = conn.execute(
            "SELECT resident_id, type, opened_at FROM alerts WHERE resident_id = ANY(%s)",
            (list(back),)).fetchall()
        for rid, typ, opened in rows:
            out[back[int(rid)]].append((str(typ), alert_key(opened)))
    return {rid: sorted(v) for rid, v in out.items()}


def run_sample(args: argparse.Namespace, spec: CohortSpec, n: int,
               now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> SampleResult:
    """`eldercare eval --e2e-sample N`: the embedded services as `eldercare demo` starts
    them (or the configured ones), residents 1..N of the cohort."""
    from eldercare.run import prepare_services, settings_for

    settings = settings_for(args)
    rt, services = prepare_services(settings)
    try:
        at = now()
        return compare_sample(rt.database_url, rt.mqtt_admin, rt.mqtt, sample_spec(spec, at),
                              list(range(1, min(n, spec.residents) + 1)),
                              tag=f"{at:%Y%m%d%H%M%S}", now=at)
    finally:
        for proc in reversed(services):
            proc.stop()

"""The demo's responder: a simulated care worker who answers the demo's alerts.

In `eldercare demo` nobody is at the duty screen, so without this every alert would stay
open: the family would be told about each critical one (10 minutes unacknowledged,
alerts.config DEFAULT_ESCALATION) but never receive an all-clear, the answer-time figures
would be empty, and a newcomer would see no notification flow. The responder answers as a
person would, through the platform's real HTTP API (log in, list alerts, acknowledge,
resolve), never through the database, so everything it does is checked, recorded, audited
and notified exactly like a person's actions.

Two parts:

- the decision core (`plan_for`, `decide`): pure. Each alert gets a plan drawn from a
  random generator seeded with (seed, alert id), so the same alert always gets the same plan
  (a restarted responder carries on where it was) and tests are deterministic. Most alerts
  are acknowledged within 30-120 s, some late (180-420 s: the answer-time statistics show
  misses), and about one critical alert in five is left past its family escalation step (the
  family hears about it), then acknowledged and resolved a few minutes later (the family
  gets the all-clear). Resolutions follow 2-6 minutes after the acknowledgement with an
  outcome plausible for the alert's type. An alert a person acknowledged is left alone.
- the runner (`Responder`): lists the open and acknowledged alerts of each demo site every
  `list_every_s` (each listing is an audited `alert.list` by the responder's account, so not
  every second), and acts when the plan says so. The server settles races: when a person
  acknowledges or resolves first, the responder's call gets 409 and it leaves the alert.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx

from alerts.config import DEFAULT_ESCALATION, EscalationStep
from alerts.model import AlertStatus, AlertType, Audience, Outcome, Severity
from simulators.clock import Clock, system_clock

logger = logging.getLogger(__name__)


# --- the decision core (pure) -------------------------------------------------------------


class Answer(StrEnum):
    """How quickly the simulated care worker gets to an alert."""

    PROMPT = "prompt"              # within the 30-120 s most alerts get
    LATE = "late"                  # past the telecare standard's 180 s
    AFTER_FAMILY = "after_family"  # past the family escalation step


Range = tuple[float, float]


@dataclass(frozen=True)
class ResponderPolicy:
    """The mix of answer times and outcomes (seconds; shares are probabilities)."""

    prompt_s: Range = (30.0, 120.0)
    late_s: Range = (180.0, 420.0)
    late_share: float = 0.15
    # Of the alerts of these severities whose timetable has a family step: left past it.
    family_severities: frozenset[Severity] = frozenset({Severity.CRITICAL})
    family_share: float = 0.2
    after_family_s: Range = (30.0, 150.0)  # acknowledged this long after the family step
    resolve_s: Range = (120.0, 360.0)      # resolved this long after the acknowledgement
    escalation: Mapping[Severity, Sequence[EscalationStep]] = field(
        default_factory=lambda: dict(DEFAULT_ESCALATION))

    def family_after_s(self, severity: Severity) -> float | None:
        """When the severity's family step is due (seconds after the alert), if it has one."""
        steps = [s.after_s for s in self.escalation.get(severity, ())
                 if s.audience is Audience.FAMILY]
        return float(min(steps)) if steps else None


# Outcome weights by alert type: plausible endings of a home-care call-out. Never
# cancelled_by_resident (the platform sets it when a device cancels) and never `other`
# (it needs a free-text note, which a simulation has nothing true to put in).
_MEDICAL = ((Outcome.ASSISTED_AT_HOME, 60), (Outcome.FALSE_ALARM, 20),
            (Outcome.AMBULANCE_CALLED, 12), (Outcome.HOSPITAL, 8))
_OUTCOMES: dict[str, tuple[tuple[Outcome, int], ...]] = {
    AlertType.SOS: ((Outcome.ASSISTED_AT_HOME, 60), (Outcome.FALSE_ALARM, 30),
                    (Outcome.AMBULANCE_CALLED, 7), (Outcome.HOSPITAL, 3)),
    AlertType.FALL: ((Outcome.ASSISTED_AT_HOME, 55), (Outcome.AMBULANCE_CALLED, 25),
                     (Outcome.HOSPITAL, 15), (Outcome.FALSE_ALARM, 5)),
    AlertType.APNEA: _MEDICAL, AlertType.HEART_RATE_LOW: _MEDICAL,
    AlertType.HEART_RATE_HIGH: _MEDICAL, AlertType.RESPIRATION_LOW: _MEDICAL,
    AlertType.RESPIRATION_HIGH: _MEDICAL,
}
_USUAL = ((Outcome.ASSISTED_AT_HOME, 70), (Outcome.FALSE_ALARM, 30))


@dataclass(frozen=True)
class AlertView:
    """What the responder reads of an alert (the fields of the API's alert listing)."""

    id: int
    site_id: str
    type: str
    severity: Severity
    status: AlertStatus
    created_at: datetime
    acknowledged_by: int | None = None
    acknowledged_at: datetime | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> AlertView:
        """From an item of GET /api/v1/alerts (or an alert answer of ack/resolve)."""
        acked = data.get("acknowledged_at")
        return cls(int(data["id"]), str(data["site_id"]), str(data["type"]),
                   Severity(data["severity"]), AlertStatus(data["status"]),
                   datetime.fromisoformat(data["created_at"]), data.get("acknowledged_by"),
                   datetime.fromisoformat(acked) if acked else None)


@dataclass(frozen=True)
class Plan:
    """When the responder acknowledges an alert (after its creation) and resolves it (after
    the acknowledgement), and how it ends."""

    alert_id: int
    answer: Answer
    ack_after_s: float
    resolve_after_s: float
    outcome: Outcome


def plan_for(alert: AlertView, seed: int, policy: ResponderPolicy) -> Plan:
    """The plan of one alert: drawn from a generator seeded with (seed, alert id), so it is
    the same every time it is asked for (a restart changes nothing)."""
    rng = random.Random(f"responder/{seed}/{alert.id}")
    family_at = policy.family_after_s(alert.severity)
    roll = rng.random()
    if (family_at is not None and alert.severity in policy.family_severities
            and roll < policy.family_share):
        answer, ack_after = Answer.AFTER_FAMILY, family_at + rng.uniform(*policy.after_family_s)
    elif roll > 1.0 - policy.late_share:
        answer, ack_after = Answer.LATE, rng.uniform(*policy.late_s)
    else:
        answer, ack_after = Answer.PROMPT, rng.uniform(*policy.prompt_s)
    weights = _OUTCOMES.get(alert.type, _USUAL)
    outcome = rng.choices([o for o, _ in weights], [w for _, w in weights])[0]
    return Plan(alert.id, answer, ack_after, rng.uniform(*policy.resolve_s), outcome)


class Act(StrEnum):
    """What the responder does to an alert now."""

    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    LEAVE = "leave"  # a person has it: hands off


@dataclass(frozen=True)
class Decision:
    """One thing to do now about one alert."""

    act: Act
    alert: AlertView
    plan: Plan


def decide(alerts: Iterable[AlertView], me: Mapping[str, int], now: datetime, seed: int,
           policy: ResponderPolicy) -> list[Decision]:
    """What is due at `now` among `alerts` (the active alerts the responder sees), `me` being
    the responder's user id per site: acknowledge an open alert whose time has come, resolve
    one it acknowledged itself once its time has come, and leave one somebody else
    acknowledged. Nothing for alerts whose time has not come."""
    out: list[Decision] = []
    for alert in alerts:
        plan = plan_for(alert, seed, policy)
        mine = me.get(alert.site_id)
        if alert.status is AlertStatus.OPEN:
            if now >= alert.created_at + timedelta(seconds=plan.ack_after_s):
                out.append(Decision(Act.ACKNOWLEDGE, alert, plan))
        elif alert.status is AlertStatus.ACKNOWLEDGED:
            if mine is None or alert.acknowledged_by != mine:
                out.append(Decision(Act.LEAVE, alert, plan))
            elif now >= (alert.acknowledged_at or alert.created_at) + timedelta(
                    seconds=plan.resolve_after_s):
                out.append(Decision(Act.RESOLVE, alert, plan))
    return out


# --- the runner (HTTP) --------------------------------------------------------------------


@dataclass(frozen=True)
class ResponderLogin:
    """A demo care-worker account the responder answers as (one per site)."""

    username: str
    password: str
    site_id: str


@dataclass
class _Session:
    login: ResponderLogin
    headers: dict[str, str] | None = None
    user_id: int | None = None
    retry_at: float = 0.0  # monotonic: when to try logging in again after a failure
    refused: bool = False  # the last listing was refused (logged once)


class Responder:
    """Answers the alerts of the demo sites through the web API.

    `tick` lists each site's active alerts (at most every `list_every_s`) and carries out
    what `decide` says is due; `run` ticks until `stop` is set. `clock` is the time the
    plans are measured against (the alerts' own times come from the server).
    """

    def __init__(self, base_url: str, logins: Sequence[ResponderLogin], *, seed: int = 1,
                 policy: ResponderPolicy | None = None, clock: Clock = system_clock,
                 list_every_s: float = 10.0, client: httpx.Client | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._api = base_url.rstrip("/") + "/api/v1"
        self._sessions = [_Session(login) for login in logins]
        self._seed = seed
        self._policy = policy or ResponderPolicy()
        self._clock = clock
        self._list_every_s = list_every_s
        self._client = client or httpx.Client(timeout=10.0)
        self._monotonic = monotonic
        self._next_list = 0.0
        self._alerts: dict[int, AlertView] = {}
        self._left: set[int] = set()  # alerts a person has: logged once, then left alone
        self.actions = 0  # acknowledgements and resolutions made (tests, the log)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def run(self, stop: threading.Event, every_s: float = 1.0) -> None:
        """Tick until `stop` is set; a web app that does not answer is waited for (at the
        demo's start it comes up at the same time as the responder: not worth a warning)."""
        down, answered = False, False
        while not stop.is_set():
            try:
                self.tick()
                if down and answered:
                    logger.info("the web app answers again")
                down, answered = False, True
            except httpx.HTTPError as exc:  # not up yet, restarting, database down (503)
                if not down:
                    log = logger.warning if answered else logger.info
                    log("responder waiting for the web app (%s)", exc)
                down = True
            stop.wait(every_s)

    def tick(self) -> int:
        """Refresh the alerts when a listing is due, then act on what is due; returns the
        number of acknowledgements and resolutions made."""
        if self._monotonic() >= self._next_list:
            self._refresh()
            self._next_list = self._monotonic() + self._list_every_s
        me = {s.login.site_id: s.user_id for s in self._sessions if s.user_id is not None}
        done = 0
        for decision in decide(list(self._alerts.values()), me, self._clock(), self._seed,
                               self._policy):
            done += self._carry_out(decision)
        self.actions += done
        return done

    # -- talking to the API --------------------------------------------------------------

    def _refresh(self) -> None:
        """The active alerts of every site the responder can log in to."""
        alerts: dict[int, AlertView] = {}
        for session in self._sessions:
            if not self._logged_in(session):
                continue
            resp = self._client.get(f"{self._api}/alerts", headers=session.headers,
                                    params={"status": ["open", "acknowledged"], "limit": 500})
            if resp.status_code == httpx.codes.UNAUTHORIZED:  # token expired or revoked
                session.headers = None
                continue
            if resp.is_client_error:  # e.g. 403: a second factor required of care workers
                if not session.refused:
                    logger.error("responder may not list the alerts of site %s as %s (%d: %s)",
                                 session.login.site_id, session.login.username,
                                 resp.status_code, _detail(resp))
                session.refused = True
                continue
            resp.raise_for_status()  # 5xx: the web app's trouble, waited out by `run`
            session.refused = False
            alerts.update((a.id, a) for a in map(AlertView.from_api, resp.json()))
        self._alerts = alerts
        self._left &= set(alerts)

    def _logged_in(self, session: _Session) -> bool:
        """Log in when there is no session (not again before `retry_at` after a refusal)."""
        if session.headers is not None:
            return True
        if self._monotonic() < session.retry_at:
            return False
        login = session.login
        resp = self._client.post(f"{self._api}/auth/token",
                                 data={"username": login.username, "password": login.password})
        if resp.status_code != httpx.codes.OK:
            session.retry_at = self._monotonic() + 60.0
            logger.error("responder cannot log in as %s (%d: %s); retrying in 60 s",
                         login.username, resp.status_code, _detail(resp))
            return False
        session.headers = {"Authorization": f"Bearer {resp.json()['access_token']}"}
        me = self._client.get(f"{self._api}/me", headers=session.headers)
        me.raise_for_status()
        session.user_id = int(me.json()["id"])
        logger.info("responder answering the alerts of site %s as %s", login.site_id,
                    login.username)
        return True

    def _session_of(self, site: str) -> _Session | None:
        for session in self._sessions:
            if session.login.site_id == site and session.headers is not None:
                return session
        return None

    def _carry_out(self, decision: Decision) -> int:
        """Do one decision; 1 when an acknowledgement or resolution went through."""
        alert, plan = decision.alert, decision.plan
        if decision.act is Act.LEAVE:
            if alert.id not in self._left:
                self._left.add(alert.id)
                logger.info("responder leaves alert %d (%s, %s): acknowledged by someone else",
                            alert.id, alert.type, alert.site_id)
            return 0
        session = self._session_of(alert.site_id)
        if session is None:
            return 0
        if decision.act is Act.ACKNOWLEDGE:
            resp = self._client.post(f"{self._api}/alerts/{alert.id}/ack",
                                     headers=session.headers)
        else:
            resp = self._client.post(f"{self._api}/alerts/{alert.id}/resolve",
                                     headers=session.headers,
                                     json={"outcome": plan.outcome.value})
        return self._after(decision, resp)

    def _after(self, decision: Decision, resp: httpx.Response) -> int:
        """Take in the answer to an action: the updated alert, or a person's win (409)."""
        alert, plan = decision.alert, decision.plan
        if resp.status_code == httpx.codes.OK:
            updated = AlertView.from_api(resp.json())
            if updated.status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED):
                self._alerts[alert.id] = updated
            else:
                self._alerts.pop(alert.id, None)
            waited = (updated.acknowledged_at or alert.created_at) - alert.created_at
            if decision.act is Act.ACKNOWLEDGE:
                logger.info("responder acknowledged alert %d (%s, %s, %s) after %d s (%s)",
                            alert.id, alert.type, alert.severity.value, alert.site_id,
                            waited.total_seconds(), plan.answer.value)
            else:
                logger.info("responder resolved alert %d (%s, %s) as %s", alert.id,
                            alert.type, alert.site_id, plan.outcome.value)
            return 1
        if resp.status_code == httpx.codes.UNAUTHORIZED:
            session = self._session_of(alert.site_id)
            if session is not None:
                session.headers = None
            return 0
        # 409: a person acted first (or the resident cancelled); 404: gone from our scope.
        self._alerts.pop(alert.id, None)
        self._left.add(alert.id)
        logger.info("responder leaves alert %d (%s): %s", alert.id, decision.act.value,
                    _detail(resp))
        return 0


def _detail(resp: httpx.Response) -> str:
    """The `detail` of an error answer, or its status."""
    try:
        body = resp.json()
    except ValueError:
        return str(resp.status_code)
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail) if detail is not None else str(resp.status_code)


def logins_from(data: Iterable[Mapping[str, Any]]) -> list[ResponderLogin]:
    """The responder's accounts from the demo's file (eldercare.seed, demo-responder.json)."""
    return [ResponderLogin(str(d["username"]), str(d["password"]), str(d["scope"]))
            for d in data]


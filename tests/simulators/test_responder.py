"""The demo responder's decision core: which alert it acknowledges or resolves when, with what
outcome; pure (no clock, no network), deterministic by seed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from alerts.model import RESOLVE_OUTCOMES, AlertStatus, AlertType, Outcome, Severity
from simulators.responder import (
    Act,
    AlertView,
    Answer,
    ResponderPolicy,
    decide,
    plan_for,
)

T0 = datetime(2041, 6, 1, 3, 0, tzinfo=UTC)
ME = 900  # the responder's user id at site north
PERSON = 7  # a person at the duty screen
POLICY = ResponderPolicy()
FAMILY_STEP_S = 600  # critical: the family after 10 minutes unacknowledged (DEFAULT_ESCALATION)


def alert(alert_id: int, severity: Severity = Severity.CRITICAL, type_: str = "sos",
          status: AlertStatus = AlertStatus.OPEN, by: int | None = None,
          acked_at: datetime | None = None) -> AlertView:
    return AlertView(alert_id, "north", type_, severity, status, T0, by, acked_at)


def ack_after_s(view: AlertView, seed: int = 1) -> float:
    return plan_for(view, seed, POLICY).ack_after_s


def test_the_same_alert_gets_the_same_plan_for_a_seed_and_another_seed_changes_the_mix():
    alerts = [alert(i) for i in range(1, 60)]
    first = [plan_for(a, 1, POLICY) for a in alerts]
    assert first == [plan_for(a, 1, POLICY) for a in alerts]  # a restart changes nothing
    assert first != [plan_for(a, 2, POLICY) for a in alerts]


def test_answer_times_fall_in_their_ranges_and_most_are_prompt():
    plans = [plan_for(alert(i, severity), 3, POLICY)
             for i in range(1, 400) for severity in (Severity.CRITICAL, Severity.HIGH)]
    answers = Counter(p.answer for p in plans)
    for p in plans:
        low, high = {Answer.PROMPT: POLICY.prompt_s, Answer.LATE: POLICY.late_s,
                     Answer.AFTER_FAMILY: (FAMILY_STEP_S + POLICY.after_family_s[0],
                                           FAMILY_STEP_S + POLICY.after_family_s[1])}[p.answer]
        assert low <= p.ack_after_s <= high
        assert POLICY.resolve_s[0] <= p.resolve_after_s <= POLICY.resolve_s[1]
    assert answers[Answer.PROMPT] > len(plans) / 2
    assert answers[Answer.LATE] > 0  # the answer-time statistics show misses


def test_about_one_critical_alert_in_five_is_left_past_the_family_step_and_no_other():
    critical = [plan_for(alert(i), 5, POLICY) for i in range(1, 501)]
    past = [p for p in critical if p.answer is Answer.AFTER_FAMILY]
    assert 0.12 < len(past) / len(critical) < 0.28
    assert all(p.ack_after_s > FAMILY_STEP_S for p in past)
    urgent = [plan_for(alert(i, Severity.URGENT), 5, POLICY) for i in range(1, 501)]
    info = [plan_for(alert(i, Severity.INFO, "low_battery"), 5, POLICY) for i in range(1, 501)]
    assert not any(p.answer is Answer.AFTER_FAMILY for p in urgent + info)


def test_the_family_step_follows_the_configured_escalation():
    from alerts.config import EscalationStep
    from alerts.model import Audience

    policy = ResponderPolicy(escalation={Severity.CRITICAL: [
        EscalationStep(after_s=60, audience=Audience.SITE_WORKERS),
        EscalationStep(after_s=1200, audience=Audience.FAMILY)]})
    past = [p for p in (plan_for(alert(i), 5, policy) for i in range(1, 200))
            if p.answer is Answer.AFTER_FAMILY]
    assert past and all(p.ack_after_s > 1200 for p in past)


def test_outcomes_are_choosable_and_plausible_for_the_type():
    sos = Counter(plan_for(alert(i), 1, POLICY).outcome for i in range(1, 400))
    battery = Counter(plan_for(alert(i, Severity.INFO, AlertType.LOW_BATTERY), 1, POLICY).outcome
                      for i in range(1, 400))
    for outcomes in (sos, battery):
        assert set(outcomes) <= set(RESOLVE_OUTCOMES) - {Outcome.OTHER}
        assert Outcome.CANCELLED_BY_RESIDENT not in outcomes
    assert sos.most_common(1)[0][0] is Outcome.ASSISTED_AT_HOME
    assert Outcome.AMBULANCE_CALLED in sos
    assert Outcome.AMBULANCE_CALLED not in battery


def test_an_open_alert_is_acknowledged_once_its_time_has_come():
    view = alert(11)
    due = T0 + timedelta(seconds=ack_after_s(view))
    assert decide([view], {"north": ME}, due - timedelta(seconds=1), 1, POLICY) == []
    [decision] = decide([view], {"north": ME}, due, 1, POLICY)
    assert decision.act is Act.ACKNOWLEDGE and decision.alert == view


def test_its_own_acknowledgement_is_resolved_two_to_six_minutes_later_with_the_plan_outcome():
    acked_at = T0 + timedelta(seconds=50)
    view = alert(12, status=AlertStatus.ACKNOWLEDGED, by=ME, acked_at=acked_at)
    plan = plan_for(view, 1, POLICY)
    due = acked_at + timedelta(seconds=plan.resolve_after_s)
    assert timedelta(minutes=2) <= due - acked_at <= timedelta(minutes=6)
    assert decide([view], {"north": ME}, due - timedelta(seconds=1), 1, POLICY) == []
    [decision] = decide([view], {"north": ME}, due, 1, POLICY)
    assert decision.act is Act.RESOLVE and decision.plan.outcome is plan.outcome


def test_an_alert_a_person_acknowledged_is_left_alone_however_late():
    view = alert(13, status=AlertStatus.ACKNOWLEDGED, by=PERSON, acked_at=T0)
    later = T0 + timedelta(hours=5)
    assert [d.act for d in decide([view], {"north": ME}, later, 1, POLICY)] == [Act.LEAVE]
    # a site the responder has no account at: not its alert either
    other = AlertView(14, "south", "sos", Severity.CRITICAL, AlertStatus.ACKNOWLEDGED, T0, ME,
                      T0)
    assert [d.act for d in decide([other], {"north": ME}, later, 1, POLICY)] == [Act.LEAVE]


def test_finished_alerts_are_never_touched():
    done = [alert(15, status=AlertStatus.RESOLVED, by=ME, acked_at=T0),
            alert(16, status=AlertStatus.CANCELLED)]
    assert decide(done, {"north": ME}, T0 + timedelta(days=1), 1, POLICY) == []


def test_an_alert_api_item_reads_into_a_view():
    item = {"id": 5, "site_id": "north", "type": "fall", "severity": "critical",
            "status": "acknowledged", "created_at": "2041-06-01T03:00:00+00:00",
            "acknowledged_by": 3, "acknowledged_at": "2041-06-01T03:01:00+00:00",
            "resident_name": "ignored"}
    view = AlertView.from_api(item)
    assert view == AlertView(5, "north", "fall", Severity.CRITICAL, AlertStatus.ACKNOWLEDGED,
                             T0, 3, T0 + timedelta(minutes=1))

"""Pure tests of the acknowledgement gate."""

from __future__ import annotations

from eldercare.acks import AckGate, ack_token, split_tokens
from eldercare.pipeline import event_filters, topic_filters


def test_single_holder_acks_on_release():
    calls: list[list[int]] = []
    gate = AckGate(calls.append)
    gate.release_many([1, 2, 3])
    assert calls == [[1, 2, 3]]  # one call per committed batch: one write of PUBACKs


def test_two_holders_ack_only_after_both_release_in_any_order():
    acked: list[int] = []
    gate = AckGate(acked.extend)
    gate.hold(5, 2)
    gate.release(5)
    assert acked == []
    gate.release(5)
    assert acked == [5]
    gate.hold(6, 2)
    gate.release_many([6, 7])
    assert acked == [5, 7]
    gate.release(6)
    assert acked == [5, 7, 6]


def test_topic_filters_per_site_or_all():
    assert topic_filters([]) == ["eldercare/v1/+/+/telemetry", "eldercare/v1/+/+/status"]
    assert topic_filters(["a", "b"]) == [
        "eldercare/v1/a/+/telemetry", "eldercare/v1/a/+/status",
        "eldercare/v1/b/+/telemetry", "eldercare/v1/b/+/status"]
    # Device events (SOS) have a session of their own.
    assert event_filters([]) == ["eldercare/v1/+/+/event"]
    assert event_filters(["a"]) == ["eldercare/v1/a/+/event"]


def test_ack_tokens_carry_session_and_connection():
    tokens = [ack_token(7, False, 1), ack_token(65535, True, 1), ack_token(7, False, 2),
              ack_token(1, False, 1), ack_token(7, True, 300)]
    assert len(set(tokens)) == len(tokens)  # same id on another session or connection
    assert split_tokens(tokens) == {(False, 1): [7, 1], (True, 1): [65535],
                                    (False, 2): [7], (True, 300): [7]}

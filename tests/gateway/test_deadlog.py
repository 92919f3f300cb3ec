"""Unit tests of gateway/deadlog.py: dead letters summarised per device per minute."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from gateway.deadlog import DeadLetterLog
from gateway.gateway import dead_letter

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def letter(device: str = "bed-1", reason: str = "movement: too big"):  # type: ignore[no-untyped-def]
    return dead_letter(f"eldercare/v1/north/{device}/telemetry", b"{}", T0, reason)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gateway.deadlog"]


def test_first_dead_letter_is_logged_with_its_reason(caplog, clock) -> None:
    caplog.set_level(logging.INFO)
    log = DeadLetterLog(clock)
    log.record(letter())
    assert lines(caplog) == ["dead letter on eldercare/v1/north/bed-1/telemetry: "
                             "movement: too big"]


def test_a_flood_gives_one_line_per_device_per_minute(caplog, clock) -> None:
    caplog.set_level(logging.INFO)
    log = DeadLetterLog(clock)
    for minute in range(3):
        for i in range(1000):
            clock.now = 1000.0 + minute * 60 + i * 0.05
            log.record(letter(reason=f"r{minute}-{i}"))
    clock.now += 60
    log.flush()
    out = lines(caplog)
    assert out[0].endswith("r0-0")
    assert out[1:] == [
        "999 more dead letters from bed-1 in the last 60 s (last: r0-999)",
        "1000 more dead letters from bed-1 in the last 60 s (last: r1-999)",
        "1000 more dead letters from bed-1 in the last 60 s (last: r2-999)",
    ]


def test_devices_are_summarised_separately(caplog, clock) -> None:
    caplog.set_level(logging.INFO)
    log = DeadLetterLog(clock)
    for _ in range(5):
        log.record(letter("bed-1"))
        log.record(letter("bed-2"))
    clock.now += 61
    log.record(letter("bed-3"))  # any later dead letter writes the due summaries
    out = lines(caplog)
    assert len(out) == 5
    assert "4 more dead letters from bed-1 in the last 60 s (last: movement: too big)" in out
    assert "4 more dead letters from bed-2 in the last 60 s (last: movement: too big)" in out


def test_a_quiet_minute_starts_over_with_a_full_line(caplog, clock) -> None:
    caplog.set_level(logging.INFO)
    log = DeadLetterLog(clock)
    log.record(letter(reason="first"))
    clock.now += 61
    log.record(letter(reason="again"))
    assert [x.rsplit(": ", 1)[-1] for x in lines(caplog)] == ["first", "again"]


def test_nothing_device_sent_reaches_the_log_unescaped(caplog, clock) -> None:
    caplog.set_level(logging.INFO)
    log = DeadLetterLog(clock)
    from gateway.records import DeadLetter
    log.record(DeadLetter(T0, "eldercare/v1/north/bed-1/event", b"", 0, "x\nERROR forged"))
    for _ in range(3):
        log.record(DeadLetter(T0, "eldercare/v1/north/bed-1/event", b"", 0, "y\r\x00z"))
    clock.now += 61
    log.flush()
    assert all(x.isprintable() for x in lines(caplog))
    assert len(lines(caplog)) == 2


def test_a_device_back_after_a_long_pause_is_logged_in_full(caplog, clock) -> None:
    caplog.set_level(logging.INFO)
    log = DeadLetterLog(clock)
    log.record(letter(reason="a"))
    log.record(letter(reason="b"))
    clock.now += 600
    log.record(letter(reason="c"))
    assert lines(caplog) == [
        "dead letter on eldercare/v1/north/bed-1/telemetry: a",
        "1 more dead letters from bed-1 in the last 60 s (last: b)",
        "dead letter on eldercare/v1/north/bed-1/telemetry: c",
    ]

"""Per-(device, seq) loss accounting of the ingest benchmark: sets, not totals."""

from __future__ import annotations

from benchmarks.ledger import DeviceLedger, account


def ledger(device: str, first: int, sent: int, acked: list[int]) -> DeviceLedger:
    led = DeviceLedger(device, first)
    for _ in range(sent):
        led.add_sent()
    for seq in acked:
        led.ack(seq - first)
    return led


def test_equal_totals_still_show_a_lost_message():
    # a: 100..104 PUBACKed, 103 not stored; b: 10 stored without its PUBACK (allowed).
    # 6 PUBACKed and 6 stored: the totals match, the sets do not.
    a = ledger("a", 100, 5, [100, 101, 102, 103, 104])
    b = ledger("b", 10, 2, [11])

    r = account([a, b], {"a": [(100, 102), (104, 104)], "b": [(10, 11)]}, rows=6)

    assert (r["sent"], r["pubacked"], r["stored"]) == (7, 6, 6)
    assert r["lost"] == 1 and r["lost_examples"] == ["a#103"]
    assert r["stored_not_pubacked"] == 1 and r["not_pubacked"] == 1
    assert r["duplicates"] == 0


def test_rows_beyond_distinct_pairs_are_duplicates():
    a = ledger("a", 1, 3, [1, 2, 3])

    r = account([a], {"a": [(1, 3)]}, rows=5)

    assert r["lost"] == 0 and r["duplicates"] == 2


def test_a_device_with_nothing_stored_loses_everything_it_was_acked():
    a = ledger("a", 7, 2000, list(range(7, 2007)))

    r = account([a], {}, rows=0, examples=3)

    assert r["lost"] == 2000 and r["lost_examples"] == ["a#7", "a#8", "a#9"]

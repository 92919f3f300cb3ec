"""The gateway's records: made by a hand-written `__init__` (fast), still frozen dataclasses."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.records import EventRecord, StatusRecord, TelemetryRecord

RECORDS = (TelemetryRecord, EventRecord, StatusRecord)


@pytest.mark.parametrize("cls", RECORDS)
def test_init_sets_exactly_the_fields_by_position_and_by_name(cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    values = [object() for _ in names]  # distinct, so a field set from another shows
    by_position = cls(*values)
    by_name = cls(**dict(zip(names, values, strict=True)))
    for rec in (by_position, by_name):
        assert [getattr(rec, n) for n in names] == values
        assert vars(rec) == dict(zip(names, values, strict=True))  # nothing else
    assert by_position == by_name and hash(by_position) == hash(by_name)


@pytest.mark.parametrize("cls", RECORDS)
def test_records_stay_frozen_and_replaceable(cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    rec = cls(*range(len(names)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.time = 1
    other = dataclasses.replace(rec, device_id="x")
    assert other.device_id == "x" and other.time == rec.time and other != rec
    assert repr(rec).startswith(f"{cls.__name__}(time=0, device_id=1")


def test_an_event_is_not_rescued_unless_told() -> None:
    names = [f.name for f in dataclasses.fields(EventRecord)]
    assert EventRecord(*range(len(names) - 1)).rescued_ts is None

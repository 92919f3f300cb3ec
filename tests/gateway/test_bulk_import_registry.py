"""The import against the registry (issue 13 trial): a sheet imported twice is refused row by
row and nothing of it is written; a dry run says what it would create."""

from __future__ import annotations

import pytest

from gateway import bulk_import
from gateway.device_accounts import DeviceAccounts
from kernel import db
from kernel.accounts import RegistryError
from kernel.sites import add_site
from tests.support.database import count
from tests.support.services import Broker

SHEET = [["site", "full_name", "address", "birth_year", "bed_sensor", "call_button"],
         ["north", "Dag Dahl", "4 Fjord Road", "1936", "yes", "yes"],
         ["north", "Eva Eide", "", "1941", "no", "yes"]]
COUNTS = ("SELECT (SELECT count(*) FROM residents) * 1000 + (SELECT count(*) FROM devices)")


@pytest.fixture
def accounts(broker: Broker) -> DeviceAccounts:
    return DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port))


@pytest.fixture
def north(clean_db: str) -> str:
    with db.connect(clean_db) as conn:
        add_site(conn, "north", "North")
        conn.commit()
    return clean_db


def _import(url: str, accounts: DeviceAccounts, broker: Broker,
            table: list[list[str]]) -> bulk_import.ImportReport:
    with db.connect(url) as conn:
        report = bulk_import.check(conn, table)
        if report.ok:
            conn.commit()
            bulk_import.apply(conn, accounts, broker.pipeline, report, "tester")
    return report


def test_dry_run_reports_what_it_would_create(north: str) -> None:
    with db.connect(north) as conn:
        report = bulk_import.check(conn, SHEET)
    summary = report.summary()
    assert (summary["residents"], summary["devices"], summary["broker_accounts"],
            summary["applied"]) == (2, 3, 3, False)
    assert count(north, COUNTS) == 0


def test_a_sheet_imported_twice_is_refused_row_by_row_and_nothing_is_written(
        north: str, accounts: DeviceAccounts, broker: Broker) -> None:
    first = _import(north, accounts, broker, SHEET)
    assert first.applied and first.summary()["residents"] == 2
    before = count(north, COUNTS)
    # The same people, typed a little differently, plus one new resident: refused whole.
    again = [*SHEET[:2], ["north", "eva  EIDE", " ", "1941", "no", "yes"],
             ["north", "Finn Fosse", "", "1950", "yes", "no"]]
    report = _import(north, accounts, broker, again)
    assert not report.applied
    assert [(e.row, e.column) for e in report.errors] == [(2, "full_name"), (3, "full_name")]
    assert all("already registered as resident" in e.message for e in report.errors)
    assert "2,full_name,\"already registered as resident 1 (" in bulk_import.errors_csv(
        report.errors)
    assert report.summary()["residents"] == 0
    assert count(north, COUNTS) == before
    # Another birth year or address is another person.
    other = [SHEET[0], ["north", "Dag Dahl", "9 Other Street", "1936", "no", "no"]]
    assert _import(north, accounts, broker, other).applied


def test_a_row_repeated_in_one_sheet_is_an_error(north: str) -> None:
    with db.connect(north) as conn:
        report = bulk_import.check(conn, [*SHEET, SHEET[1]])
    assert [(e.row, e.message) for e in report.errors] == [(4, "the same resident as row 2")]


def test_apply_checks_again_so_two_imports_at_once_write_one(
        north: str, accounts: DeviceAccounts, broker: Broker) -> None:
    with db.connect(north) as conn:
        stale = bulk_import.check(conn, SHEET)
    assert _import(north, accounts, broker, SHEET).applied
    before = count(north, COUNTS)
    with db.connect(north) as conn, pytest.raises(RegistryError, match="nothing imported"):
        bulk_import.apply(conn, accounts, broker.pipeline, stale, "tester")
    assert count(north, COUNTS) == before

"""Reading and validating an import sheet (pure: no database)."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from gateway import bulk_import
from gateway.schema import DeviceType
from kernel import ledger


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_cells_become_text_and_a_typed_year_stays_whole() -> None:
    data = xlsx([["site", "full_name", "birth_year", "bed_sensor"],
                 ["north", "Dag Dahl", 1936.0, "yes"], [None, None, None, None]])
    table = bulk_import.read_table(data, "Elders.XLSX")
    assert table[1] == ["north", "Dag Dahl", "1936", "yes"]
    report = bulk_import.validate(table, ["north"])
    assert report.ok
    assert [(r.row, r.full_name, r.birth_year, r.devices) for r in report.rows] == [
        (2, "Dag Dahl", 1936, (DeviceType.BED_SENSOR,))]


def test_csv_with_bom_and_every_error_of_a_row() -> None:
    data = ("\ufeffsite,full_name,birth_year,call_button,colour\n"
            "north,,1800,perhaps,\n").encode()
    report = bulk_import.validate(bulk_import.read_table(data, "e.csv"), ["north"])
    assert [(e.row, e.column) for e in report.errors] == [(1, "colour")]
    data = b"site,full_name,birth_year,call_button\nnorth,,1800,perhaps\n"
    report = bulk_import.validate(bulk_import.read_table(data, "e.csv"), ["north"])
    assert [(e.row, e.column) for e in report.errors] == [
        (2, "full_name"), (2, "birth_year"), (2, "call_button")]
    assert bulk_import.errors_csv(report.errors).splitlines()[1].startswith("2,full_name,")


def test_default_site_fills_blanks_and_refuses_other_sites() -> None:
    table = [["site", "full_name"], ["", "A"], ["south", "B"]]
    report = bulk_import.validate(table, ["north", "south"], default_site="north")
    assert [r.site for r in report.rows] == ["north"]
    assert [(e.row, e.column) for e in report.errors] == [(3, "site")]


def test_unreadable_files_are_format_errors() -> None:
    with pytest.raises(bulk_import.ImportFormatError):
        bulk_import.read_table(b"\xff\xfe\x00", "e.csv")
    with pytest.raises(bulk_import.ImportFormatError):
        bulk_import.read_table(b"not a zip", "e.xlsx")


@pytest.mark.parametrize(("year", "ok"), [
    (ledger.MIN_BIRTH_YEAR - 1, False), (ledger.MIN_BIRTH_YEAR, True),
    (ledger.MAX_BIRTH_YEAR, True), (ledger.MAX_BIRTH_YEAR + 1, False)])
def test_birth_year_edges_are_the_ledgers(year: int, ok: bool) -> None:
    """The import refuses exactly what the web form refuses (kernel.ledger's limits;
    tests/dashboard/test_ledger.py checks the form's side with the same edges)."""
    report = bulk_import.validate([["site", "full_name", "birth_year"],
                                   ["north", "A", str(year)]], ["north"])
    assert report.ok is ok
    assert [e.column for e in report.errors] == ([] if ok else ["birth_year"])


@pytest.mark.parametrize(("column", "limit"), [
    ("full_name", ledger.MAX_FULL_NAME), ("address", ledger.MAX_ADDRESS)])
def test_text_lengths_are_the_ledgers(column: str, limit: int) -> None:
    for length, ok in ((limit, True), (limit + 1, False)):
        row = {"full_name": "A", "address": "x", column: "y" * length}
        report = bulk_import.validate([["site", "full_name", "address"],
                                       ["north", row["full_name"], row["address"]]], ["north"])
        assert report.ok is ok, (column, length)

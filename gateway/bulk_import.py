"""Bulk import of residents and their devices from a CSV or XLSX sheet (docs/admin-guide.md).

Centres keep their elders in spreadsheets. Every row is validated before anything is
written; a sheet with any error writes nothing and returns the error report (row, column,
message). A row whose resident is already registered (same site, name, birth year and
address: `identity`) is such an error, so a sheet imported twice is refused whole. A valid
sheet is written in one transaction, the broker accounts are generated inside it (record
0006) and removed again if the transaction does not commit: nothing is ever half-imported.
Parsing and validation are pure; `check` and `apply` touch the database.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from gateway.device_accounts import DeviceAccounts
from gateway.device_lifecycle import NewDevice, broker_change, insert_devices, provision_entry
from gateway.provisioning import DeviceCredentials
from gateway.schema import DeviceType
from kernel import audit
from kernel.accounts import RegistryError
from kernel.i18n import N_, Said
from kernel.ledger import MAX_ADDRESS, MAX_BIRTH_YEAR, MAX_FULL_NAME, MIN_BIRTH_YEAR

logger = logging.getLogger(__name__)

COLUMNS = ("site", "full_name", "address", "birth_year", "bed_sensor", "call_button")
REQUIRED = ("full_name",)
MAX_ROWS = 50_000
YES = frozenset({"yes", "y", "true", "1", "x"})
NO = frozenset({"no", "n", "false", "0", ""})
_IMPORT_LOCK = 0x0E1DE1A7  # pg advisory lock key: one import at a time


class ImportFormatError(ValueError):
    """The file itself cannot be read (not the rows' content)."""


@dataclass(frozen=True)
class RowError:
    """One problem, where a spreadsheet user finds it: sheet row number (header = 1)."""

    row: int
    column: str
    message: str


@dataclass(frozen=True)
class ResidentRow:
    """A valid row: one resident and which devices to provision for them."""

    row: int
    site: str
    full_name: str
    address: str | None
    birth_year: int | None
    devices: tuple[DeviceType, ...]


@dataclass
class ImportReport:
    """Result of validating (and maybe applying) a sheet."""

    rows: list[ResidentRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    credentials: list[DeviceCredentials] = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        """No row has an error."""
        return not self.errors

    def summary(self) -> dict[str, Any]:
        """Counts for the API and CLI. `residents`, `devices` and `broker_accounts` are what
        the import created (applied) or, in a dry run, what it would create; 0 when the
        sheet has errors (nothing is imported then)."""
        creates = self.applied or self.ok
        devices = (len(self.credentials) if self.applied
                   else sum(len(r.devices) for r in self.rows) if creates else 0)
        return {"rows": len(self.rows) + len({e.row for e in self.errors}),
                "valid_rows": len(self.rows), "errors": len(self.errors),
                "residents": len(self.rows) if creates else 0,
                "devices": devices, "broker_accounts": devices, "applied": self.applied}


def read_table(data: bytes, filename: str) -> list[list[str]]:
    """Rows of cells as text from CSV (UTF-8, BOM allowed) or XLSX, by file name."""
    if filename.lower().endswith(".xlsx"):
        return _read_xlsx(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(N_("the CSV file is not UTF-8 text")) from exc
    return [list(r) for r in csv.reader(io.StringIO(text))]


def _read_xlsx(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise ImportFormatError(Said(N_("not a readable XLSX workbook: {error}"),
                                     error=str(exc))) from exc
    sheet = book.worksheets[0]
    out = [["" if v is None else _cell_text(v) for v in row]
           for row in sheet.iter_rows(values_only=True)]
    book.close()
    return out


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a year typed in Excel arrives as 1938.0
    return str(value)


def validate(table: Sequence[Sequence[str]], known_sites: Iterable[str],
             default_site: str | None = None) -> ImportReport:
    """Check every row; collect every error (not only the first)."""
    report = ImportReport()
    if not table:
        report.errors.append(RowError(1, "", N_("the file is empty")))
        return report
    header = [h.strip().lower() for h in table[0]]
    unknown = [h for h in header if h and h not in COLUMNS]
    for h in unknown:
        report.errors.append(RowError(1, h, Said(N_("unknown column (expected {columns})"),
                                                   columns=", ".join(COLUMNS))))
    for col in REQUIRED:
        if col not in header:
            report.errors.append(RowError(1, col, N_("required column is missing")))
    if "site" not in header and default_site is None:
        report.errors.append(RowError(1, "site", N_("no site column: give one or choose a site")))
    if len(table) - 1 > MAX_ROWS:
        report.errors.append(RowError(1, "", Said(N_("more than {most} rows"), most=MAX_ROWS)))
    if report.errors:
        return report
    sites = frozenset(known_sites)
    for number, cells in enumerate(table[1:], start=2):
        values = {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}
        if not any(values.values()):
            continue  # blank lines at the end of a sheet
        row = _validate_row(number, values, sites, default_site, report.errors)
        if row is not None:
            report.rows.append(row)
    return report


def _validate_row(number: int, v: dict[str, str], sites: frozenset[str],
                  default_site: str | None, errors: list[RowError]) -> ResidentRow | None:
    before = len(errors)

    def err(column: str, message: str) -> None:
        errors.append(RowError(number, column, message))

    site = v.get("site") or default_site or ""
    if default_site is not None and v.get("site") and v["site"] != default_site:
        err("site", Said(N_("row is for site {row!r}, the import is for {chosen!r}"),
                         row=v["site"], chosen=default_site))
    elif site not in sites:
        err("site", Said(N_("no site {site!r}"), site=site) if site
            else N_("site is required"))
    name = v.get("full_name", "")
    if not name:
        err("full_name", N_("name is required"))
    elif len(name) > MAX_FULL_NAME:
        err("full_name", Said(N_("longer than {most} characters"), most=MAX_FULL_NAME))
    address = v.get("address") or None
    if address is not None and len(address) > MAX_ADDRESS:
        err("address", Said(N_("longer than {most} characters"), most=MAX_ADDRESS))
    birth_year: int | None = None
    if v.get("birth_year"):
        try:
            birth_year = int(v["birth_year"])
        except ValueError:
            err("birth_year", N_("not a whole number"))
        else:
            if not MIN_BIRTH_YEAR <= birth_year <= MAX_BIRTH_YEAR:
                err("birth_year", Said(N_("must be between {low} and {high}"),
                                      low=MIN_BIRTH_YEAR, high=MAX_BIRTH_YEAR))
    devices: list[DeviceType] = []
    for column, typ in (("bed_sensor", DeviceType.BED_SENSOR),
                        ("call_button", DeviceType.CALL_BUTTON)):
        flag = v.get(column, "").lower()
        if flag in YES:
            devices.append(typ)
        elif flag not in NO:
            err(column, N_("must be yes or no"))
    if len(errors) > before:
        return None
    return ResidentRow(number, site, name, address, birth_year, tuple(devices))


def known_sites(conn: psycopg.Connection[Any]) -> list[str]:
    """Site ids rows may name."""
    return [str(r[0]) for r in conn.execute("SELECT id FROM sites").fetchall()]


Identity = tuple[str, str, int | None, str]


def identity(site: str, full_name: str, birth_year: int | None, address: str | None
             ) -> Identity:
    """Who a row is: the same site, name, birth year and address (case and spacing ignored)
    is the same person. The template has no external id column, and a name alone is not
    enough (two Wang Fangs in one district are common); a sheet imported twice matches on
    all four."""
    def norm(text: str | None) -> str:
        return " ".join((text or "").split()).casefold()
    return site, norm(full_name), birth_year, norm(address)


def _existing(conn: psycopg.Connection[Any], sites: Iterable[str]) -> dict[Identity, int]:
    """The identities of the residents already registered at `sites` (any status: a
    discharged resident is re-admitted with `resident update`, not imported again)."""
    rows = conn.execute("SELECT id, site_id, full_name, birth_year, address FROM residents "
                        "WHERE site_id = ANY(%s) ORDER BY id", (sorted(set(sites)),)).fetchall()
    return {identity(str(s), str(n), y, a): int(i) for i, s, n, y, a in rows}


def duplicate_errors(conn: psycopg.Connection[Any], rows: Sequence[ResidentRow]
                     ) -> list[RowError]:
    """A row whose resident is already registered, or repeats an earlier row of the sheet:
    one error each (the sheet imported twice is refused whole)."""
    known = _existing(conn, (r.site for r in rows))
    seen: dict[Identity, int] = {}
    errors = []
    for r in rows:
        key = identity(r.site, r.full_name, r.birth_year, r.address)
        if key in known:
            errors.append(RowError(r.row, "full_name", Said(
                N_("already registered as resident {id} (same site, name, birth year and "
                   "address)"), id=known[key])))
        elif key in seen:
            errors.append(RowError(r.row, "full_name",
                                   Said(N_("the same resident as row {row}"), row=seen[key])))
        else:
            seen[key] = r.row
    return errors


def check(conn: psycopg.Connection[Any], table: Sequence[Sequence[str]],
          allowed_sites: Iterable[str] | None = None, default_site: str | None = None
          ) -> ImportReport:
    """`validate` against the registry: the sites that exist (or `allowed_sites`) and the
    residents already there (`duplicate_errors`). What the CLI, the API and a dry run use."""
    report = validate(table, known_sites(conn) if allowed_sites is None else allowed_sites,
                      default_site)
    dupes = duplicate_errors(conn, report.rows)
    if dupes:
        bad = {e.row for e in dupes}
        report.rows = [r for r in report.rows if r.row not in bad]
        report.errors = sorted([*report.errors, *dupes], key=lambda e: e.row)
    return report


def apply(conn: psycopg.Connection[Any], accounts: DeviceAccounts, broker: Any,
          report: ImportReport, actor: str | None) -> ImportReport:
    """Write a validated sheet: residents, devices, history and broker accounts, all or
    nothing. `broker` is the MqttEndpoint devices connect to (put in the credentials)."""
    if not report.ok:
        raise ValueError("refusing to apply a sheet with errors")
    with broker_change(conn, accounts):
        # One import at a time, and the duplicate check again under the lock: the same
        # sheet sent twice at once must not be imported twice.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_IMPORT_LOCK,))
        dupes = duplicate_errors(conn, report.rows)
        if dupes:
            raise RegistryError(Said(N_("row {row}: {problem}; nothing imported"),
                                     row=dupes[0].row, problem=dupes[0].message))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO residents (site_id, full_name, address, birth_year) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                [(r.site, r.full_name, r.address, r.birth_year) for r in report.rows],
                returning=True)
            ids: list[int] = []
            while True:
                got = cur.fetchone()
                assert got is not None
                ids.append(int(got[0]))
                if not cur.nextset():
                    break
        new = [NewDevice(rid, r.site, typ) for rid, r in zip(ids, report.rows, strict=True)
               for typ in r.devices]
        report.credentials = insert_devices(conn, broker, new, actor)
    report.applied = True
    logger.info("import: %d residents, %d devices", len(ids), len(report.credentials))
    return report


def audit_entries(report: ImportReport, filename: str, dry_run: bool
                  ) -> tuple[dict[str, Any], list[audit.Entry]]:
    """What an import leaves in the audit trail: the detail of its `import` record (file
    name, dry run, the counts) and one `device.provision` record per device it created."""
    detail = {"file": filename, "dry_run": dry_run, **report.summary()}
    return detail, [provision_entry(c, import_file=filename) for c in report.credentials]


def errors_csv(errors: Sequence[RowError]) -> str:
    """The downloadable error report."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["row", "column", "message"])
    for e in errors:
        w.writerow([e.row, e.column, e.message])
    return out.getvalue()


def credentials_csv(creds: Sequence[DeviceCredentials]) -> str:
    """The installer's sheet: one line per device created (secrets shown this once)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["device_id", "type", "site", "resident_id", "username", "password",
                "topic_prefix", "mqtt_host", "mqtt_port"])
    for c in creds:
        w.writerow([c.device_id, c.type, c.site, c.resident_id, c.username, c.password,
                    c.topic_prefix, c.mqtt_host, c.mqtt_port])
    return out.getvalue()

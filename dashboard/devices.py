"""Device administration API: provision (secret and QR shown once), list, health history,
revoke (the broker cuts a live session at once), move; and the bulk import of residents with
their devices from CSV/XLSX (record 0006, docs/dashboard.md "Devices and bulk import").

Admins act on every site, duty officers on their own site only; other roles get 403. A
device or resident outside the caller's site answers 404, like one that does not exist.
The routes are plain functions (FastAPI runs them in its thread pool): the provisioning
core is synchronous and holds a transaction while the broker reloads.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import psycopg
import segno
from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Path,
    Request,
    UploadFile,
    status,
)
from pydantic import BaseModel, ConfigDict, Field

from dashboard.audit import AuditNote, audited
from dashboard.auth import CurrentUser
from dashboard.deps import StateDep
from dashboard.errors import words_of
from dashboard.language import api_language
from dashboard.models import UserOut
from dashboard.params import IdPath, SiteQuery
from dashboard.scope import not_found
from gateway import bulk_import, device_lifecycle
from gateway.broker_admin import BrokerAdmin, BrokerAdminError
from gateway.device_accounts import DeviceAccounts, DeviceAccountsError
from gateway.provisioning import DeviceCredentials
from gateway.schema import DeviceType
from kernel import db
from kernel.accounts import RegistryError, Role
from kernel.audit import Action, Target
from kernel.endpoint import MqttEndpoint
from kernel.i18n import N_, Said, say

logger = logging.getLogger(__name__)

router = APIRouter(tags=["devices"])

MANAGING_ROLES = frozenset({Role.ADMIN, Role.DUTY_OFFICER})
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class DevicesConfig:
    """What device administration needs beyond the database: the broker's account files,
    the address devices connect to (shown to installers) and, for accounts made before
    record 0006, the dynamic-security admin to remove them from."""

    accounts: DeviceAccounts
    broker: MqttEndpoint
    admin: MqttEndpoint | None = None


def get_config(request: Request) -> DevicesConfig:
    """The app's device configuration; 503 when this server cannot manage devices."""
    cfg = getattr(request.app.state, "devices", None)
    if not isinstance(cfg, DevicesConfig):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            N_("Device provisioning is not configured on this server"))
    return cfg


ConfigDep = Annotated[DevicesConfig, Depends(get_config)]


def managing_user(user: CurrentUser) -> UserOut:
    """Admins and duty officers (with a site) only."""
    if user.role not in MANAGING_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            N_("Only administrators and duty officers manage devices"))
    if user.role is Role.DUTY_OFFICER and not user.site_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Your account has no site; ask an "
                                                          "administrator"))
    return user


ManagerDep = Annotated[UserOut, Depends(managing_user)]


def _own_site(user: UserOut) -> str | None:
    """The one site a duty officer manages; None for an admin (every site)."""
    return None if user.role is Role.ADMIN else user.site_id


# --- models ----------------------------------------------------------------------------

class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ProvisionIn(BaseModel):
    """A device to provision for the resident in the path."""

    model_config = ConfigDict(extra="forbid")
    type: DeviceType


class MoveIn(BaseModel):
    """The resident to give the device to."""

    model_config = ConfigDict(extra="forbid")
    resident_id: int = Field(ge=1, le=2**53)


class CredentialsOut(_Out):
    """Shown once: the broker secret is not stored anywhere it could be read back."""

    device_id: str
    type: DeviceType
    site: str
    resident_id: int
    username: str
    password: str
    topic_prefix: str
    mqtt_host: str
    mqtt_port: int
    qr_svg: str = Field(description="SVG QR code of the connection details (JSON)")


class DeviceRowOut(_Out):
    """A device in the list."""

    id: str
    type: DeviceType
    site_id: str
    resident_id: int
    resident_name: str
    active: bool
    online: bool | None
    battery: int | None
    last_seen: datetime | None


class HistoryOut(_Out):
    """One registry event of a device."""

    time: datetime
    action: Literal["provision", "move", "revoke"]
    site_id: str | None
    resident_id: int | None
    from_site_id: str | None
    from_resident_id: int | None
    actor: str | None


class StatusOut(_Out):
    """One status report of the device (online/offline, battery)."""

    time: datetime
    online: bool
    battery: int | None


class DeviceDetailOut(DeviceRowOut):
    """A device and its health history."""

    firmware: str | None
    site_timezone: str = Field(description="IANA zone of the device's site: pages show the "
                                           "history's times in it")
    last_test_press: datetime | None
    history: list[HistoryOut]
    status: list[StatusOut]


class ImportErrorOut(_Out):
    """A problem in the sheet (row 1 is the header)."""

    row: int
    column: str
    message: str


class ImportOut(_Out):
    """Result of an import or dry run; `credentials_csv` only when applied (shown once)."""

    rows: int
    valid_rows: int
    errors: int
    residents: int = Field(description="Residents created, or in a dry run the residents "
                                        "it would create (0 when the sheet has errors)")
    devices: int = Field(description="Devices created (or that it would create)")
    broker_accounts: int = Field(description="Broker accounts created (or that it would "
                                             "create): one per device")
    applied: bool
    error_list: list[ImportErrorOut]
    errors_csv: str
    credentials_csv: str | None


# --- helpers ---------------------------------------------------------------------------

def qr_svg(cred: DeviceCredentials) -> str:
    """The installer's QR code: the connection details as JSON, as an inline SVG."""
    payload = json.dumps({"host": cred.mqtt_host, "port": cred.mqtt_port,
                          "username": cred.username, "password": cred.password,
                          "client_id": cred.device_id, "topic_prefix": cred.topic_prefix},
                         separators=(",", ":"))
    out = io.BytesIO()
    # A standalone SVG (namespace, no XML declaration), dark on white whatever the page's
    # colours: a scanner needs the contrast and the quiet zone.
    segno.make(payload, error="m").save(out, kind="svg", xmldecl=False, scale=4,
                                        dark="black", light="white")
    return out.getvalue().decode()


def credentials_out(cred: DeviceCredentials) -> CredentialsOut:
    """API form of new credentials, with the QR code."""
    return CredentialsOut(device_id=cred.device_id, type=DeviceType(cred.type), site=cred.site,
                          resident_id=cred.resident_id, username=cred.username,
                          password=cred.password, topic_prefix=cred.topic_prefix,
                          mqtt_host=cred.mqtt_host, mqtt_port=cred.mqtt_port,
                          qr_svg=qr_svg(cred))


def _resident_site(conn: psycopg.Connection[Any], resident_id: int, user: UserOut) -> str:
    row = conn.execute("SELECT site_id FROM residents WHERE id = %s AND active",
                       (resident_id,)).fetchone()
    if row is None or (_own_site(user) not in (None, row[0])):
        raise not_found(N_("Resident"))
    return str(row[0])


def _device_site(conn: psycopg.Connection[Any], device_id: str, user: UserOut) -> str:
    row = conn.execute("SELECT site_id FROM devices WHERE id = %s", (device_id,)).fetchone()
    if row is None or (_own_site(user) not in (None, row[0])):
        raise not_found(N_("Device"))
    return str(row[0])


def _broker_error(exc: Exception) -> HTTPException:
    logger.error("device change not applied: %s", exc)
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                         N_("The broker could not be updated; nothing was changed"))


DeviceIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]

# --- routes ----------------------------------------------------------------------------

@router.post("/residents/{resident_id}/devices", response_model=CredentialsOut,
             status_code=status.HTTP_201_CREATED)
def provision_device(note: Annotated[AuditNote, audited(Action.DEVICE_PROVISION, "device",
                                                        resident="resident_id")],
                     resident_id: IdPath, body: ProvisionIn, user: ManagerDep,
                     state: StateDep, cfg: ConfigDep) -> CredentialsOut:
    """Provision a bed sensor or call button; the secret and its QR code are shown once
    (recorded with the new device as the target, its resident named)."""
    with db.connect(state.database_url) as conn:
        _resident_site(conn, resident_id, user)
        conn.commit()
        try:
            cred = device_lifecycle.provision(conn, cfg.accounts, cfg.broker, resident_id,
                                              body.type, actor=user.username)
        except RegistryError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, words_of(exc)) from None
        except DeviceAccountsError as exc:
            raise _broker_error(exc) from None
    entry = device_lifecycle.provision_entry(cred)
    note.target, note.detail = entry.target, {**note.detail, **entry.detail}
    logger.info("user %s provisioned %s for resident %d", user.username, cred.device_id,
                resident_id)
    return credentials_out(cred)


@router.get("/devices", response_model=list[DeviceRowOut],
            dependencies=[audited(Action.DEVICE_READ, "device")])
def list_devices(user: ManagerDep, state: StateDep, site: SiteQuery = None,
                 type: DeviceType | None = None, online: bool | None = None,
                 include_revoked: bool = False) -> list[DeviceRowOut]:
    """Devices (active unless `include_revoked`), filtered by site, type and online."""
    own = _own_site(user)
    if own is not None and site not in (None, own):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            Said(N_("You can only see site '{own}'; site '{site}' is outside your "
                                    "access"), own=own, site=site))
    with db.connect(state.database_url) as conn:
        rows = device_lifecycle.list_devices(conn, site=site or own, device_type=type,
                                             online=online, include_revoked=include_revoked)
    return [DeviceRowOut(**r) for r in rows]


@router.get("/devices/{device_id}", response_model=DeviceDetailOut,
            dependencies=[audited(Action.DEVICE_READ, "device", id_param="device_id")])
def get_device(device_id: DeviceIdPath, user: ManagerDep, state: StateDep) -> DeviceDetailOut:
    """A device with its health history: online/offline and battery reports, the last test
    press, and its provision/move/revoke events."""
    with db.connect(state.database_url) as conn:
        _device_site(conn, device_id, user)
        detail = device_lifecycle.device_detail(conn, device_id, HISTORY_LIMIT)
    assert detail is not None
    return DeviceDetailOut(**detail)


@router.post("/devices/{device_id}/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke_device(note: Annotated[AuditNote, audited(Action.DEVICE_REVOKE, "device",
                                                     id_param="device_id")],
                  device_id: DeviceIdPath, user: ManagerDep, state: StateDep,
                  cfg: ConfigDep) -> None:
    """Revoke: the device is deactivated and the broker disconnects it at once."""
    with db.connect(state.database_url) as conn:
        _device_site(conn, device_id, user)
        conn.commit()
        try:
            admin = BrokerAdmin(cfg.admin) if cfg.admin is not None else None
            if admin is None:
                site, resident = device_lifecycle.revoke(conn, cfg.accounts, device_id,
                                                         user.username)
            else:
                with admin:
                    site, resident = device_lifecycle.revoke(conn, cfg.accounts, device_id,
                                                             user.username, admin)
        except RegistryError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, words_of(exc)) from None
        except (DeviceAccountsError, BrokerAdminError) as exc:
            raise _broker_error(exc) from None
    entry = device_lifecycle.revoke_entry(device_id, site, resident)
    note.target, note.detail = entry.target, {**note.detail, **entry.detail}
    logger.info("user %s revoked device %s", user.username, device_id)


@router.post("/devices/{device_id}/move", response_model=DeviceRowOut)
def move_device(note: Annotated[AuditNote, audited(Action.DEVICE_UPDATE, "device",
                                                   id_param="device_id")],
                device_id: DeviceIdPath, body: MoveIn, user: ManagerDep, state: StateDep,
                cfg: ConfigDep) -> DeviceRowOut:
    """Give a device to another resident (a duty officer: within their site). Credentials
    stay; across sites the device's topic prefix changes (see the response's site)."""
    with db.connect(state.database_url) as conn:
        _device_site(conn, device_id, user)
        _resident_site(conn, body.resident_id, user)
        conn.commit()
        try:
            old, new = device_lifecycle.move(conn, cfg.accounts, device_id,
                                             body.resident_id, user.username)
        except RegistryError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, words_of(exc)) from None
        except DeviceAccountsError as exc:
            raise _broker_error(exc) from None
        [row] = device_lifecycle.list_devices(conn, device_id=device_id, include_revoked=True)
    entry = device_lifecycle.move_entry(device_id, body.resident_id, old, new)
    note.target, note.detail = entry.target, {**note.detail, **entry.detail}
    return DeviceRowOut(**row)


@router.post("/import", response_model=ImportOut)
def import_sheet(note: Annotated[AuditNote, audited(Action.IMPORT, "import")],
                 user: ManagerDep, state: StateDep, cfg: ConfigDep, request: Request,
                 file: Annotated[UploadFile, File(description="CSV or XLSX")],
                 dry_run: Annotated[bool, Form()] = False,
                 site: Annotated[str | None, Form(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] = None,
                 ) -> ImportOut:
    """Import residents and their devices. Every row is validated first; with any error
    nothing is written and the report says where. The credentials CSV of the devices made
    is in the response only (shown once)."""
    own = _own_site(user)
    if own is not None:
        if site not in (None, own):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                Said(N_("You can only import into site '{own}'"), own=own))
        site = own
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, N_("the file is too large"))
    try:
        table = bulk_import.read_table(data, file.filename or "upload.csv")
    except bulk_import.ImportFormatError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, words_of(exc)) from None
    with db.connect(state.database_url) as conn:
        report = bulk_import.check(conn, table, None if own is None else [own], site)
        if report.ok and not dry_run:
            conn.commit()
            try:
                bulk_import.apply(conn, cfg.accounts, cfg.broker, report, user.username)
            except RegistryError as exc:
                raise HTTPException(status.HTTP_409_CONFLICT, words_of(exc)) from None
            except DeviceAccountsError as exc:
                raise _broker_error(exc) from None
    summary = report.summary()
    lang = api_language(request)  # each problem in the reader's language
    errors = [bulk_import.RowError(e.row, e.column, say(e.message, lang)) for e in report.errors]
    filename = file.filename or "upload.csv"
    detail, devices = bulk_import.audit_entries(report, filename, dry_run)
    note.target = Target("import", filename)
    note.detail.update(detail)
    note.also.extend(devices)
    logger.info("user %s import: %s", user.username, summary)
    return ImportOut(
        **summary,
        error_list=[ImportErrorOut(row=e.row, column=e.column, message=e.message)
                    for e in errors],
        errors_csv=bulk_import.errors_csv(errors),
        credentials_csv=(bulk_import.credentials_csv(report.credentials)
                         if report.applied else None))

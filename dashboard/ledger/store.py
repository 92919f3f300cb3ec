"""The ledger's reads and writes on an asynchronous connection (the SQL is kernel.ledger's,
shared with the CLI)."""

from __future__ import annotations

from dashboard.deps import AsyncConn
from dashboard.ledger.models import (
    ConsentIn,
    ConsentOut,
    ContactIn,
    ContactOut,
    LedgerFields,
    ResidentDetailOut,
    ResidentListOut,
    TimelineEntry,
)
from dashboard.models import ResidentOut
from kernel import ledger


async def detail(conn: AsyncConn, listed: ResidentOut) -> ResidentDetailOut:
    """The whole ledger entry of a resident already read (and scope-checked) as `listed`."""
    params = {"id": listed.id}
    cur = await conn.execute(ledger.SELECT_DETAIL, params)
    row = await cur.fetchone()
    assert row is not None
    columns = dict(zip(ledger.DETAIL_COLUMNS, row, strict=False))
    cur = await conn.execute(ledger.SELECT_CONTACTS, params)
    contacts = [ContactOut(position=p, name=n, relation=rel, phone=ph, notified=no)
                for p, n, rel, ph, no in await cur.fetchall()]
    cur = await conn.execute(ledger.SELECT_CONSENTS, params)
    consents = [ConsentOut(id=i, kind=k, granted=g, given_by=by, given_on=on, method=m,
                           recorded_at=at)
                for i, k, g, by, on, m, at in await cur.fetchall()]
    cur = await conn.execute("SELECT timezone FROM sites WHERE id = %(site)s",
                             {"site": listed.site_id})
    zone = await cur.fetchone()
    base = listed.model_dump() if isinstance(listed, ResidentListOut) else {}
    base.update({k: columns[k] for k in ledger.DETAIL_COLUMNS if k != "id"})
    base.update(id=listed.id, open_alerts=listed.open_alerts, devices=listed.devices,
                has_door_code=bool(row[-1]), contacts=contacts, consents=consents,
                site_timezone=str(zone[0]) if zone else "UTC")
    return ResidentDetailOut(**base)


async def save_contacts(conn: AsyncConn, resident_id: int, contacts: list[ContactIn]) -> None:
    """Replace the emergency contacts with `contacts`, in that calling order."""
    await conn.execute(ledger.DELETE_CONTACTS, {"id": resident_id})
    for position, contact in enumerate(contacts, start=1):
        await conn.execute(ledger.INSERT_CONTACT, {"id": resident_id, "position": position,
                                                   **contact.model_dump()})


async def add_consents(conn: AsyncConn, resident_id: int, consents: list[ConsentIn],
                       recorded_by: int | None) -> None:
    """Append consent records."""
    for consent in consents:
        await conn.execute(ledger.INSERT_CONSENT, {"id": resident_id, "recorded_by": recorded_by,
                                                   **consent.model_dump(mode="json")})


async def apply(conn: AsyncConn, resident_id: int, fields: LedgerFields,
                recorded_by: int | None) -> None:
    """Write the fields a create or PATCH sent (the caller holds a transaction)."""
    changes = fields.column_changes()
    changes.pop("site_id", None)
    if changes:
        query, params = ledger.update_statement(changes)
        await conn.execute(query, {**params, "id": resident_id})
    if fields.contacts is not None:
        await save_contacts(conn, resident_id, fields.contacts)
    if fields.new_consents:
        await add_consents(conn, resident_id, fields.new_consents, recorded_by)


_TIMELINE = """
(SELECT a.opened_at, 'alert', a.id::text, a.type || ' (' || a.severity || ')',
        a.status || COALESCE(': ' || a.outcome, '')
 FROM alerts a WHERE a.resident_id = %(id)s ORDER BY a.opened_at DESC LIMIT %(limit)s)
UNION ALL
(SELECT h.time,
        CASE WHEN h.action = 'revoke' THEN 'device_removed'
             WHEN h.action = 'move' AND h.resident_id IS DISTINCT FROM %(id)s
                 THEN 'device_removed'
             ELSE 'device_added' END,
        h.device_id, d.type,
        CASE h.action WHEN 'provision' THEN 'provisioned' WHEN 'revoke' THEN 'revoked'
             ELSE CASE WHEN h.resident_id = %(id)s THEN 'moved here from another resident'
                       ELSE 'moved to another resident' END END
 FROM device_history h JOIN devices d ON d.id = h.device_id
 WHERE h.resident_id = %(id)s OR h.from_resident_id = %(id)s
 ORDER BY h.time DESC LIMIT %(limit)s)
UNION ALL
(SELECT d.created_at, 'device_added', d.id, d.type, NULL
 FROM devices d WHERE d.resident_id = %(id)s
   AND NOT EXISTS (SELECT 1 FROM device_history h WHERE h.device_id = d.id)
 ORDER BY d.created_at DESC LIMIT %(limit)s)
UNION ALL
(SELECT n.created_at, 'note', n.id::text, n.author, n.body
 FROM resident_notes n WHERE n.resident_id = %(id)s ORDER BY n.created_at DESC
 LIMIT %(limit)s)
UNION ALL
(SELECT v.left_at, 'visit', v.id::text,
        CASE WHEN v.follow_up THEN 'follow-up needed' ELSE 'completed' END,
        NULLIF(concat_ws(' / ', NULLIF(v.findings, ''), v.follow_up_note), '')
 FROM visits v WHERE v.resident_id = %(id)s AND v.status = 'completed'
 ORDER BY v.left_at DESC LIMIT %(limit)s)
ORDER BY 1 DESC, 2, 3 LIMIT %(limit)s
"""


async def timeline(conn: AsyncConn, resident_id: int, limit: int) -> list[TimelineEntry]:
    """The newest `limit` events of a resident: alerts, devices provisioned, moved in or out
    and revoked (device_history; a device from before that history: its creation), notes,
    completed visits."""
    cur = await conn.execute(_TIMELINE, {"id": resident_id, "limit": limit})
    return [TimelineEntry(at=at, kind=kind, ref=ref, summary=summary, detail=detail)
            for at, kind, ref, summary, detail in await cur.fetchall()]



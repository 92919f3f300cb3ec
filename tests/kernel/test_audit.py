"""The audit trail's store: append-only, hash-chained, verifiable after pruning."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from kernel import audit, db
from kernel.audit import Action, Actor, Event, Outcome, Target

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _event(minutes: int, action: Action = Action.VITALS_READ, **detail: object) -> Event:
    return Event(T0 + timedelta(minutes=minutes), Actor("care-north", 7, "10.0.0.9"), action,
                 Outcome.OK, Target("resident", 3, 3), dict(detail))


def _append(url: str, *events: Event) -> None:
    with db.connect(url, autocommit=True) as conn:
        for event in events:
            audit.append(conn, event)


def _verify(url: str, since: datetime | None = None) -> audit.Verdict:
    with db.connect(url, autocommit=True) as conn:
        return audit.verify(conn, since)


def test_appended_rows_chain_and_verify(clean_db: str) -> None:
    _append(clean_db, _event(0, note="ünïcode ✓", n=3, ratio=0.25, big=10**20),
            _event(1, Action.ALERT_ACK, before={"status": "open"}))
    with db.connect(clean_db, autocommit=True) as conn:
        rows = conn.execute("SELECT actor, actor_id, address, action, target_type, target_id, "
                            "resident_id, outcome, prev_hash, hash FROM audit_log ORDER BY id"
                            ).fetchall()
    assert rows[0][:8] == ("care-north", 7, "10.0.0.9", "vitals.read", "resident", "3", 3, "ok")
    assert rows[0][8] == audit.GENESIS
    assert rows[1][8] == rows[0][9]
    verdict = _verify(clean_db)
    assert verdict.intact and verdict.checked == 2


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET actor = 'someone-else'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "DELETE FROM audit_anchor",
    "INSERT INTO audit_anchor (id, last_id, hash, pruned_at) VALUES (1, 1, 'x', now())",
    "UPDATE audit_policy SET min_retention = interval '1 day'",
])
def test_the_application_role_may_not_change_the_trail(clean_db: str, statement: str) -> None:
    _append(clean_db, _event(0))
    with db.connect(clean_db, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("eldercare_app",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(statement)
    assert _verify(clean_db).checked == 1


def test_the_application_role_owns_nothing_and_has_no_powers(clean_db: str) -> None:
    with db.connect(clean_db, autocommit=True) as conn:
        role = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls "
                            "FROM pg_roles WHERE rolname = current_user").fetchone()
        owned = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_roles r "
                             "ON r.oid = c.relowner WHERE r.rolname = current_user").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.mine (x int)")
    assert role == (False, False, False, False)
    assert owned == (0,)


def test_even_the_owner_meets_the_trigger(owner_url: str, clean_db: str) -> None:
    _append(clean_db, _event(0))
    with db.connect(owner_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'someone-else'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("DELETE FROM audit_log")
    assert _verify(clean_db).checked == 1


def _tamper(url: str, statement: str) -> None:
    """What a superuser could do behind the application's back: disable the trigger."""
    with db.connect(url) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(statement)
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        conn.commit()


@pytest.mark.parametrize(("statement", "broken"), [
    ("UPDATE audit_log SET actor = 'nobody' WHERE id = 2", 2),
    ("UPDATE audit_log SET detail = '{\"n\": 4}' WHERE id = 3", 3),
    ("DELETE FROM audit_log WHERE id = 2", 3),
])
def test_tampering_is_found_at_the_first_broken_row(clean_db: str, owner_url: str,
                                                    statement: str, broken: int) -> None:
    _append(clean_db, *(_event(i, n=i) for i in range(4)))
    assert _verify(clean_db).intact
    _tamper(owner_url, statement)
    verdict = _verify(clean_db)
    assert not verdict.intact
    assert verdict.broken_id == broken


def test_pruning_keeps_the_rest_verifiable_from_the_anchor(clean_db: str) -> None:
    _append(clean_db, *(_event(i) for i in range(5)))
    with db.connect(clean_db, autocommit=True) as conn:
        assert audit.prune(conn, T0 + timedelta(minutes=2)) == 2
        ids = [r[0] for r in conn.execute("SELECT id FROM audit_log ORDER BY id")]
        anchor = conn.execute("SELECT last_id FROM audit_anchor").fetchone()
    assert ids == [3, 4, 5]
    assert anchor == (2,)
    assert _verify(clean_db).intact
    _append(clean_db, _event(10))
    assert _verify(clean_db).checked == 4
    with db.connect(clean_db, autocommit=True) as conn:  # everything old: all pruned
        assert audit.prune(conn, T0 + timedelta(days=1)) == 4
    _append(clean_db, _event(20))
    assert _verify(clean_db).intact


def test_verify_since_checks_from_that_time(clean_db: str, owner_url: str) -> None:
    _append(clean_db, *(_event(i) for i in range(4)))
    _tamper(owner_url, "UPDATE audit_log SET actor = 'x' WHERE id = 1")
    assert _verify(clean_db).broken_id == 1
    later = _verify(clean_db, T0 + timedelta(minutes=2))
    assert later.intact and later.checked == 2


def test_concurrent_writers_do_not_fork_the_chain(clean_db: str) -> None:
    def writer(n: int) -> None:
        _append(clean_db, *(_event(n * 100 + i) for i in range(25)))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verdict = _verify(clean_db)
    assert verdict.intact and verdict.checked == 100


def test_text_postgresql_would_refuse_is_recorded_readably(clean_db: str) -> None:
    event = Event(T0, Actor("a\x00b", None, "::1"), Action.RESIDENT_READ, Outcome.ERROR,
                  Target("resident", "x\x00\ud800y"), {"k\x00": ["v\ud800"]})
    _append(clean_db, event)
    with db.connect(clean_db, autocommit=True) as conn:
        row = conn.execute("SELECT actor, target_id, detail FROM audit_log").fetchone()
    assert row == ("a?b", "x??y", {"k?": ["v?"]})
    assert _verify(clean_db).intact


def test_pruning_never_reaches_past_the_database_floor(clean_db: str, owner_url: str) -> None:
    """The application asks for a cutoff; the database (audit_policy, owner-only) keeps at
    least its minimum retention whatever the cutoff, so the application role cannot empty
    the trail through the retention path either."""
    now = datetime.now(UTC)  # the server's clock decides the floor, so the rows follow it
    _append(clean_db, Event(now - timedelta(days=400), Actor("a"), Action.LOGIN),
            Event(now - timedelta(days=10), Actor("b"), Action.LOGIN))
    with db.connect(clean_db, autocommit=True) as conn:
        assert audit.prune(conn, now + timedelta(days=1)) == 1
        left = [r[0] for r in conn.execute("SELECT actor FROM audit_log ORDER BY id")]
    assert left == ["b"]
    assert _verify(clean_db).intact
    with db.connect(owner_url, autocommit=True) as conn:  # only the owner may move the floor
        conn.execute("UPDATE audit_policy SET min_retention = interval '5 days'")
    try:
        with db.connect(clean_db, autocommit=True) as conn:
            assert audit.prune(conn, now + timedelta(days=1)) == 1
    finally:
        with db.connect(owner_url, autocommit=True) as conn:
            conn.execute("UPDATE audit_policy SET min_retention = interval '180 days'")
    assert _verify(clean_db).intact

"""The shared fixtures themselves: what `clean_db` empties and what it keeps."""

from __future__ import annotations

from kernel import db, sites
from tests.support.database import count


def test_clean_db_empties_every_table_and_keeps_the_migration_log(clean_db: str, owner_url: str,
                                                                   truncate_sql: str) -> None:
    with db.connect(clean_db) as conn:
        sites.add_site(conn, "north", "North")
        sites.add_resident(conn, "north", "Agnes")
        conn.commit()
    with db.connect(owner_url, autocommit=True) as conn:
        conn.execute(truncate_sql)
        tables = [str(name) for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
    assert {"sites", "residents", "alerts", "sessions"} <= set(tables)
    assert count(owner_url, "SELECT count(*) FROM public._yoyo_migration") > 0
    assert count(clean_db, "SELECT count(*) FROM audit_policy") == 1  # the migration's row
    for table in (t for t in tables if not t.startswith(("_yoyo", "yoyo_", "audit_policy"))):
        assert count(clean_db, f"SELECT count(*) FROM public.{table}") == 0, table

"""Creating and changing sites: the language of their group channels (issue 14)."""

from __future__ import annotations

import pytest

from kernel import db
from kernel.accounts import RegistryError
from kernel.sites import add_site, create_site, update_site

pytestmark = pytest.mark.db


def _language(url: str, site: str) -> str:
    with db.connect(url) as conn:
        row = conn.execute("SELECT language FROM sites WHERE id = %s", (site,)).fetchone()
    assert row is not None
    return str(row[0])


def test_a_site_is_created_and_changed_with_a_language_the_platform_speaks(clean_db):
    with db.connect(clean_db) as conn:
        create_site(conn, "east", "East", "Asia/Shanghai", language="zh-CN")
        create_site(conn, "west", "West")
        add_site(conn, "south", "South", "Asia/Shanghai", "zh-CN")
        conn.commit()
    assert [_language(clean_db, s) for s in ("east", "west", "south")] == ["zh-CN", "en", "zh-CN"]
    with db.connect(clean_db) as conn:
        update_site(conn, "east", language="en")
        update_site(conn, "west", name="West End")  # no language given: left as it is
        conn.commit()
    assert (_language(clean_db, "east"), _language(clean_db, "west")) == ("en", "en")


@pytest.mark.parametrize("call", [
    lambda conn: create_site(conn, "east", "East", language="fr"),
    lambda conn: add_site(conn, "east", "East", language="zh_CN"),
    lambda conn: update_site(conn, "north", language="fr"),
])
def test_a_language_the_platform_does_not_speak_is_refused_by_name(clean_db, call):
    with db.connect(clean_db) as conn:
        add_site(conn, "north", "North")
        with pytest.raises(RegistryError, match=r"unknown language .*: use one of en, zh-CN"):
            call(conn)

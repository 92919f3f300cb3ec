"""`eldercare alerts digest`: writes the outlier digest of a given day now (as the scheduled
job does), prints it with the reasons in words, leaves a written day alone unless --force,
and is audited."""

from __future__ import annotations

import json

import pytest

from kernel import db, sites
from tests.support.cli import run_main
from tests.support.outliers import DIGEST_DAY, WORSE, insert_nights, usual_nights


def test_the_digest_command_writes_and_prints_a_day(cli_db: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with db.connect(cli_db) as conn:
        sites.add_site(conn, "north", "North")
        worse = sites.add_resident(conn, "north", "Worse", "")
        insert_nights(conn, worse, "UTC", usual_nights(1, DIGEST_DAY, shift=WORSE))
        conn.commit()
    code, out, err = run_main(capsys, "alerts", "digest", "--site", "north", "--day",
                              DIGEST_DAY.isoformat())
    assert code == 0, err
    [north] = json.loads(out)
    assert (north["site_id"], north["day"], north["written_now"]) == ("north", "2026-03-10",
                                                                     True)
    [resident] = north["residents"]
    assert resident["resident_id"] == worse
    assert any(r.startswith("Rise time 09:") for r in resident["reasons"])
    code, out, _ = run_main(capsys, "alerts", "digest", "--site", "north", "--day",
                            DIGEST_DAY.isoformat())
    assert json.loads(out)[0]["written_now"] is False  # a written day is left alone
    code, out, _ = run_main(capsys, "alerts", "digest", "--site", "north", "--day",
                            DIGEST_DAY.isoformat(), "--force")
    assert json.loads(out)[0]["written_now"] is True
    with db.connect(cli_db) as conn:
        rows = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'digest.read'"
                            ).fetchone()
    assert rows == (3,)

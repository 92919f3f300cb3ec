"""The outlier digest's daily job on the real database: it fits and saves each resident's
model, writes one digest per site and day (idempotent), reuses the saved model after a
restart, refits when the stored scikit-learn version is not ours, skips residents with too
little history or switched off, ignores days of poor coverage, and never opens an alert."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from alerts.config import AlertSettings
from alerts.learning import outliers, store
from alerts.overrides import set_override
from kernel import db, sites
from tests.support.outliers import WORSE, daily_done, insert_nights, usual_nights

ZONE = "Asia/Shanghai"
DAY = date(2026, 3, 10)
# 02:00 UTC = 10:00 in Shanghai on DAY: every day before DAY is summarised
DONE = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
NOW = DONE + timedelta(minutes=5)


def seed(url: str) -> dict[str, int]:
    with db.connect(url) as conn:
        sites.add_site(conn, "north", "North", ZONE)
        sites.add_site(conn, "south", "South", "Europe/Oslo")
        ids = {name: sites.add_resident(conn, "north", name, "")
               for name in ("Worse", "Steady", "New", "Off")}
        ids["South"] = sites.add_resident(conn, "south", "South", "")
        insert_nights(conn, ids["Worse"], ZONE, usual_nights(1, DAY, shift=WORSE))
        insert_nights(conn, ids["Steady"], ZONE, usual_nights(2, DAY))
        insert_nights(conn, ids["New"], ZONE, usual_nights(3, DAY, n=10, shift=WORSE))
        insert_nights(conn, ids["Off"], ZONE, usual_nights(4, DAY, shift=WORSE))
        set_override(conn, AlertSettings(), {"outlier_digest": {"enabled": False}},
                     resident=ids["Off"])
        daily_done(conn, DONE)
        conn.commit()
    return ids


def digest(url: str, site: str, day: date) -> tuple[object, ...] | None:
    with db.connect(url) as conn:
        return conn.execute("SELECT scored, skipped, entries, computed_at FROM outlier_digests "
                            "WHERE site_id = %s AND day = %s", (site, day)).fetchone()


def models(url: str) -> list[tuple[object, ...]]:
    with db.connect(url) as conn:
        return conn.execute("SELECT resident_id, model_version, fitted_at, window_start, "
                            "window_end, n_days FROM outlier_models "
                            "ORDER BY resident_id, model_version").fetchall()


def test_the_job_fits_saves_and_writes_the_digest_once(clean_db: str) -> None:
    ids = seed(clean_db)
    with db.connect(clean_db, autocommit=True) as conn:
        runs = outliers.run_digest(conn, NOW)
    assert {(r.site_id, r.day) for r in runs} == {("north", DAY), ("south", DAY)}
    row = digest(clean_db, "north", DAY)
    assert row is not None
    scored, skipped, entries, _ = row
    assert (scored, skipped) == (2, 2)  # New: too little history; Off: switched off
    assert [e["resident_id"] for e in entries] == [ids["Worse"]]  # type: ignore[attr-defined]
    reasons = {r["feature"] for r in entries[0]["reasons"]}  # type: ignore[index]
    assert {"rise_time", "night_exits"} <= reasons
    assert entries[0]["nights"] == ["2026-03-07", "2026-03-08", "2026-03-09"]  # type: ignore[index]
    saved = models(clean_db)
    assert [(m[0], m[1]) for m in saved] == [(ids["Worse"], 1), (ids["Steady"], 1)]
    assert all(m[3] == DAY - timedelta(days=60) and m[4] == DAY - timedelta(days=4)
               and m[5] == 57 for m in saved)
    # idempotent: a second run the same day writes nothing new
    with db.connect(clean_db, autocommit=True) as conn:
        again = outliers.run_digest(conn, NOW + timedelta(minutes=15))
    assert not any(r.written for r in again)
    assert digest(clean_db, "north", DAY) == row
    with db.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)


def test_a_restart_loads_the_saved_model_and_scores_the_next_day(clean_db: str) -> None:
    ids = seed(clean_db)
    with db.connect(clean_db, autocommit=True) as conn:
        outliers.run_digest(conn, NOW)
    before = models(clean_db)
    # the next day, on a new connection (a restarted jobs process): same models, new digest
    with db.connect(clean_db, autocommit=True) as conn:
        insert_nights(conn, ids["Worse"], ZONE, usual_nights(1, DAY + timedelta(days=1),
                                                             n=1, shift=WORSE, shifted=1))
        daily_done(conn, DONE + timedelta(days=1))
        outliers.run_digest(conn, NOW + timedelta(days=1))
    assert models(clean_db) == before
    row = digest(clean_db, "north", DAY + timedelta(days=1))
    assert row is not None and [e["resident_id"] for e in row[2]] == [ids["Worse"]]  # type: ignore[attr-defined]


def test_a_model_of_another_scikit_learn_version_is_refitted_identically(clean_db: str
                                                                         ) -> None:
    ids = seed(clean_db)
    with db.connect(clean_db, autocommit=True) as conn:
        outliers.run_digest(conn, NOW)
        first = outliers.latest_model(conn, ids["Worse"])
        conn.execute("UPDATE outlier_models SET params = jsonb_set(params, "
                     "'{sklearn_version}', '\"0.0.1\"'), model = 'not a pickle'")
        outliers.run_digest(conn, NOW, force=True)
        second = outliers.latest_model(conn, ids["Worse"])
    assert first is not None and second is not None
    assert second.version == 2
    assert second.params["train_scores"] == first.params["train_scores"]
    assert (second.window_start, second.window_end) == (first.window_start, first.window_end)


def test_days_of_poor_coverage_are_left_out(clean_db: str) -> None:
    ids = seed(clean_db)
    with db.connect(clean_db, autocommit=True) as conn:
        # the sensor was off most of the last three days of Steady (device fault)
        insert_nights(conn, ids["Steady"], ZONE, usual_nights(2, DAY, n=3, shift=WORSE),
                      data_minutes=300)
        got = store.load_days(conn, [ids["Steady"]], DAY - timedelta(days=5),
                              DAY - timedelta(days=1))[ids["Steady"]]
        outliers.run_digest(conn, NOW)
    assert [d.day for d in got if d.well_covered] == [DAY - timedelta(days=k) for k in (5, 4)]
    _, recent = outliers.split(got, DAY, 3)
    assert recent == []  # too few good nights lately: not scored
    row = digest(clean_db, "north", DAY)
    assert row is not None and ids["Steady"] not in {e["resident_id"] for e in row[2]}  # type: ignore[attr-defined]


def test_the_jobs_scheduler_runs_the_digest_after_the_daily_summaries(clean_db: str) -> None:
    """As `eldercare jobs` wires it: an extra job of the storage scheduler."""
    from ingest.jobs import JobSettings, start_scheduler
    from tests.support.wait import wait_until

    seed(clean_db)
    quick = JobSettings(rollup_interval_s=0.2, daily_interval_s=0.2, maintenance_interval_s=60)
    scheduler = start_scheduler(clean_db, quick, clock=lambda: NOW, extra=[
        (outliers.DIGEST_JOB, outliers.digest_job(AlertSettings()), 0.2)])
    try:
        assert outliers.DIGEST_JOB in {j.id for j in scheduler.get_jobs()}
        wait_until(lambda: digest(clean_db, "north", DAY) is not None,
                   timeout=60, what="the scheduled digest")
    finally:
        scheduler.shutdown(wait=True)
    row = digest(clean_db, "north", DAY)
    assert row is not None and len(row[2]) == 1  # type: ignore[arg-type]

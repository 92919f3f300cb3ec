-- The daily digest's per-resident outlier models and the digests they feed (issue 15, the
-- multivariate second signal; alerts/learning/outliers.py, docs/alerts.md "Daily digest").
-- depends: 0019_notify_demo

-- One fitted model per resident and version: what it saw (the window of resident_daily days
-- and how many of them were usable), how it standardises (params: features, medians,
-- spreads, the training days' scores, scikit-learn version, random_state) and the model
-- itself (a zlib-compressed pickle of a scikit-learn IsolationForest, ~150 kB). A model
-- pickled by another scikit-learn version is never unpickled: it is refitted,
-- deterministically (fixed random_state), from the days in resident_daily.
CREATE TABLE outlier_models (
    resident_id    bigint NOT NULL REFERENCES residents(id) ON DELETE CASCADE,
    model_version  int NOT NULL CHECK (model_version >= 1),
    fitted_at      timestamptz NOT NULL,
    window_start   date NOT NULL,
    window_end     date NOT NULL,
    n_days         int NOT NULL CHECK (n_days > 0),
    params         jsonb NOT NULL,
    model          bytea NOT NULL,
    PRIMARY KEY (resident_id, model_version),
    CHECK (window_start <= window_end)
);

-- One digest per site and local day: the residents whose last nights look unlike their
-- usual (entries: resident, score, the nights scored and the top contributing features with
-- their recent and usual values). Written once a day by the jobs process, never an alert.
CREATE TABLE outlier_digests (
    site_id        text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    day            date NOT NULL,
    computed_at    timestamptz NOT NULL,
    scored         int NOT NULL,       -- residents with a model that were scored
    skipped        int NOT NULL,       -- residents switched off or with too little history
    entries        jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (site_id, day)
);

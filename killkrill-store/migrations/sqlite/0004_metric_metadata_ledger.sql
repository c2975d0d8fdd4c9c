-- Metric family metadata (TYPE, HELP, UNIT), one row per (tenant, family);
-- a later write about the same family replaces the row. The key is a hash
-- of the family (as on MySQL, whose key length is limited).
CREATE TABLE metric_metadata (
    tenant      TEXT  NOT NULL,
    family_hash BLOB  NOT NULL,
    family      TEXT  NOT NULL,
    kind        TEXT  NOT NULL,
    help        TEXT,
    unit        TEXT,
    PRIMARY KEY (tenant, family_hash)
) WITHOUT ROWID;

-- The rollup ledger: every batch whose rollups are stored, written in the
-- same transaction as the partials, so a redelivered batch is aggregated
-- once. high_water is the tenant's latest event time after that flush.
CREATE TABLE metric_rollup_batches (
    tenant     TEXT    NOT NULL,
    batch_id   BLOB    NOT NULL,
    flush_key  BLOB    NOT NULL,
    high_water INTEGER,
    PRIMARY KEY (tenant, batch_id)
) WITHOUT ROWID;

-- The head: small chunks (a few samples of a series, the shape of one
-- scrape or remote_write request) in time-major order, so a write appends
-- instead of touching one index page per series. Background compaction
-- merges a series' head chunks into full chunks in metric_chunks. Reads
-- use both tables. A head chunk spans at most one hour (the read bound).
CREATE TABLE metric_head_chunks (
    tenant       TEXT    NOT NULL,
    min_ts       INTEGER NOT NULL,
    series_id    INTEGER NOT NULL,
    chunk_id     BLOB    NOT NULL,
    max_ts       INTEGER NOT NULL,
    sample_count INTEGER NOT NULL,
    data         BLOB    NOT NULL,
    PRIMARY KEY (tenant, min_ts, series_id, chunk_id)
) WITHOUT ROWID;

-- Metric family metadata (TYPE, HELP, UNIT), one row per (tenant, family);
-- a later write about the same family replaces the row. Family names and
-- texts are at most 4096 bytes (checked before writing); the key uses a
-- hash of the family (InnoDB key length limit).
CREATE TABLE metric_metadata (
    tenant      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    family_hash BINARY(16)  NOT NULL,
    family      TEXT        CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    kind        VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    help        TEXT        CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    unit        TEXT        CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    PRIMARY KEY (tenant, family_hash)
) ENGINE = InnoDB;

-- The rollup ledger: every batch whose rollups are stored, written in the
-- same transaction as the partials, so a redelivered batch is aggregated
-- once. high_water is the tenant's latest event time after that flush.
CREATE TABLE metric_rollup_batches (
    tenant     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    batch_id   BINARY(16) NOT NULL,
    flush_key  BINARY(16) NOT NULL,
    high_water BIGINT,
    PRIMARY KEY (tenant, batch_id)
) ENGINE = InnoDB;

-- The head: small chunks (a few samples of a series, the shape of one
-- scrape or remote_write request) in time-major order, so a write appends
-- instead of touching one index page per series. Background compaction
-- merges a series' head chunks into full chunks in metric_chunks. Reads
-- use both tables. A head chunk spans at most one hour (the read bound).
CREATE TABLE metric_head_chunks (
    tenant       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    min_ts       BIGINT     NOT NULL,
    series_id    BIGINT     NOT NULL,
    chunk_id     BINARY(16) NOT NULL,
    max_ts       BIGINT     NOT NULL,
    sample_count INT        NOT NULL,
    data         MEDIUMBLOB NOT NULL,
    PRIMARY KEY (tenant, min_ts, series_id, chunk_id)
) ENGINE = InnoDB;

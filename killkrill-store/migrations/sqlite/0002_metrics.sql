-- Metric series index: one row per (tenant, series); labels as JSON text.
-- first_seen / last_seen are sample times widened to whole hours.
CREATE TABLE metric_series (
    tenant     TEXT    NOT NULL,
    series_id  INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    labels     TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (tenant, series_id)
) WITHOUT ROWID;
CREATE INDEX metric_series_name ON metric_series (tenant, name);
CREATE INDEX metric_series_last ON metric_series (tenant, last_seen);

-- Samples in compressed chunks (delta-of-delta + XOR). The chunk id derives
-- from tenant, series and content, so rewriting a batch inserts nothing.
CREATE TABLE metric_chunks (
    tenant       TEXT    NOT NULL,
    series_id    INTEGER NOT NULL,
    min_ts       INTEGER NOT NULL,
    chunk_id     BLOB    NOT NULL,
    max_ts       INTEGER NOT NULL,
    sample_count INTEGER NOT NULL,
    data         BLOB    NOT NULL,
    PRIMARY KEY (tenant, series_id, min_ts, chunk_id)
);
CREATE INDEX metric_chunks_age ON metric_chunks (tenant, max_ts);

-- Rollup partials, one row per (series, resolution, window, late, flush);
-- reads merge the partials of a window exactly.
CREATE TABLE metric_rollups (
    tenant        TEXT    NOT NULL,
    series_id     INTEGER NOT NULL,
    resolution_ns INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    late          INTEGER NOT NULL,
    flush_key     BLOB    NOT NULL,
    window_end    INTEGER NOT NULL,
    data          BLOB    NOT NULL,
    PRIMARY KEY (tenant, series_id, resolution_ns, window_start, late, flush_key)
) WITHOUT ROWID;
CREATE INDEX metric_rollups_age ON metric_rollups (tenant, window_end);

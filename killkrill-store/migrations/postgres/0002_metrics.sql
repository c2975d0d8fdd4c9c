-- Metric series index: one row per (tenant, series); labels as JSON text.
-- first_seen / last_seen are sample times widened to whole hours.
CREATE TABLE metric_series (
    tenant     TEXT   NOT NULL,
    series_id  BIGINT NOT NULL,
    name       TEXT   NOT NULL,
    labels     TEXT   NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    PRIMARY KEY (tenant, series_id)
);
CREATE INDEX metric_series_name ON metric_series (tenant, name);
CREATE INDEX metric_series_last ON metric_series (tenant, last_seen);

-- Samples in compressed chunks (delta-of-delta + XOR). The chunk id derives
-- from tenant, series and content, so rewriting a batch inserts nothing.
CREATE TABLE metric_chunks (
    tenant       TEXT    NOT NULL,
    series_id    BIGINT  NOT NULL,
    min_ts       BIGINT  NOT NULL,
    chunk_id     BYTEA   NOT NULL,
    max_ts       BIGINT  NOT NULL,
    sample_count BIGINT  NOT NULL,
    data         BYTEA   NOT NULL,
    PRIMARY KEY (tenant, series_id, min_ts, chunk_id)
);
-- Chunks are already compressed: do not let TOAST try again.
ALTER TABLE metric_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX metric_chunks_age ON metric_chunks (tenant, max_ts);

-- Rollup partials, one row per (series, resolution, window, late, flush);
-- reads merge the partials of a window exactly.
CREATE TABLE metric_rollups (
    tenant        TEXT     NOT NULL,
    series_id     BIGINT   NOT NULL,
    resolution_ns BIGINT   NOT NULL,
    window_start  BIGINT   NOT NULL,
    late          SMALLINT NOT NULL,
    flush_key     BYTEA    NOT NULL,
    window_end    BIGINT   NOT NULL,
    data          BYTEA    NOT NULL,
    PRIMARY KEY (tenant, series_id, resolution_ns, window_start, late, flush_key)
);
CREATE INDEX metric_rollups_age ON metric_rollups (tenant, window_end);

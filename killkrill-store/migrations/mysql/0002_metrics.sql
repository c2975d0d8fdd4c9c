-- Metric series index: one row per (tenant, series); labels as JSON text.
-- first_seen / last_seen are sample times widened to whole hours.
-- Names are at most 1024 bytes (checked before writing); the name index is
-- a prefix index (InnoDB key length limit).
CREATE TABLE metric_series (
    tenant     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    series_id  BIGINT      NOT NULL,
    name       VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    labels     MEDIUMTEXT  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    first_seen BIGINT      NOT NULL,
    last_seen  BIGINT      NOT NULL,
    PRIMARY KEY (tenant, series_id),
    KEY metric_series_name (tenant, name(512)),
    KEY metric_series_last (tenant, last_seen)
) ENGINE = InnoDB;

-- Samples in compressed chunks (delta-of-delta + XOR). The chunk id derives
-- from tenant, series and content, so rewriting a batch inserts nothing.
CREATE TABLE metric_chunks (
    tenant       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    series_id    BIGINT     NOT NULL,
    min_ts       BIGINT     NOT NULL,
    chunk_id     BINARY(16) NOT NULL,
    max_ts       BIGINT     NOT NULL,
    sample_count INT        NOT NULL,
    data         MEDIUMBLOB NOT NULL,
    PRIMARY KEY (tenant, series_id, min_ts, chunk_id),
    KEY metric_chunks_age (tenant, max_ts)
) ENGINE = InnoDB;

-- Rollup partials, one row per (series, resolution, window, late, flush);
-- reads merge the partials of a window exactly.
CREATE TABLE metric_rollups (
    tenant        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    series_id     BIGINT     NOT NULL,
    resolution_ns BIGINT     NOT NULL,
    window_start  BIGINT     NOT NULL,
    late          SMALLINT   NOT NULL,
    flush_key     BINARY(16) NOT NULL,
    window_end    BIGINT     NOT NULL,
    data          MEDIUMBLOB NOT NULL,
    PRIMARY KEY (tenant, series_id, resolution_ns, window_start, late, flush_key),
    KEY metric_rollups_age (tenant, window_end)
) ENGINE = InnoDB;

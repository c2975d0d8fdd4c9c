-- The rollup head: the partials of recent flushes, keyed by flush first so
-- that a flush appends one contiguous run of rows (a few pages) instead of
-- one row next to each series' earlier partials (a page per series and
-- resolution). The store merges a tenant's head into metric_rollups, one
-- row per (series, resolution, window, late), every few flushes; reads use
-- both tables.
CREATE TABLE metric_rollup_head (
    tenant        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    flush_key     BINARY(16) NOT NULL,
    series_id     BIGINT     NOT NULL,
    resolution_ns BIGINT     NOT NULL,
    window_start  BIGINT     NOT NULL,
    late          SMALLINT   NOT NULL,
    window_end    BIGINT     NOT NULL,
    data          MEDIUMBLOB NOT NULL,
    PRIMARY KEY (tenant, flush_key, series_id, resolution_ns, window_start, late)
) ENGINE = InnoDB;

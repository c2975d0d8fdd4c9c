-- The rollup head: the partials of recent flushes, keyed by flush first so
-- that a flush appends one contiguous run of rows (a few pages) instead of
-- one row next to each series' earlier partials (a page per series and
-- resolution). The store merges a tenant's head into metric_rollups, one
-- row per (series, resolution, window, late), every few flushes; reads use
-- both tables.
CREATE TABLE metric_rollup_head (
    tenant        TEXT    NOT NULL,
    flush_key     BLOB    NOT NULL,
    series_id     INTEGER NOT NULL,
    resolution_ns INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    late          INTEGER NOT NULL,
    window_end    INTEGER NOT NULL,
    data          BLOB    NOT NULL,
    PRIMARY KEY (tenant, flush_key, series_id, resolution_ns, window_start, late)
) WITHOUT ROWID;

-- Log blocks: one row per block of up to a few thousand records of one
-- tenant; summary columns for pruning, the records in `payload` (zstd).
-- A rowid table: rows are large, which WITHOUT ROWID handles badly.
CREATE TABLE log_blocks (
    tenant       TEXT    NOT NULL,
    block_id     BLOB    NOT NULL,
    min_ts       INTEGER NOT NULL,
    max_ts       INTEGER NOT NULL,
    record_count INTEGER NOT NULL,
    summary      BLOB    NOT NULL,
    tokens       BLOB    NOT NULL,
    payload      BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant, block_id)
);
CREATE INDEX log_blocks_newest ON log_blocks (tenant, max_ts, block_id);
CREATE INDEX log_blocks_oldest ON log_blocks (tenant, min_ts, block_id);

-- Every block id ever written from a batch (compaction does not delete
-- these; retention trims them by age), so a redelivered batch is skipped
-- even after its block was merged away.
CREATE TABLE log_block_ids (
    tenant      TEXT    NOT NULL,
    block_id    BLOB    NOT NULL,
    written_at  INTEGER NOT NULL,
    write_token INTEGER NOT NULL,
    PRIMARY KEY (tenant, block_id)
) WITHOUT ROWID;
CREATE INDEX log_block_ids_written ON log_block_ids (tenant, written_at);

-- Batches the pipeline gave up on, with their error.
CREATE TABLE dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant        TEXT    NOT NULL,
    dedupe_key    BLOB    NOT NULL,
    kind          TEXT    NOT NULL,
    payload       BLOB    NOT NULL,
    error         TEXT    NOT NULL,
    attempts      INTEGER NOT NULL,
    first_failure INTEGER NOT NULL,
    last_failure  INTEGER NOT NULL,
    UNIQUE (tenant, dedupe_key)
);

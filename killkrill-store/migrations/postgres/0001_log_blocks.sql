-- Log blocks: one row per block of up to a few thousand records of one
-- tenant; summary columns for pruning, the records in `payload` (zstd).
CREATE TABLE log_blocks (
    tenant       TEXT   NOT NULL,
    block_id     BYTEA  NOT NULL,
    min_ts       BIGINT NOT NULL,
    max_ts       BIGINT NOT NULL,
    record_count BIGINT NOT NULL,
    summary      BYTEA  NOT NULL,
    tokens       BYTEA  NOT NULL,
    payload      BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant, block_id)
);
-- Payloads and filters are already compressed: do not let TOAST try again.
ALTER TABLE log_blocks ALTER COLUMN payload SET STORAGE EXTERNAL;
ALTER TABLE log_blocks ALTER COLUMN tokens SET STORAGE EXTERNAL;
CREATE INDEX log_blocks_newest ON log_blocks (tenant, max_ts, block_id);
CREATE INDEX log_blocks_oldest ON log_blocks (tenant, min_ts, block_id);

-- Every block id ever written from a batch (compaction does not delete
-- these; retention trims them by age), so a redelivered batch is skipped
-- even after its block was merged away.
CREATE TABLE log_block_ids (
    tenant      TEXT   NOT NULL,
    block_id    BYTEA  NOT NULL,
    written_at  BIGINT NOT NULL,
    write_token BIGINT NOT NULL,
    PRIMARY KEY (tenant, block_id)
);
CREATE INDEX log_block_ids_written ON log_block_ids (tenant, written_at);

-- Batches the pipeline gave up on, with their error.
CREATE TABLE dead_letters (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant        TEXT   NOT NULL,
    dedupe_key    BYTEA  NOT NULL,
    kind          TEXT   NOT NULL,
    payload       BYTEA  NOT NULL,
    error         TEXT   NOT NULL,
    attempts      BIGINT NOT NULL,
    first_failure BIGINT NOT NULL,
    last_failure  BIGINT NOT NULL,
    UNIQUE (tenant, dedupe_key)
);

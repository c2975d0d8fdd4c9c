-- Log blocks: one row per block of up to a few thousand records of one
-- tenant; summary columns for pruning, the records in `payload` (zstd).
-- Every table has a primary key (Galera requires it).
CREATE TABLE log_blocks (
    tenant       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    block_id     BINARY(16) NOT NULL,
    min_ts       BIGINT     NOT NULL,
    max_ts       BIGINT     NOT NULL,
    record_count BIGINT     NOT NULL,
    summary      BLOB       NOT NULL,
    tokens       LONGBLOB   NOT NULL,
    payload      LONGBLOB   NOT NULL,
    created_at   BIGINT     NOT NULL,
    PRIMARY KEY (tenant, block_id),
    KEY log_blocks_newest (tenant, max_ts, block_id),
    KEY log_blocks_oldest (tenant, min_ts, block_id)
) ENGINE = InnoDB;

-- Every block id ever written from a batch (compaction does not delete
-- these; retention trims them by age), so a redelivered batch is skipped
-- even after its block was merged away.
CREATE TABLE log_block_ids (
    tenant      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    block_id    BINARY(16) NOT NULL,
    written_at  BIGINT     NOT NULL,
    write_token BIGINT     NOT NULL,
    PRIMARY KEY (tenant, block_id),
    KEY log_block_ids_written (tenant, written_at)
) ENGINE = InnoDB;

-- Batches the pipeline gave up on, with their error.
CREATE TABLE dead_letters (
    id            BIGINT      NOT NULL AUTO_INCREMENT,
    tenant        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    dedupe_key    BINARY(16)  NOT NULL,
    kind          VARCHAR(64) NOT NULL,
    payload       LONGBLOB    NOT NULL,
    error         TEXT        NOT NULL,
    attempts      BIGINT      NOT NULL,
    first_failure BIGINT      NOT NULL,
    last_failure  BIGINT      NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY dead_letters_dedupe (tenant, dedupe_key)
) ENGINE = InnoDB;

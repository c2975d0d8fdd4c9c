-- The change generation of each tenant's block set, for the in-memory
-- summary index (logs/summary_index.rs). Every transaction that adds or
-- deletes blocks of a tenant bumps `gen` (and sets `deleted_gen` to it when
-- it deleted blocks) and stamps the blocks it added with that generation.
-- The bump takes the tenant's row lock until commit, so generations become
-- visible in order: a reader that sees generation G sees every block
-- stamped G or less. Rows written before this migration keep gen -1 (only
-- full listings see them, which is what a fresh index starts with).
ALTER TABLE log_blocks ADD COLUMN gen BIGINT NOT NULL DEFAULT -1;
CREATE INDEX log_blocks_gen ON log_blocks (tenant, gen);
CREATE TABLE log_block_gen (
    tenant      TEXT   NOT NULL PRIMARY KEY,
    gen         BIGINT NOT NULL,
    deleted_gen BIGINT NOT NULL
);

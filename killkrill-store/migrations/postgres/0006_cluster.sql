-- Coordination between processes sharing this database.
-- cluster_secrets: values every process must agree on (the generated JWT
-- signing secret when JWT_SECRET is unset), created once by whichever
-- process gets there first.
CREATE TABLE cluster_secrets (
    name       TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- cluster_leases: work that must run on one process at a time (scraping).
-- The owner renews expires_at (ms since the epoch); anyone may take a
-- lease whose expires_at has passed.
CREATE TABLE cluster_leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    owner      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

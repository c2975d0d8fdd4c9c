-- Coordination between processes sharing this database.
-- cluster_secrets: values every process must agree on (the generated JWT
-- signing secret when JWT_SECRET is unset), created once by whichever
-- process gets there first.
CREATE TABLE cluster_secrets (
    name       VARCHAR(64)  NOT NULL PRIMARY KEY,
    value      VARCHAR(512) NOT NULL,
    created_at BIGINT       NOT NULL
);

-- cluster_leases: work that must run on one process at a time (scraping).
-- The owner renews expires_at (ms since the epoch); anyone may take a
-- lease whose expires_at has passed.
CREATE TABLE cluster_leases (
    name       VARCHAR(64)  NOT NULL PRIMARY KEY,
    owner      VARCHAR(128) NOT NULL,
    expires_at BIGINT       NOT NULL
);

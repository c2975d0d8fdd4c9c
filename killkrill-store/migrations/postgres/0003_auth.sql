-- Authentication and authorisation: tenants, users, refresh tokens, API
-- keys and the audit log. Secrets are never stored: passwords as argon2id
-- PHC strings, refresh tokens and API keys as SHA-256 digests.
CREATE TABLE auth_tenants (
    name       TEXT   NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE auth_users (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           TEXT   NOT NULL UNIQUE,
    tenant          TEXT   NOT NULL,
    role            TEXT   NOT NULL,
    password_hash   TEXT   NOT NULL,
    failed_logins   BIGINT NOT NULL DEFAULT 0,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    totp_secret     TEXT,
    totp_enabled    SMALLINT NOT NULL DEFAULT 0,
    totp_last_step  BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX auth_users_tenant ON auth_users (tenant);

CREATE TABLE auth_refresh_tokens (
    token_hash BYTEA    NOT NULL PRIMARY KEY,
    user_id    BIGINT   NOT NULL,
    family_id  BYTEA    NOT NULL,
    expires_at BIGINT   NOT NULL,
    used       SMALLINT NOT NULL DEFAULT 0,
    revoked    SMALLINT NOT NULL DEFAULT 0,
    created_at BIGINT   NOT NULL
);
CREATE INDEX auth_refresh_family ON auth_refresh_tokens (family_id);
CREATE INDEX auth_refresh_user ON auth_refresh_tokens (user_id);

-- TOTP recovery codes, single use, as SHA-256.
CREATE TABLE auth_recovery_codes (
    user_id   BIGINT   NOT NULL,
    code_hash BYTEA    NOT NULL,
    used      SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE auth_api_keys (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_hash   BYTEA    NOT NULL UNIQUE,
    prefix     TEXT     NOT NULL,
    name       TEXT     NOT NULL,
    tenant     TEXT     NOT NULL,
    scopes     TEXT     NOT NULL,
    expires_at BIGINT,
    revoked    SMALLINT NOT NULL DEFAULT 0,
    created_by TEXT     NOT NULL,
    created_at BIGINT   NOT NULL
);
CREATE INDEX auth_api_keys_tenant ON auth_api_keys (tenant);

CREATE TABLE auth_audit (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    tenant  TEXT   NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    target  TEXT   NOT NULL,
    source  TEXT   NOT NULL,
    result  TEXT   NOT NULL,
    detail  TEXT   NOT NULL
);
CREATE INDEX auth_audit_tenant ON auth_audit (tenant, id);

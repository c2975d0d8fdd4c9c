-- Authentication and authorisation: tenants, users, refresh tokens, API
-- keys and the audit log. Secrets are never stored: passwords as argon2id
-- PHC strings, refresh tokens and API keys as SHA-256 digests.
CREATE TABLE auth_tenants (
    name       TEXT    NOT NULL PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TABLE auth_users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    email           TEXT    NOT NULL UNIQUE,
    tenant          TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER NOT NULL DEFAULT 0,
    totp_secret     TEXT,
    totp_enabled    INTEGER NOT NULL DEFAULT 0,
    totp_last_step  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX auth_users_tenant ON auth_users (tenant);

CREATE TABLE auth_refresh_tokens (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    family_id  BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    revoked    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX auth_refresh_family ON auth_refresh_tokens (family_id);
CREATE INDEX auth_refresh_user ON auth_refresh_tokens (user_id);

-- TOTP recovery codes, single use, as SHA-256.
CREATE TABLE auth_recovery_codes (
    user_id   INTEGER NOT NULL,
    code_hash BLOB    NOT NULL,
    used      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

CREATE TABLE auth_api_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash   BLOB    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    tenant     TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    expires_at INTEGER,
    revoked    INTEGER NOT NULL DEFAULT 0,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX auth_api_keys_tenant ON auth_api_keys (tenant);

CREATE TABLE auth_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    tenant  TEXT    NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    source  TEXT    NOT NULL,
    result  TEXT    NOT NULL,
    detail  TEXT    NOT NULL
);
CREATE INDEX auth_audit_tenant ON auth_audit (tenant, id);

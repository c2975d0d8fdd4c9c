-- Per-tenant settings (retention, scrape targets) as one JSON document per
-- tenant, validated by the service before it is written; single-use email
-- tokens (password reset, email confirmation) as SHA-256; when a user's
-- email was confirmed. TOTP secrets are stored encrypted from now on (the
-- service re-encrypts clear-text rows at start).
CREATE TABLE tenant_settings (
    tenant     TEXT    NOT NULL PRIMARY KEY,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL
);

CREATE TABLE auth_email_tokens (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    purpose    TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX auth_email_tokens_user ON auth_email_tokens (user_id);

ALTER TABLE auth_users ADD COLUMN email_confirmed_at INTEGER;

-- Per-tenant settings (retention, scrape targets) as one JSON document per
-- tenant, validated by the service before it is written; single-use email
-- tokens (password reset, email confirmation) as SHA-256; when a user's
-- email was confirmed. TOTP secrets are stored encrypted from now on (the
-- service re-encrypts clear-text rows at start), which needs a wider column.
CREATE TABLE tenant_settings (
    tenant     VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    body       MEDIUMTEXT   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    updated_at BIGINT       NOT NULL,
    updated_by VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (tenant)
) ENGINE = InnoDB;

CREATE TABLE auth_email_tokens (
    token_hash BINARY(32)  NOT NULL,
    user_id    BIGINT      NOT NULL,
    purpose    VARCHAR(16) NOT NULL,
    expires_at BIGINT      NOT NULL,
    used       SMALLINT    NOT NULL DEFAULT 0,
    created_at BIGINT      NOT NULL,
    PRIMARY KEY (token_hash),
    KEY auth_email_tokens_user (user_id)
) ENGINE = InnoDB;

ALTER TABLE auth_users
    MODIFY totp_secret VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ADD COLUMN email_confirmed_at BIGINT NULL;

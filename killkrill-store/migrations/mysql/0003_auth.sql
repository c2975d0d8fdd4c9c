-- Authentication and authorisation: tenants, users, refresh tokens, API
-- keys and the audit log. Secrets are never stored: passwords as argon2id
-- PHC strings, refresh tokens and API keys as SHA-256 digests.
-- Every table has a primary key (Galera).
CREATE TABLE auth_tenants (
    name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at BIGINT      NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;

CREATE TABLE auth_users (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    email         VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    tenant        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    role          VARCHAR(16)  NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    failed_logins BIGINT       NOT NULL DEFAULT 0,
    locked_until  BIGINT       NOT NULL DEFAULT 0,
    totp_secret   VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    totp_enabled  SMALLINT     NOT NULL DEFAULT 0,
    totp_last_step BIGINT      NOT NULL DEFAULT 0,
    created_at    BIGINT       NOT NULL,
    updated_at    BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY auth_users_email (email),
    KEY auth_users_tenant (tenant)
) ENGINE = InnoDB;

CREATE TABLE auth_refresh_tokens (
    token_hash BINARY(32) NOT NULL,
    user_id    BIGINT     NOT NULL,
    family_id  BINARY(16) NOT NULL,
    expires_at BIGINT     NOT NULL,
    used       SMALLINT   NOT NULL DEFAULT 0,
    revoked    SMALLINT   NOT NULL DEFAULT 0,
    created_at BIGINT     NOT NULL,
    PRIMARY KEY (token_hash),
    KEY auth_refresh_family (family_id),
    KEY auth_refresh_user (user_id)
) ENGINE = InnoDB;

-- TOTP recovery codes, single use, as SHA-256.
CREATE TABLE auth_recovery_codes (
    user_id   BIGINT     NOT NULL,
    code_hash BINARY(32) NOT NULL,
    used      SMALLINT   NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, code_hash)
) ENGINE = InnoDB;

CREATE TABLE auth_api_keys (
    id         BIGINT       NOT NULL AUTO_INCREMENT,
    key_hash   BINARY(32)   NOT NULL,
    prefix     VARCHAR(32)  NOT NULL,
    name       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    tenant     VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    scopes     VARCHAR(64)  NOT NULL,
    expires_at BIGINT       NULL,
    revoked    SMALLINT     NOT NULL DEFAULT 0,
    created_by VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY auth_api_keys_hash (key_hash),
    KEY auth_api_keys_tenant (tenant)
) ENGINE = InnoDB;

CREATE TABLE auth_audit (
    id     BIGINT       NOT NULL AUTO_INCREMENT,
    at     BIGINT       NOT NULL,
    tenant VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    actor  VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    action VARCHAR(64)  NOT NULL,
    target VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    source VARCHAR(64)  NOT NULL,
    result VARCHAR(32)  NOT NULL,
    detail TEXT         CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (id),
    KEY auth_audit_tenant (tenant, id)
) ENGINE = InnoDB;

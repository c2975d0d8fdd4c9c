-- OpenID Connect logins in progress, shared by every process on this
-- database so that a login begun on one `killkrill api` behind a load
-- balancer can finish on another. One row per login: the SHA-256 of its
-- `state` (what the browser brings back), the PKCE verifier and the nonce
-- (useless without the provider's one-time code, which only the browser
-- sees), and when it expires. Taking a row deletes it (single use across
-- processes: of two callbacks with the same state one deletes the row);
-- expired rows are refused and purged when the next login begins; the
-- service refuses new logins while `oidc.max_pending` are live.
CREATE TABLE auth_oidc_logins (
    state_hash BINARY(32)  NOT NULL,
    verifier   VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    nonce      VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    expires_at BIGINT      NOT NULL,
    created_at BIGINT      NOT NULL,
    PRIMARY KEY (state_hash),
    KEY auth_oidc_logins_expiry (expires_at)
) ENGINE = InnoDB;

-- The session generation of each user. Ending a user's sessions (a
-- password change or reset, an admin's TOTP reset) bumps it; every access
-- token carries the generation it was issued under (claim `gen`) and is
-- refused once the row's generation differs, so an access token dies with
-- the change instead of at its expiry. A counter, not a time: no clock
-- skew between replicas and no same-second ambiguity with the token's
-- `iat`. Tokens issued before this migration have no claim (read as 0) and
-- stay valid until the user's first change.
ALTER TABLE auth_users ADD COLUMN session_gen BIGINT NOT NULL DEFAULT 0;
-- The generation each refresh token was issued under. A token is stored
-- only while its user's generation still equals it (an INSERT ... SELECT
-- that checks the user row), and its successor inherits it, so a login or
-- refresh racing a password change cannot leave a live token behind.
ALTER TABLE auth_refresh_tokens ADD COLUMN session_gen BIGINT NOT NULL DEFAULT 0;

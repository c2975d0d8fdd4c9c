-- The session generation of each user. Ending a user's sessions (a
-- password change or reset, an admin's TOTP reset) bumps it; every access
-- token carries the generation it was issued under (claim `gen`) and is
-- refused once the row's generation differs, so an access token dies with
-- the change instead of at its expiry. A counter, not a time: no clock
-- skew between replicas and no same-second ambiguity with the token's
-- `iat`. Tokens issued before this migration have no claim (read as 0) and
-- stay valid until the user's first change.
ALTER TABLE auth_users ADD COLUMN session_gen BIGINT NOT NULL DEFAULT 0;

-- Step 10 (schema version 10): API tokens that expire; two-factor sign-in with
-- a time-based one-time password (TOTP) and one-time recovery codes.

-- After this time the token no longer authenticates (NULL: never expires).
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;

-- The TOTP secret (base32) once enrolment is confirmed; NULL: no second factor.
ALTER TABLE users ADD COLUMN totp_secret text;
-- A secret shown for enrolment, kept until a code from it is entered.
ALTER TABLE users ADD COLUMN totp_pending_secret text;
-- The time step of the last code accepted: a code signs in once.
ALTER TABLE users ADD COLUMN totp_last_step bigint;

-- One-time recovery codes of a user with TOTP: only their SHA-256 is stored.
CREATE TABLE recovery_codes (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- A sign-in whose password was right and whose second factor is awaited:
-- the browser holds a random token, only its SHA-256 is stored.
CREATE TABLE sign_in_challenges (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    next_path   text NOT NULL DEFAULT '/',
    failures    integer NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sign_in_challenges_expiry ON sign_in_challenges (expires_at);

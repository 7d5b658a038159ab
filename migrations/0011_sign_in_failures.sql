-- Step 11 (schema version 11): failed sign-ins counted in the database, so
-- every process of a cluster counts the same failures and locks a guesser
-- together (they were counted in each process's memory).

-- One row per failed sign-in for each thing it counts against: the
-- (username, address) pair, the username, the address. Only a SHA-256 of
-- the key is kept (a username field sometimes holds a password). Rows older
-- than the window are deleted as new failures arrive.
CREATE TABLE sign_in_failures (
    scope     text NOT NULL CHECK (scope IN ('pair', 'username', 'address')),
    key_hash  bytea NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_key ON sign_in_failures (scope, key_hash, at);
CREATE INDEX sign_in_failures_at ON sign_in_failures (at);

-- Step 2 (schema version 2): the web pages' sign-in sessions and public status pages.

-- Signed-in web sessions: the cookie holds a random token, only its SHA-256
-- is stored. `csrf_token` is what every form of the session must send back.
CREATE TABLE web_sessions (
    token_hash    bytea PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    notice        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- A user's public status page (opt-in): shown at /status/<slug> without
-- sign-in, with only the monitors listed here.
CREATE TABLE status_pages (
    owner_id     bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    slug         text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    published    boolean NOT NULL DEFAULT false,
    monitor_ids  bigint[] NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

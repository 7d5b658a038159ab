-- Step 1: the schema of the first release (schema version 1): users and their
-- API tokens, monitors and their checks, the evaluator's state, incidents,
-- the event outbox, integrations and the notification log.

CREATE TABLE schema_version (
    version     integer PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.-]{1,64}$'),
    email          text NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 254),
    is_admin       boolean NOT NULL DEFAULT false,
    password_hash  text,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- API tokens: only a SHA-256 of the token is stored; `prefix` identifies it.
CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    prefix        text NOT NULL,
    token_hash    bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- The original design's `website`.
CREATE TABLE monitors (
    id                  bigserial PRIMARY KEY,
    owner_id            bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- set for monitors declared in the TOML file: their identity across restarts
    config_key          text,
    name                text NOT NULL,
    kind                text NOT NULL DEFAULT 'http',
    target              text NOT NULL,
    interval_s          double precision NOT NULL CHECK (interval_s >= 1),
    timeout_s           double precision NOT NULL CHECK (timeout_s > 0),
    regions             text[] NOT NULL DEFAULT '{}',
    failure_threshold   integer NOT NULL DEFAULT 3 CHECK (failure_threshold >= 1),
    success_threshold   integer NOT NULL DEFAULT 2 CHECK (success_threshold >= 1),
    quorum              integer CHECK (quorum >= 1),
    slow_threshold_ms   integer,
    repeat_interval_s   double precision,
    options             jsonb NOT NULL DEFAULT '{}',
    enabled             boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, config_key)
);
CREATE INDEX monitors_owner ON monitors (owner_id, id);

-- The original design's `website_tick`: one row per check. The primary key
-- makes a redelivered result a no-op.
CREATE TABLE checks (
    monitor_id        bigint NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    region            text NOT NULL,
    checked_at        timestamptz NOT NULL,
    status            text NOT NULL CHECK (status IN ('up', 'down')),
    response_time_ms  real,
    status_code       smallint,
    error_class       text,
    error             text,
    PRIMARY KEY (monitor_id, region, checked_at)
);
-- "latest per monitor" and time ranges across regions
CREATE INDEX checks_monitor_time ON checks (monitor_id, checked_at DESC);

-- The evaluator's per-monitor state, reloaded when a partition is assigned.
CREATE TABLE monitor_state (
    monitor_id  bigint PRIMARY KEY REFERENCES monitors (id) ON DELETE CASCADE,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE incidents (
    id           bigserial PRIMARY KEY,
    monitor_id   bigint NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    opened_at    timestamptz NOT NULL,
    resolved_at  timestamptz,
    cause        text NOT NULL DEFAULT ''
);
CREATE INDEX incidents_monitor ON incidents (monitor_id, opened_at DESC);
CREATE UNIQUE INDEX incidents_one_open ON incidents (monitor_id) WHERE resolved_at IS NULL;

-- Events the evaluator decided on, written in the same transaction as the
-- state that produced them and published to Kafka afterwards: a crash in
-- between republishes instead of losing the alert.
CREATE TABLE event_outbox (
    event_id      uuid PRIMARY KEY,
    monitor_id    bigint NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX event_outbox_unpublished ON event_outbox (monitor_id) WHERE published_at IS NULL;

-- `type` is the channel's name as text, so a plugin channel needs no migration.
CREATE TABLE integrations (
    id          bigserial PRIMARY KEY,
    owner_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
    config      jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    config_key  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, config_key)
);
CREATE INDEX integrations_owner ON integrations (owner_id, created_at DESC);

-- Optional narrowing: a monitor with rows here notifies only these integrations.
CREATE TABLE monitor_integrations (
    monitor_id      bigint NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    PRIMARY KEY (monitor_id, integration_id)
);

-- Every delivery attempt's outcome. The unique key is what makes a
-- redelivered event a no-op for integrations that already have it.
CREATE TABLE notification_log (
    id               bigserial PRIMARY KEY,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    integration_id   bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    user_id          bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    monitor_id       bigint,
    status           text NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'SENT', 'FAILED', 'RETRYING')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    payload          jsonb NOT NULL,
    error_message    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (event_id, integration_id)
);
CREATE INDEX notification_log_due ON notification_log (next_attempt_at)
    WHERE status IN ('PENDING', 'RETRYING');
CREATE INDEX notification_log_user ON notification_log (user_id, id DESC);

-- uptimed's whole database schema, written out for reading. Databases are
-- not built from this file: `uptimed migrate` (and `uptimed run` at start)
-- applies the steps of migrations/ a database lacks, and a test keeps this
-- file equal to what the steps build. A schema change goes in both: see
-- migrations/README.md. The version is that of the last step.
-- schema-version: 11

CREATE TABLE IF NOT EXISTS schema_version (
    version     integer PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.-]{1,64}$'),
    email          text NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 254),
    is_admin       boolean NOT NULL DEFAULT false,
    password_hash  text,
    -- the time zone the pages show times in; NULL: the browser's
    time_zone      text CHECK (length(time_zone) BETWEEN 1 AND 64),
    -- two-factor sign-in: the confirmed TOTP secret (base32), one shown for
    -- enrolment until a code from it is entered, the time step of the last
    -- accepted code (a code signs in once)
    totp_secret          text,
    totp_pending_secret  text,
    totp_last_step       bigint,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- One-time recovery codes of a user with TOTP: only their SHA-256 is stored.
CREATE TABLE IF NOT EXISTS recovery_codes (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- API tokens: only a SHA-256 of the token is stored; `prefix` identifies it.
CREATE TABLE IF NOT EXISTS api_tokens (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    prefix        text NOT NULL,
    token_hash    bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    -- after this time the token no longer authenticates (NULL: never)
    expires_at    timestamptz
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user_id);

-- The original design's `website`.
CREATE TABLE IF NOT EXISTS monitors (
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
    -- the dashboard and the API filter by them; maintenance windows choose by them
    tags                text[] NOT NULL DEFAULT '{}',
    -- the integrations this monitor notifies (ids of its owner's); NULL: all of them
    notify_integrations bigint[],
    -- set when the owner opted in to public badges: the only thing their address names
    badge_key           text UNIQUE,
    -- a heartbeat's ping URL is /ping/<ping_token>; NULL for kinds that are checked, not pinged
    ping_token          text UNIQUE,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, config_key)
);
CREATE INDEX IF NOT EXISTS monitors_owner ON monitors (owner_id, id);

-- Every change to a monitor is announced on the channel uptimed_monitors (the
-- monitor's id as payload): each process keeps its monitors current from the
-- notifications (uptimed/store/monitor_feed.py) instead of re-reading them all.
CREATE OR REPLACE FUNCTION announce_monitor_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('uptimed_monitors', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER monitors_announce_change
    AFTER INSERT OR UPDATE OR DELETE ON monitors
    FOR EACH ROW EXECUTE FUNCTION announce_monitor_change();

-- The original design's `website_tick`: one row per check. The primary key
-- makes a redelivered result a no-op.
CREATE TABLE IF NOT EXISTS checks (
    monitor_id        bigint NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    region            text NOT NULL,
    checked_at        timestamptz NOT NULL,
    status            text NOT NULL CHECK (status IN ('up', 'down')),
    response_time_ms  real,
    status_code       smallint,
    error_class       text,
    error             text,
    -- made during a maintenance window of its monitor: kept, left out of uptime
    in_maintenance    boolean NOT NULL DEFAULT false,
    -- what the check found besides up or down (packet loss, a certificate's issuer, a ping's body)
    message           text,
    PRIMARY KEY (monitor_id, region, checked_at)
);
-- "latest per monitor" and time ranges across regions
CREATE INDEX IF NOT EXISTS checks_monitor_time ON checks (monitor_id, checked_at DESC);

-- The evaluator's per-monitor state, reloaded when a partition is assigned.
CREATE TABLE IF NOT EXISTS monitor_state (
    monitor_id  bigint PRIMARY KEY REFERENCES monitors (id) ON DELETE CASCADE,
    state       jsonb NOT NULL,
    -- when the evaluator that owns the monitor must look at it without a new
    -- result (a reminder is due); read when a process is assigned partitions
    wake_at     timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- A database from before version 4 has the table without it.
ALTER TABLE monitor_state ADD COLUMN IF NOT EXISTS wake_at timestamptz;
CREATE INDEX IF NOT EXISTS monitor_state_wake ON monitor_state (wake_at) WHERE wake_at IS NOT NULL;

-- The newest check result seen from each region (by any evaluator): a region
-- whose process died stops moving here, which the dashboard shows.
CREATE TABLE IF NOT EXISTS region_activity (
    region          text PRIMARY KEY,
    last_result_at  timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS incidents (
    id           bigserial PRIMARY KEY,
    monitor_id   bigint NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    opened_at    timestamptz NOT NULL,
    resolved_at  timestamptz,
    cause        text NOT NULL DEFAULT '',
    -- Who took the incident, when and how (page, api or link). ack_applied_at
    -- is the acknowledged_at the evaluator owning the monitor has acted on
    -- (stopped the steps, told everyone notified): while they differ it has work to do.
    acknowledged_at   timestamptz,
    acknowledged_by   text,
    acknowledged_via  text CHECK (acknowledged_via IN ('page', 'api', 'link')),
    ack_applied_at    timestamptz
);
CREATE INDEX IF NOT EXISTS incidents_monitor ON incidents (monitor_id, opened_at DESC);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open ON incidents (monitor_id) WHERE resolved_at IS NULL;
CREATE INDEX IF NOT EXISTS incidents_ack_pending ON incidents (monitor_id)
    WHERE resolved_at IS NULL AND acknowledged_at IS DISTINCT FROM ack_applied_at;

-- What happened to an incident besides its opening, resolution and
-- notifications: escalation steps (one row per step, by event id, however
-- often it is replayed), acknowledgements and their withdrawal.
CREATE TABLE IF NOT EXISTS incident_events (
    id              bigserial PRIMARY KEY,
    incident_id     bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('escalated', 'acknowledged', 'unacknowledged')),
    actor           text,
    via             text CHECK (via IN ('page', 'api', 'link')),
    -- an acknowledgement from a link: the integration the link was sent to (kept after it is deleted)
    integration_id  bigint,
    event_id        uuid UNIQUE,
    detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS incident_events_incident ON incident_events (incident_id, at);

-- Events the evaluator decided on, written in the same transaction as the
-- state that produced them and published to Kafka afterwards: a crash in
-- between republishes instead of losing the alert.
CREATE TABLE IF NOT EXISTS event_outbox (
    event_id      uuid PRIMARY KEY,
    -- the order events were made in, which is the order they are published in
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    monitor_id    bigint NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX IF NOT EXISTS event_outbox_unpublished ON event_outbox (monitor_id) WHERE published_at IS NULL;
ALTER TABLE event_outbox ADD COLUMN IF NOT EXISTS seq bigint GENERATED ALWAYS AS IDENTITY;  -- before version 4

-- `type` is the channel's name as text, so a plugin channel needs no migration.
CREATE TABLE IF NOT EXISTS integrations (
    id          bigserial PRIMARY KEY,
    owner_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
    -- what the pages and the log call it; NULL: its type and destination, "Webhook to ops.example"
    name        text CHECK (length(name) BETWEEN 1 AND 100),
    config      jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    config_key  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, config_key)
);
CREATE INDEX IF NOT EXISTS integrations_owner ON integrations (owner_id, created_at DESC);

-- Optional narrowing from the config file's `monitors = [...]` of an
-- integration: an integration with rows here notifies only these monitors.
CREATE TABLE IF NOT EXISTS monitor_integrations (
    monitor_id      bigint NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    PRIMARY KEY (monitor_id, integration_id)
);

-- A user's escalation policies: ordered steps, each notifying some of the
-- owner's integrations a delay after an incident's start; optionally the last
-- step again every repeat_every_s until someone acknowledges.
CREATE TABLE IF NOT EXISTS escalation_policies (
    id              bigserial PRIMARY KEY,
    owner_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- set for policies declared in the TOML file: their identity across restarts
    config_key      text,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    repeat_every_s  double precision CHECK (repeat_every_s >= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, config_key)
);
CREATE INDEX IF NOT EXISTS escalation_policies_owner ON escalation_policies (owner_id, id);

CREATE TABLE IF NOT EXISTS escalation_steps (
    policy_id  bigint NOT NULL REFERENCES escalation_policies (id) ON DELETE CASCADE,
    position   integer NOT NULL CHECK (position >= 1),
    name       text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    after_s    double precision NOT NULL CHECK (after_s >= 0),
    PRIMARY KEY (policy_id, position)
);

-- Whom a step notifies; an integration deleted leaves the steps it was in.
CREATE TABLE IF NOT EXISTS escalation_step_integrations (
    policy_id       bigint NOT NULL,
    position        integer NOT NULL,
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, position, integration_id),
    FOREIGN KEY (policy_id, position) REFERENCES escalation_steps (policy_id, position) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS escalation_step_integrations_integration ON escalation_step_integrations (integration_id);

-- A monitor's policy (none: every routed integration at once, as before). A
-- policy in use cannot be deleted. (Added here, not in monitors' CREATE TABLE:
-- the policies' table is created after it.)
ALTER TABLE monitors ADD COLUMN IF NOT EXISTS escalation_policy_id bigint REFERENCES escalation_policies (id);
CREATE INDEX IF NOT EXISTS monitors_escalation_policy ON monitors (escalation_policy_id)
    WHERE escalation_policy_id IS NOT NULL;

-- Every delivery attempt's outcome. The unique key is what makes a
-- redelivered event a no-op for integrations that already have it.
-- A dispatcher holds a due row by a lease (`lease_owner`, until
-- `next_attempt_at`) and renews it while it works. `attempts` counts attempts
-- started: it goes up, and `attempt_started_at` is set, before the request
-- leaves; the outcome clears `attempt_started_at` and is appended to
-- `attempt_log`. A row whose lease ran out with `attempt_started_at` still set
-- was being sent by a process that died: that attempt's outcome is unknown
-- (the receiver may have it), and the next one says so in the log.
CREATE TABLE IF NOT EXISTS notification_log (
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
    lease_owner         text,
    attempt_started_at  timestamptz,
    attempt_log         jsonb NOT NULL DEFAULT '[]',
    -- the event's incident, for the incident's timeline
    incident_id         bigint,
    UNIQUE (event_id, integration_id)
);
CREATE INDEX IF NOT EXISTS notification_log_due ON notification_log (next_attempt_at)
    WHERE status IN ('PENDING', 'RETRYING');
CREATE INDEX IF NOT EXISTS notification_log_user ON notification_log (user_id, id DESC);
-- an integration's newest deliveries, for its card
CREATE INDEX IF NOT EXISTS notification_log_integration ON notification_log (integration_id, id DESC);

-- Planned work: during a window checks run and are stored, but no alert goes
-- out; a monitor still down at its end is alerted then, once. One-off
-- (starts_at, ends_at) or recurring (a cron expression, or weekly days at a
-- time of day, lasting duration_s) in time_zone. Monitors chosen by id, by
-- tag, or all of the owner's; a deleted monitor's id simply matches nothing.
CREATE TABLE IF NOT EXISTS maintenance_windows (
    id            bigserial PRIMARY KEY,
    owner_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    config_key    text,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    starts_at     timestamptz,
    ends_at       timestamptz,
    cron          text,
    days          text[],
    at_time       time,
    duration_s    double precision CHECK (duration_s > 0),
    time_zone     text NOT NULL DEFAULT 'UTC',
    all_monitors  boolean NOT NULL DEFAULT false,
    monitor_ids   bigint[] NOT NULL DEFAULT '{}',
    tags          text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, config_key),
    CHECK ((starts_at IS NULL) = (ends_at IS NULL)),
    CHECK ((starts_at IS NULL) = (duration_s IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS maintenance_windows_owner ON maintenance_windows (owner_id, id);
CREATE INDEX IF NOT EXISTS notification_log_incident ON notification_log (incident_id) WHERE incident_id IS NOT NULL;

-- Signed-in web sessions: the cookie holds a random token, only its SHA-256
-- is stored. `csrf_token` is what every form of the session must send back.
CREATE TABLE IF NOT EXISTS web_sessions (
    token_hash    bytea PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    notice        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions (user_id);
CREATE INDEX IF NOT EXISTS web_sessions_expiry ON web_sessions (expires_at);

-- A sign-in whose password was right and whose second factor is awaited:
-- the browser holds a random token, only its SHA-256 is stored.
CREATE TABLE IF NOT EXISTS sign_in_challenges (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    next_path   text NOT NULL DEFAULT '/',
    failures    integer NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_in_challenges_expiry ON sign_in_challenges (expires_at);

-- One row per failed sign-in for each thing it counts against: the
-- (username, address) pair, the username, the address; only a SHA-256 of the
-- key is kept. Every process counts the same failures (uptimed/web/auth.py);
-- rows older than the window are deleted as new failures arrive.
CREATE TABLE IF NOT EXISTS sign_in_failures (
    scope     text NOT NULL CHECK (scope IN ('pair', 'username', 'address')),
    key_hash  bytea NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sign_in_failures_key ON sign_in_failures (scope, key_hash, at);
CREATE INDEX IF NOT EXISTS sign_in_failures_at ON sign_in_failures (at);

-- A user's public status page (opt-in): shown at /status/<slug> without
-- sign-in, with only the monitors listed here.
CREATE TABLE IF NOT EXISTS status_pages (
    owner_id     bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    slug         text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    published    boolean NOT NULL DEFAULT false,
    monitor_ids  bigint[] NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Secrets the cluster shares, made by the first process that needs one
-- (the key that signs acknowledge links).
CREATE TABLE IF NOT EXISTS signing_keys (
    name        text PRIMARY KEY,
    secret      bytea NOT NULL CHECK (length(secret) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Checks rolled up by the hour, for uptime over days and months without
-- reading every check (30 days at one check a minute from two regions is
-- 86,400 rows per monitor). Kept by the trigger below in the same
-- statement as the checks themselves, from the rows actually inserted, so a
-- redelivered result (ON CONFLICT DO NOTHING) is never counted twice.
CREATE TABLE IF NOT EXISTS check_hours (
    monitor_id   bigint NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    region       text NOT NULL,
    hour         timestamptz NOT NULL,
    checks       integer NOT NULL,
    up           integer NOT NULL,
    up_ms_sum    double precision NOT NULL,
    up_ms_count  integer NOT NULL,
    -- checks made during maintenance: not in `checks` and `up`, so uptime leaves them out
    maintenance  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (monitor_id, hour, region)
);

CREATE OR REPLACE FUNCTION roll_up_checks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO check_hours AS h (monitor_id, region, hour, checks, up, up_ms_sum, up_ms_count, maintenance)
    SELECT monitor_id, region, date_bin('1 hour', checked_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
           count(*) FILTER (WHERE NOT in_maintenance),
           count(*) FILTER (WHERE status = 'up' AND NOT in_maintenance),
           coalesce(sum(response_time_ms) FILTER (WHERE status = 'up'), 0),
           count(response_time_ms) FILTER (WHERE status = 'up'),
           count(*) FILTER (WHERE in_maintenance)
    FROM inserted
    GROUP BY 1, 2, 3
    ORDER BY 1, 3, 2  -- one lock order for every writer: no deadlocks between evaluators
    ON CONFLICT (monitor_id, hour, region) DO UPDATE SET
        checks = h.checks + EXCLUDED.checks,
        up = h.up + EXCLUDED.up,
        up_ms_sum = h.up_ms_sum + EXCLUDED.up_ms_sum,
        up_ms_count = h.up_ms_count + EXCLUDED.up_ms_count,
        maintenance = h.maintenance + EXCLUDED.maintenance;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER checks_roll_up
    AFTER INSERT ON checks REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION roll_up_checks();

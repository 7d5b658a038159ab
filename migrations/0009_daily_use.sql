-- Step 9 (schema version 9): what daily use needs. Maintenance windows, tags,
-- integration names, per-monitor routing, public badges, each user's time zone.

-- Tags on monitors: the dashboard and the API filter by them, maintenance
-- windows may choose monitors by them.
ALTER TABLE monitors ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
-- The integrations this monitor notifies (ids of its owner's); NULL: all of them.
ALTER TABLE monitors ADD COLUMN notify_integrations bigint[];
-- Set when the owner opted in to public badges: the only thing their address names.
ALTER TABLE monitors ADD COLUMN badge_key text UNIQUE;

-- What the pages and the log call an integration; NULL (rows from before this
-- step among them): its type and destination, "Webhook to ops.example".
ALTER TABLE integrations ADD COLUMN name text CHECK (length(name) BETWEEN 1 AND 100);

-- An integration's newest deliveries, for its card (the last result, how many of the last few failed).
CREATE INDEX notification_log_integration ON notification_log (integration_id, id DESC);

-- The time zone the pages show times in; NULL: the browser's.
ALTER TABLE users ADD COLUMN time_zone text CHECK (length(time_zone) BETWEEN 1 AND 64);

-- Planned work: during a window checks run and are stored, but no alert goes
-- out; a monitor still down at its end is alerted then, once. One-off
-- (starts_at, ends_at) or recurring (a cron expression, or weekly days at a
-- time of day, lasting duration_s) in time_zone. Monitors chosen by id, by
-- tag, or all of the owner's; a deleted monitor's id simply matches nothing.
CREATE TABLE maintenance_windows (
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
CREATE INDEX maintenance_windows_owner ON maintenance_windows (owner_id, id);

-- A check made during a window of its monitor: kept, and left out of uptime.
ALTER TABLE checks ADD COLUMN in_maintenance boolean NOT NULL DEFAULT false;
-- Per hour, the checks made during maintenance (not in `checks` and `up`).
ALTER TABLE check_hours ADD COLUMN maintenance integer NOT NULL DEFAULT 0;

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

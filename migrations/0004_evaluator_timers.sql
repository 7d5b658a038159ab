-- Step 4 (schema version 4): the evaluator's timers and region liveness, and
-- the order of the event outbox.

-- When the evaluator that owns the monitor must look at it without a new
-- result (a reminder is due); read when a process is assigned partitions.
ALTER TABLE monitor_state ADD COLUMN wake_at timestamptz;
CREATE INDEX monitor_state_wake ON monitor_state (wake_at) WHERE wake_at IS NOT NULL;

-- The newest check result seen from each region (by any evaluator): a region
-- whose process died stops moving here, which the dashboard shows.
CREATE TABLE region_activity (
    region          text PRIMARY KEY,
    last_result_at  timestamptz NOT NULL
);

-- The order events were made in, which is the order they are published in.
-- Events already waiting are numbered in the order the table holds them,
-- which is the order they were written.
ALTER TABLE event_outbox ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;

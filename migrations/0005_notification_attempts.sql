-- Step 5 (schema version 5): each delivery attempt on record before its request
-- leaves, so a process that dies during the request leaves a trace.

-- The process holding a due row's lease (until next_attempt_at); it renews the
-- lease while it works on the row.
ALTER TABLE notification_log ADD COLUMN lease_owner text;
-- Set before an attempt's request leaves, cleared when its outcome is stored:
-- still set when the lease ran out means the owner died during the request.
ALTER TABLE notification_log ADD COLUMN attempt_started_at timestamptz;
-- Each attempt's outcome (sent, retrying, failed, unknown), oldest first. Rows
-- from before this step start with an empty history.
ALTER TABLE notification_log ADD COLUMN attempt_log jsonb NOT NULL DEFAULT '[]';

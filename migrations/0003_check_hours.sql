-- Step 3 (schema version 3): uptime from hourly roll-ups of the checks.

-- Checks rolled up by the hour, for uptime over days and months without
-- reading every check (30 days at one check a minute from two regions is
-- 86,400 rows per monitor). Kept by the trigger below in the same
-- statement as the checks themselves, from the rows actually inserted, so a
-- redelivered result (ON CONFLICT DO NOTHING) is never counted twice.
CREATE TABLE check_hours (
    monitor_id   bigint NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    region       text NOT NULL,
    hour         timestamptz NOT NULL,
    checks       integer NOT NULL,
    up           integer NOT NULL,
    up_ms_sum    double precision NOT NULL,
    up_ms_count  integer NOT NULL,
    PRIMARY KEY (monitor_id, hour, region)
);

CREATE OR REPLACE FUNCTION roll_up_checks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO check_hours AS h (monitor_id, region, hour, checks, up, up_ms_sum, up_ms_count)
    SELECT monitor_id, region, date_bin('1 hour', checked_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
           count(*), count(*) FILTER (WHERE status = 'up'),
           coalesce(sum(response_time_ms) FILTER (WHERE status = 'up'), 0),
           count(response_time_ms) FILTER (WHERE status = 'up')
    FROM inserted
    GROUP BY 1, 2, 3
    ORDER BY 1, 3, 2  -- one lock order for every writer: no deadlocks between evaluators
    ON CONFLICT (monitor_id, hour, region) DO UPDATE SET
        checks = h.checks + EXCLUDED.checks,
        up = h.up + EXCLUDED.up,
        up_ms_sum = h.up_ms_sum + EXCLUDED.up_ms_sum,
        up_ms_count = h.up_ms_count + EXCLUDED.up_ms_count;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER checks_roll_up
    AFTER INSERT ON checks REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION roll_up_checks();

-- The checks stored before this step, rolled up once; the trigger takes
-- every check written from here on (it exists already: nothing slips between).
INSERT INTO check_hours (monitor_id, region, hour, checks, up, up_ms_sum, up_ms_count)
SELECT monitor_id, region, date_bin('1 hour', checked_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       count(*), count(*) FILTER (WHERE status = 'up'),
       coalesce(sum(response_time_ms) FILTER (WHERE status = 'up'), 0),
       count(response_time_ms) FILTER (WHERE status = 'up')
FROM checks
GROUP BY 1, 2, 3;

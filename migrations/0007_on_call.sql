-- Step 7 (schema version 7): on call. Escalation policies, acknowledgement of
-- incidents, incident timelines, and the key that signs acknowledge links.

-- A user's escalation policies: ordered steps, each notifying some of the
-- owner's integrations a delay after an incident's start; optionally the last
-- step again every repeat_every_s until someone acknowledges.
CREATE TABLE escalation_policies (
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
CREATE INDEX escalation_policies_owner ON escalation_policies (owner_id, id);

CREATE TABLE escalation_steps (
    policy_id  bigint NOT NULL REFERENCES escalation_policies (id) ON DELETE CASCADE,
    position   integer NOT NULL CHECK (position >= 1),
    name       text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    after_s    double precision NOT NULL CHECK (after_s >= 0),
    PRIMARY KEY (policy_id, position)
);

-- Whom a step notifies; an integration deleted leaves the steps it was in.
CREATE TABLE escalation_step_integrations (
    policy_id       bigint NOT NULL,
    position        integer NOT NULL,
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, position, integration_id),
    FOREIGN KEY (policy_id, position) REFERENCES escalation_steps (policy_id, position) ON DELETE CASCADE
);
CREATE INDEX escalation_step_integrations_integration ON escalation_step_integrations (integration_id);

-- A monitor's policy (none: every routed integration at once, as before). A
-- policy in use cannot be deleted.
ALTER TABLE monitors ADD COLUMN escalation_policy_id bigint REFERENCES escalation_policies (id);
CREATE INDEX monitors_escalation_policy ON monitors (escalation_policy_id) WHERE escalation_policy_id IS NOT NULL;

-- Who took an incident, when and how (page, api or link). ack_applied_at is
-- the acknowledged_at the evaluator owning the monitor has acted on (stopped
-- the steps, told everyone notified): while the two differ it has work to do.
ALTER TABLE incidents ADD COLUMN acknowledged_at timestamptz;
ALTER TABLE incidents ADD COLUMN acknowledged_by text;
ALTER TABLE incidents ADD COLUMN acknowledged_via text CHECK (acknowledged_via IN ('page', 'api', 'link'));
ALTER TABLE incidents ADD COLUMN ack_applied_at timestamptz;
CREATE INDEX incidents_ack_pending ON incidents (monitor_id)
    WHERE resolved_at IS NULL AND acknowledged_at IS DISTINCT FROM ack_applied_at;

-- What happened to an incident besides its opening, resolution and
-- notifications: escalation steps (one row per step, by event id, however
-- often it is replayed), acknowledgements and their withdrawal.
CREATE TABLE incident_events (
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
CREATE INDEX incident_events_incident ON incident_events (incident_id, at);

-- Each delivery's incident, for the incident's timeline; filled for the rows already there.
ALTER TABLE notification_log ADD COLUMN incident_id bigint;
UPDATE notification_log SET incident_id = (payload->>'incidentId')::bigint WHERE payload->>'incidentId' IS NOT NULL;
CREATE INDEX notification_log_incident ON notification_log (incident_id) WHERE incident_id IS NOT NULL;

-- Secrets the cluster shares, made by the first process that needs one
-- (the key that signs acknowledge links).
CREATE TABLE signing_keys (
    name        text PRIMARY KEY,
    secret      bytea NOT NULL CHECK (length(secret) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

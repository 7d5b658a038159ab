-- Every change to a monitor is announced on the channel uptimed_monitors (the
-- monitor's id as payload), so each process keeps its monitors current from
-- the notifications instead of re-reading them all every few seconds.
CREATE FUNCTION announce_monitor_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('uptimed_monitors', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER monitors_announce_change
    AFTER INSERT OR UPDATE OR DELETE ON monitors
    FOR EACH ROW EXECUTE FUNCTION announce_monitor_change();

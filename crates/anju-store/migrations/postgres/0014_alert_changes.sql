-- The live alert stream on every replica (issue 16): besides the counter's
-- new value, each alert written announces itself on `anju_alert_changed`
-- as "<counter> <alert id>", at commit. The counter row is locked from the
-- trigger's UPDATE until commit, so the numbers follow commit order: every
-- replica's `GET /alerts/stream` uses them as its event ids, and a client
-- may resume (`Last-Event-ID`) on any replica.
CREATE OR REPLACE FUNCTION bump_alerts_counter() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v BIGINT;
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'alerts' RETURNING n INTO v;
    PERFORM pg_notify('anju_alerts_version', v::text);
    IF TG_TABLE_NAME = 'alerts' AND TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('anju_alert_changed', v::text || ' ' || NEW.id::text);
    END IF;
    RETURN NULL;
END $$;

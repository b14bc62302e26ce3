-- Each alert's last write, numbered by the alert list's change counter
-- (issue 16): the API keeps an index of recent alerts in memory and brings
-- it up to date with the alerts whose number passed the one it holds. The
-- numbers follow commit order (the counter row stays locked from the
-- trigger's UPDATE to commit), so "rev > what I hold" misses no write. A
-- deleted alert keeps its row here (its last number): the index drops it.
CREATE TABLE alert_revs (
    alert_id BIGINT PRIMARY KEY,
    rev BIGINT NOT NULL
);
CREATE INDEX alert_revs_rev ON alert_revs (rev);
INSERT INTO alert_revs (alert_id, rev)
    SELECT id, (SELECT n FROM change_counters WHERE name = 'alerts') FROM alerts;

CREATE OR REPLACE FUNCTION bump_alerts_counter() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v BIGINT;
    a BIGINT;
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'alerts' RETURNING n INTO v;
    PERFORM pg_notify('anju_alerts_version', v::text);
    IF TG_TABLE_NAME = 'alerts' THEN
        IF TG_OP = 'DELETE' THEN
            a := OLD.id;
        ELSE
            a := NEW.id;
            PERFORM pg_notify('anju_alert_changed', v::text || ' ' || NEW.id::text);
        END IF;
        INSERT INTO alert_revs (alert_id, rev) VALUES (a, v)
            ON CONFLICT (alert_id) DO UPDATE SET rev = EXCLUDED.rev;
    END IF;
    RETURN NULL;
END $$;

-- The alert list's change counter also announces its new value: NOTIFY
-- anju_alerts_version with the number, delivered at commit (and only if the
-- transaction commits). An API server LISTENs and keeps the number in
-- memory, so a reused alert page costs no round trip (anju-store `feed`).
-- Several bumps in one transaction send several numbers; listeners keep the
-- largest.
CREATE OR REPLACE FUNCTION bump_alerts_counter() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v BIGINT;
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'alerts' RETURNING n INTO v;
    PERFORM pg_notify('anju_alerts_version', v::text);
    RETURN NULL;
END $$;

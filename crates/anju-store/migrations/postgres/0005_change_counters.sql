-- Change counters: bumped inside every transaction that writes a table a
-- cached read depends on, by any writer in any process, so that a reader can
-- tell with one tiny query whether a page it built earlier is still current.
-- `alerts` covers the alert list: the alerts themselves, and the buildings'
-- grids that field-staff scopes filter by.
--
-- The bump is a deferred constraint trigger: it runs at commit, after every
-- other statement of the transaction, so the counter row is locked only for
-- the commit itself (no lock-order cycle with alert rows), and a reader that
-- sees the new number also sees the transaction's rows (same commit).
CREATE TABLE change_counters (
    name TEXT PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO change_counters (name, n) VALUES ('alerts', 0);

CREATE FUNCTION bump_alerts_counter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'alerts';
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER alerts_changed AFTER INSERT OR UPDATE OR DELETE ON alerts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_alerts_counter();
CREATE CONSTRAINT TRIGGER buildings_changed AFTER INSERT OR UPDATE OR DELETE ON buildings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_alerts_counter();

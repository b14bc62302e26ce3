-- Change counters: bumped inside every transaction that writes a table a
-- cached read depends on, by any writer in any process, so that a reader can
-- tell with one tiny query whether a page it built earlier is still current.
-- `alerts` covers the alert list: the alerts themselves, and the buildings'
-- grids that field-staff scopes filter by.
CREATE TABLE change_counters (
    name TEXT PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO change_counters (name, n) VALUES ('alerts', 0);

CREATE TRIGGER alerts_changed_insert AFTER INSERT ON alerts
BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'alerts'; END;
CREATE TRIGGER alerts_changed_update AFTER UPDATE ON alerts
BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'alerts'; END;
CREATE TRIGGER alerts_changed_delete AFTER DELETE ON alerts
BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'alerts'; END;
CREATE TRIGGER buildings_changed_insert AFTER INSERT ON buildings
BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'alerts'; END;
CREATE TRIGGER buildings_changed_update AFTER UPDATE ON buildings
BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'alerts'; END;
CREATE TRIGGER buildings_changed_delete AFTER DELETE ON buildings
BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'alerts'; END;

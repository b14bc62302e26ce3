-- Each alert's last write, numbered by the alert list's change counter
-- (issue 16): the API keeps an index of recent alerts in memory and brings
-- it up to date with the alerts whose number passed the one it holds. A
-- deleted alert keeps its row here (its last number): the index drops it.
-- One trigger per operation bumps the counter and then numbers the alert
-- (SQLite does not promise an order between two triggers of one event).
CREATE TABLE alert_revs (
    alert_id INTEGER PRIMARY KEY,
    rev INTEGER NOT NULL
);
CREATE INDEX alert_revs_rev ON alert_revs (rev);
INSERT INTO alert_revs (alert_id, rev)
    SELECT id, (SELECT n FROM change_counters WHERE name = 'alerts') FROM alerts;

DROP TRIGGER alerts_changed_insert;
DROP TRIGGER alerts_changed_update;
DROP TRIGGER alerts_changed_delete;
CREATE TRIGGER alerts_changed_insert AFTER INSERT ON alerts
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'alerts';
    INSERT INTO alert_revs (alert_id, rev)
        SELECT NEW.id, n FROM change_counters WHERE name = 'alerts' AND true
        ON CONFLICT (alert_id) DO UPDATE SET rev = excluded.rev;
END;
CREATE TRIGGER alerts_changed_update AFTER UPDATE ON alerts
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'alerts';
    INSERT INTO alert_revs (alert_id, rev)
        SELECT NEW.id, n FROM change_counters WHERE name = 'alerts' AND true
        ON CONFLICT (alert_id) DO UPDATE SET rev = excluded.rev;
END;
CREATE TRIGGER alerts_changed_delete AFTER DELETE ON alerts
BEGIN
    UPDATE change_counters SET n = n + 1 WHERE name = 'alerts';
    INSERT INTO alert_revs (alert_id, rev)
        SELECT OLD.id, n FROM change_counters WHERE name = 'alerts' AND true
        ON CONFLICT (alert_id) DO UPDATE SET rev = excluded.rev;
END;

-- 24-hour access report: access events counted per estate, device, quarter
-- hour (UTC epoch ms, so any site timezone's local hours are whole buckets),
-- direction and credential kind. Triggers keep it exact on every insert,
-- delete and update of `events` (a redelivered event that the unique key
-- ignores is never inserted, so never counted); the report reads a few
-- thousand rollup rows instead of a day's access events.
CREATE TABLE access_rollup (
    estate TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    device TEXT NOT NULL,
    direction TEXT NOT NULL,
    credential_kind TEXT NOT NULL,
    n BIGINT NOT NULL,
    granted BIGINT NOT NULL,
    denied BIGINT NOT NULL,
    PRIMARY KEY (estate, bucket_ms, device, direction, credential_kind)
);

INSERT INTO access_rollup (estate, bucket_ms, device, direction, credential_kind, n, granted, denied)
SELECT estate, ts_ms - ts_ms % 900000, device, COALESCE(direction, ''), COALESCE(credential_kind, ''),
       COUNT(*), SUM(CASE WHEN result = 'granted' THEN 1 ELSE 0 END),
       SUM(CASE WHEN result = 'denied' THEN 1 ELSE 0 END)
FROM events WHERE kind = 'access'
GROUP BY estate, ts_ms - ts_ms % 900000, device, COALESCE(direction, ''), COALESCE(credential_kind, '');

CREATE TRIGGER events_access_rollup_insert AFTER INSERT ON events WHEN NEW.kind = 'access'
BEGIN
    INSERT INTO access_rollup (estate, bucket_ms, device, direction, credential_kind, n, granted, denied)
    VALUES (NEW.estate, NEW.ts_ms - NEW.ts_ms % 900000, NEW.device, COALESCE(NEW.direction, ''),
            COALESCE(NEW.credential_kind, ''), 1,
            CASE WHEN NEW.result = 'granted' THEN 1 ELSE 0 END,
            CASE WHEN NEW.result = 'denied' THEN 1 ELSE 0 END)
    ON CONFLICT (estate, bucket_ms, device, direction, credential_kind) DO UPDATE SET
        n = n + 1, granted = granted + excluded.granted, denied = denied + excluded.denied;
END;

CREATE TRIGGER events_access_rollup_delete AFTER DELETE ON events WHEN OLD.kind = 'access'
BEGIN
    UPDATE access_rollup SET n = n - 1,
        granted = granted - CASE WHEN OLD.result = 'granted' THEN 1 ELSE 0 END,
        denied = denied - CASE WHEN OLD.result = 'denied' THEN 1 ELSE 0 END
    WHERE estate = OLD.estate AND bucket_ms = OLD.ts_ms - OLD.ts_ms % 900000 AND device = OLD.device
      AND direction = COALESCE(OLD.direction, '') AND credential_kind = COALESCE(OLD.credential_kind, '');
END;

CREATE TRIGGER events_access_rollup_update_old AFTER UPDATE ON events WHEN OLD.kind = 'access'
BEGIN
    UPDATE access_rollup SET n = n - 1,
        granted = granted - CASE WHEN OLD.result = 'granted' THEN 1 ELSE 0 END,
        denied = denied - CASE WHEN OLD.result = 'denied' THEN 1 ELSE 0 END
    WHERE estate = OLD.estate AND bucket_ms = OLD.ts_ms - OLD.ts_ms % 900000 AND device = OLD.device
      AND direction = COALESCE(OLD.direction, '') AND credential_kind = COALESCE(OLD.credential_kind, '');
END;

CREATE TRIGGER events_access_rollup_update_new AFTER UPDATE ON events WHEN NEW.kind = 'access'
BEGIN
    INSERT INTO access_rollup (estate, bucket_ms, device, direction, credential_kind, n, granted, denied)
    VALUES (NEW.estate, NEW.ts_ms - NEW.ts_ms % 900000, NEW.device, COALESCE(NEW.direction, ''),
            COALESCE(NEW.credential_kind, ''), 1,
            CASE WHEN NEW.result = 'granted' THEN 1 ELSE 0 END,
            CASE WHEN NEW.result = 'denied' THEN 1 ELSE 0 END)
    ON CONFLICT (estate, bucket_ms, device, direction, credential_kind) DO UPDATE SET
        n = n + 1, granted = granted + excluded.granted, denied = denied + excluded.denied;
END;

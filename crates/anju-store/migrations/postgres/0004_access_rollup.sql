-- 24-hour access report: access events counted per estate, device, quarter
-- hour (UTC epoch ms, so any site timezone's local hours are whole buckets),
-- direction and credential kind. Statement-level triggers keep it exact on
-- every insert, delete and update of `events` (a redelivered event that the
-- unique key ignores is never inserted, so never counted); each statement's
-- rows are aggregated first and upserted in key order, so that concurrent
-- ingest transactions lock rollup rows in one order.
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
GROUP BY 1, 2, 3, 4, 5;

CREATE FUNCTION access_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO access_rollup (estate, bucket_ms, device, direction, credential_kind, n, granted, denied)
    SELECT estate, ts_ms - ts_ms % 900000, device, COALESCE(direction, ''), COALESCE(credential_kind, ''),
           COUNT(*), SUM(CASE WHEN result = 'granted' THEN 1 ELSE 0 END),
           SUM(CASE WHEN result = 'denied' THEN 1 ELSE 0 END)
    FROM new_rows WHERE kind = 'access'
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (estate, bucket_ms, device, direction, credential_kind) DO UPDATE SET
        n = access_rollup.n + EXCLUDED.n,
        granted = access_rollup.granted + EXCLUDED.granted,
        denied = access_rollup.denied + EXCLUDED.denied;
    RETURN NULL;
END $$;

CREATE FUNCTION access_rollup_sub() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE access_rollup r SET n = r.n - o.n, granted = r.granted - o.granted, denied = r.denied - o.denied
    FROM (SELECT estate, ts_ms - ts_ms % 900000 AS bucket_ms, device, COALESCE(direction, '') AS direction,
                 COALESCE(credential_kind, '') AS credential_kind, COUNT(*) AS n,
                 SUM(CASE WHEN result = 'granted' THEN 1 ELSE 0 END) AS granted,
                 SUM(CASE WHEN result = 'denied' THEN 1 ELSE 0 END) AS denied
          FROM old_rows WHERE kind = 'access' GROUP BY 1, 2, 3, 4, 5) o
    WHERE r.estate = o.estate AND r.bucket_ms = o.bucket_ms AND r.device = o.device
      AND r.direction = o.direction AND r.credential_kind = o.credential_kind;
    RETURN NULL;
END $$;

CREATE TRIGGER events_access_rollup_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION access_rollup_add();
CREATE TRIGGER events_access_rollup_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION access_rollup_sub();
-- An update is a delete of the old rows and an insert of the new ones.
CREATE TRIGGER events_access_rollup_update_old AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION access_rollup_sub();
CREATE TRIGGER events_access_rollup_update_new AFTER UPDATE ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION access_rollup_add();

-- When each device was last heard of and its latest status (issue 16):
-- kept by a statement-level trigger on every insert into events, so
-- `GET /devices` reads one row per device instead of searching the events
-- table twice per device. Rows are aggregated per statement and upserted
-- in key order (concurrent ingest transactions lock them in one order).
-- Events pruned by retention do not move it back (the device was heard).
CREATE TABLE device_seen (
    estate TEXT NOT NULL,
    device TEXT NOT NULL,
    last_ms BIGINT NOT NULL,
    status_ms BIGINT,
    status TEXT,
    PRIMARY KEY (estate, device)
);

INSERT INTO device_seen (estate, device, last_ms)
SELECT estate, device, MAX(ts_ms) FROM events GROUP BY estate, device;

UPDATE device_seen d SET status = s.result, status_ms = s.ts_ms
FROM (SELECT DISTINCT ON (estate, device) estate, device, result, ts_ms
      FROM events WHERE kind = 'status' ORDER BY estate, device, ts_ms DESC) s
WHERE d.estate = s.estate AND d.device = s.device;

CREATE FUNCTION device_seen_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO device_seen AS d (estate, device, last_ms)
    SELECT estate, device, MAX(ts_ms) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (estate, device) DO UPDATE SET last_ms = GREATEST(d.last_ms, EXCLUDED.last_ms);
    UPDATE device_seen d SET status = s.result, status_ms = s.ts_ms
    FROM (SELECT DISTINCT ON (estate, device) estate, device, result, ts_ms
          FROM new_rows WHERE kind = 'status' ORDER BY estate, device, ts_ms DESC) s
    WHERE d.estate = s.estate AND d.device = s.device
      AND (d.status_ms IS NULL OR d.status_ms <= s.ts_ms);
    RETURN NULL;
END $$;

CREATE TRIGGER events_device_seen AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION device_seen_add();

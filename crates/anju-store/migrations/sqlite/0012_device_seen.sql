-- When each device was last heard of and its latest status (issue 16):
-- kept by a trigger on every stored event, so `GET /devices` reads one row
-- per device instead of searching the events table twice per device.
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

UPDATE device_seen SET
    status = (SELECT e.result FROM events e WHERE e.estate = device_seen.estate
              AND e.device = device_seen.device AND e.kind = 'status'
              ORDER BY e.ts_ms DESC LIMIT 1),
    status_ms = (SELECT MAX(e.ts_ms) FROM events e WHERE e.estate = device_seen.estate
                 AND e.device = device_seen.device AND e.kind = 'status');

CREATE TRIGGER events_device_seen AFTER INSERT ON events
BEGIN
    INSERT INTO device_seen (estate, device, last_ms) VALUES (NEW.estate, NEW.device, NEW.ts_ms)
    ON CONFLICT (estate, device) DO UPDATE SET last_ms = MAX(last_ms, excluded.last_ms);
END;

CREATE TRIGGER events_device_status AFTER INSERT ON events WHEN NEW.kind = 'status'
BEGIN
    UPDATE device_seen SET status = NEW.result, status_ms = NEW.ts_ms
    WHERE estate = NEW.estate AND device = NEW.device
      AND (status_ms IS NULL OR status_ms <= NEW.ts_ms);
END;

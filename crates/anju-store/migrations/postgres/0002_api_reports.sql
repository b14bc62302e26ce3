-- Dashboard API: the 24-hour access report aggregates one estate's events
-- of one day by kind; this index covers every column the report reads, so
-- both backends can answer it from the index (an index-only scan). The second one serves "last seen"
-- per device (MAX(ts_ms) of one device is one index probe).
CREATE INDEX events_report ON events (estate, kind, ts_ms, device, direction, result, credential_kind, person_id, stranger_id);
CREATE INDEX events_device_ts ON events (estate, device, ts_ms);
CREATE INDEX alert_transitions_at ON alert_transitions (at_ms);
CREATE INDEX alerts_estate_opened ON alerts (estate, opened_ms);

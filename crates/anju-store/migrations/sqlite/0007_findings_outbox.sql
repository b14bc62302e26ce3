-- One owner of the alert lifecycle (DESIGN §6a): edge workers no longer
-- forward alerts but *findings* (code, subject, evidence), which the central
-- analyzer turns into alerts.
--
-- Central inbox: findings forwarded by edge workers. (origin, origin_seq) is
-- the idempotency key: a batch forwarded again after a crash is stored once.
CREATE TABLE findings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    origin_seq BIGINT NOT NULL,
    estate TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    UNIQUE (origin, origin_seq)
);

-- Edge outbox, formerly created by anju-ingest's `ensure_schema`: the same
-- definitions, IF NOT EXISTS, so that stores which already have them keep
-- their rows.
CREATE TABLE IF NOT EXISTS edge_alert_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, local_id BIGINT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS edge_forward_cursor (
    name TEXT PRIMARY KEY, last_id BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS edge_alert_map (
    local_id BIGINT PRIMARY KEY, central_id BIGINT NOT NULL);

-- Findings waiting to be forwarded, in `seq` order.
CREATE TABLE edge_findings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payload TEXT NOT NULL
);

-- Alert changes an older edge logged but had not forwarded yet (beyond its
-- 'alerts' cursor) become findings, in log order; the cursor then moves past
-- them so that they are not copied twice.
INSERT INTO edge_findings (payload)
SELECT payload FROM edge_alert_log
WHERE seq > COALESCE((SELECT last_id FROM edge_forward_cursor WHERE name = 'alerts'), 0)
ORDER BY seq;

INSERT INTO edge_forward_cursor (name, last_id)
SELECT 'alerts', m FROM (
    SELECT MAX(seq) AS m FROM edge_alert_log
    WHERE seq > COALESCE((SELECT last_id FROM edge_forward_cursor WHERE name = 'alerts'), 0)
) copied
WHERE m IS NOT NULL
ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id;

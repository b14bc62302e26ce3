-- Registry writes through the API (issue 15).
--
-- Optimistic concurrency: every row an administrator may change carries a
-- version, bumped by each write (the API's ETag); a write names the version
-- it read and changes nothing when another write came first (412).
ALTER TABLE persons ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
-- One current registration per person (a concurrent second one fails).
CREATE UNIQUE INDEX persons_one_current ON persons (person_id) WHERE lease_end IS NULL;
ALTER TABLE credentials ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE watchlist ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE devices ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- What the office recorded about a credential: active, suspended, revoked
-- or lost (a blocked credential used at a gate is an alert), when and by
-- whom. A re-import keeps it.
ALTER TABLE credentials ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE credentials ADD COLUMN status_at_ms BIGINT;
ALTER TABLE credentials ADD COLUMN status_by TEXT;
ALTER TABLE credentials ADD COLUMN status_note TEXT;

-- A watch-list entry's last day (inclusive; none = until removed) and who
-- added it.
ALTER TABLE watchlist ADD COLUMN expires TEXT;
ALTER TABLE watchlist ADD COLUMN added_by TEXT;
ALTER TABLE watchlist ADD COLUMN added_at_ms BIGINT;

-- The person an audit record concerns (registry writes, deletion): a
-- person's history is the audit filtered by it, and survives the person's
-- deletion (the record keeps no personal data beyond the id).
ALTER TABLE audit_log ADD COLUMN person_id TEXT;
CREATE INDEX audit_log_person ON audit_log (person_id, at_ms);

-- Rule thresholds an administrator set for an estate through the API: a
-- JSON object of threshold → value over the site file's [rules].
CREATE TABLE estate_rules (
    estate TEXT PRIMARY KEY,
    overrides TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    updated_by TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- QR passes issued through the API (the code, to print it again) and
-- their revocation; revoked passes still valid reach the edges with the
-- registry.
CREATE TABLE qr_passes (
    id TEXT PRIMARY KEY,
    estate TEXT NOT NULL,
    unit TEXT NOT NULL,
    kind TEXT NOT NULL,
    valid_from_ms BIGINT NOT NULL,
    valid_to_ms BIGINT NOT NULL,
    single_use BIGINT NOT NULL,
    code TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at_ms BIGINT NOT NULL,
    revoked_by TEXT,
    revoked_at_ms BIGINT,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX qr_passes_revoked ON qr_passes (valid_to_ms) WHERE revoked_at_ms IS NOT NULL;

-- Bumped by every registry write (import and API): running edges and
-- analyzers poll it and reload the registry when it moves.
INSERT INTO change_counters (name, n) VALUES ('registry', 0);

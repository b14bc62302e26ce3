-- Per-estate stranger gallery of the edge (DESIGN §3.3): anonymous
-- identities for unknown faces, clustered over days. Only a template (the
-- L2-normalised running mean of the cluster, little-endian f32) and counts
-- are kept: no photos, no names.
CREATE TABLE IF NOT EXISTS strangers (
    id TEXT PRIMARY KEY,
    estate TEXT NOT NULL,
    model TEXT NOT NULL,
    seq BIGINT NOT NULL,
    centroid BYTEA NOT NULL,
    samples BIGINT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    UNIQUE (estate, model, seq)
);
CREATE INDEX IF NOT EXISTS strangers_estate_model ON strangers (estate, model);

-- Evidence images (DESIGN "Contract — evidence images").
--
-- Best-face snapshots: an edge writes each into its local store under a key
-- it chooses (estate, camera, time, track); evidence refers to it as
-- /api/v1/snapshots/{key}; the forwarder copies rows to the central store
-- (the key makes a repeated copy one row); retention deletes them by time.
CREATE TABLE IF NOT EXISTS snapshots (
    id BIGSERIAL PRIMARY KEY,
    snap_key TEXT NOT NULL UNIQUE,
    estate TEXT NOT NULL,
    camera TEXT NOT NULL,
    taken_ms BIGINT NOT NULL,
    jpeg BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_taken ON snapshots (taken_ms);

-- The photo a person's face was enrolled from (the latest), served to
-- operators beside a snapshot (/api/v1/persons/{id}/photo).
CREATE TABLE IF NOT EXISTS person_photos (
    person_id TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    photo BYTEA NOT NULL,
    enrolled_ms BIGINT NOT NULL
);

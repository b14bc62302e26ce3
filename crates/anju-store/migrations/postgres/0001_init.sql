-- Anju schema, PostgreSQL. Timestamps are epoch milliseconds (BIGINT, UTC)
-- in both backends so that one query text serves both; reports convert to the
-- site's time zone.

CREATE TABLE estates (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    office TEXT NOT NULL DEFAULT ''
);

CREATE TABLE grids (
    estate TEXT NOT NULL REFERENCES estates(code),
    code TEXT NOT NULL,
    staff TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (estate, code)
);

CREATE TABLE buildings (
    estate TEXT NOT NULL REFERENCES estates(code),
    code TEXT NOT NULL,
    grid TEXT,
    PRIMARY KEY (estate, code)
);

CREATE TABLE entrances (
    estate TEXT NOT NULL REFERENCES estates(code),
    code TEXT NOT NULL,
    kind TEXT NOT NULL,
    building TEXT,
    PRIMARY KEY (estate, code)
);

CREATE TABLE devices (
    estate TEXT NOT NULL REFERENCES estates(code),
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    entrance TEXT NOT NULL,
    url TEXT,
    faces TEXT,
    last_seen_ms BIGINT,
    online BIGINT,
    PRIMARY KEY (estate, id)
);

CREATE TABLE units (
    estate TEXT NOT NULL REFERENCES estates(code),
    building TEXT NOT NULL,
    unit TEXT NOT NULL,
    area_m2 DOUBLE PRECISION,
    PRIMARY KEY (estate, building, unit)
);

-- One row per person per lease: a household that moved out keeps its rows
-- (lease_end set), so history stays explainable.
CREATE TABLE persons (
    person_id TEXT NOT NULL,
    lease_start TEXT NOT NULL,
    estate TEXT NOT NULL,
    building TEXT NOT NULL,
    unit TEXT NOT NULL,
    household TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    id_number TEXT NOT NULL,
    phone TEXT NOT NULL DEFAULT '',
    birth_year BIGINT,
    lives_alone BIGINT NOT NULL DEFAULT 0,
    lease_end TEXT,
    PRIMARY KEY (person_id, lease_start)
);
CREATE INDEX persons_unit ON persons (estate, building, unit);

CREATE TABLE credentials (
    kind TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    valid_from TEXT,
    valid_to TEXT,
    PRIMARY KEY (kind, credential_id)
);
CREATE INDEX credentials_person ON credentials (person_id);

CREATE TABLE watchlist (
    person_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);

CREATE TABLE face_templates (
    id BIGSERIAL PRIMARY KEY,
    person_id TEXT NOT NULL,
    model TEXT NOT NULL,
    vector BYTEA NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    created_ms BIGINT NOT NULL
);
CREATE INDEX face_templates_person ON face_templates (person_id);

-- Device events and sightings. (estate, device, event_id) is the idempotency
-- key: a redelivered event is stored once.
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    estate TEXT NOT NULL,
    device TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    credential_kind TEXT,
    credential_id TEXT,
    result TEXT,
    direction TEXT,
    person_id TEXT,
    stranger_id TEXT,
    payload TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    UNIQUE (estate, device, event_id)
);
CREATE INDEX events_estate_ts ON events (estate, ts_ms);
CREATE INDEX events_person_ts ON events (person_id, ts_ms) WHERE person_id IS NOT NULL;

-- Anything rejected at ingest, with why: never dropped silently.
CREATE TABLE dead_letters (
    id BIGSERIAL PRIMARY KEY,
    received_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BYTEA NOT NULL,
    reason TEXT NOT NULL
);

CREATE TABLE alerts (
    id BIGSERIAL PRIMARY KEY,
    code TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    estate TEXT NOT NULL,
    building TEXT,
    unit TEXT,
    subject TEXT NOT NULL,
    opened_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    evidence TEXT NOT NULL,
    outcome TEXT,
    reason TEXT
);
CREATE INDEX alerts_estate_updated ON alerts (estate, updated_ms);
-- While an alert of a code and subject is active, there is only one.
CREATE UNIQUE INDEX alerts_active_dedup ON alerts (estate, code, subject)
    WHERE status IN ('open', 'acknowledged', 'dispatched');

CREATE TABLE alert_transitions (
    id BIGSERIAL PRIMARY KEY,
    alert_id BIGINT NOT NULL REFERENCES alerts(id),
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    by_user TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    reason TEXT
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id);

CREATE TABLE notices (
    id BIGSERIAL PRIMARY KEY,
    alert_id BIGINT NOT NULL REFERENCES alerts(id),
    estate TEXT NOT NULL,
    building TEXT,
    grid TEXT,
    assignee TEXT,
    due_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    result_text TEXT,
    created_ms BIGINT NOT NULL,
    closed_ms BIGINT
);
CREATE INDEX notices_estate_grid ON notices (estate, grid);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    all_estates BIGINT NOT NULL DEFAULT 0,
    estates TEXT NOT NULL DEFAULT '[]',
    grids TEXT NOT NULL DEFAULT '[]',
    created_ms BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (at_ms);

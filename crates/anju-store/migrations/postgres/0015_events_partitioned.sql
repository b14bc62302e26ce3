-- Events partitioned by month on PostgreSQL (issue 16). A year of a city's
-- gates and cameras is tens of millions of rows; retention then drops whole
-- months (`anju_drop_event_partitions`) instead of deleting row by row, and
-- the 24-hour report, the rules' warm-up and the units view read only the
-- months they ask for (partition pruning on `ts_ms`).
--
-- Partitions are by `ts_ms` (the event's own time, UTC epoch ms) in UTC
-- calendar months, named events_YYYY_MM, made ahead by
-- `anju_ensure_event_partitions` (at this migration: every month holding
-- data and three ahead; `anju serve` keeps three months ahead). An event
-- outside them (a device clock far in the past) lands in events_default and
-- is read like any other.
--
-- Uniqueness must include the partition key: an event is known by
-- (estate, device, event_id, ts_ms). A redelivered event carries its own
-- time again (outboxes resend the stored payload), so redelivery is still
-- ignored.

CREATE OR REPLACE FUNCTION anju_ensure_event_partitions(from_ms BIGINT, to_ms BIGINT)
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    m TIMESTAMP := date_trunc('month', to_timestamp(from_ms / 1000.0) AT TIME ZONE 'UTC');
    last TIMESTAMP := date_trunc('month', to_timestamp(to_ms / 1000.0) AT TIME ZONE 'UTC');
    part TEXT;
    made INTEGER := 0;
BEGIN
    WHILE m <= last LOOP
        part := 'events_' || to_char(m, 'YYYY_MM');
        IF to_regclass(part) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%s) TO (%s)',
                    part, (extract(epoch FROM m) * 1000)::BIGINT,
                    (extract(epoch FROM m + interval '1 month') * 1000)::BIGINT);
                made := made + 1;
            EXCEPTION
                -- Another replica made it meanwhile.
                WHEN duplicate_table THEN NULL;
                -- Rows of that month already sit in the default partition
                -- (a clock far ahead): they stay there, read as before.
                WHEN check_violation THEN
                    RAISE WARNING 'partition % not made: the default partition holds rows of that month', part;
            END;
        END IF;
        m := m + interval '1 month';
    END LOOP;
    RETURN made;
END $$;

-- Drops the monthly partitions that end at or before `before_ms`, with the
-- access rollup's buckets of that time; returns how many events went.
CREATE OR REPLACE FUNCTION anju_drop_event_partitions(before_ms BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    p RECORD;
    hi BIGINT;
    n BIGINT;
    total BIGINT := 0;
BEGIN
    FOR p IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_[0-9]{4}_[0-9]{2}$'
        ORDER BY c.relname
    LOOP
        hi := (extract(epoch FROM to_timestamp(substr(p.relname, 8), 'YYYY_MM')::TIMESTAMP
               + interval '1 month') * 1000)::BIGINT;
        EXIT WHEN hi > before_ms;
        EXECUTE format('SELECT COUNT(*) FROM %I', p.relname) INTO n;
        DELETE FROM access_rollup WHERE bucket_ms < hi;
        EXECUTE format('DROP TABLE %I', p.relname);
        total := total + n;
    END LOOP;
    RETURN total;
END $$;

ALTER SEQUENCE events_id_seq OWNED BY NONE;
ALTER TABLE events RENAME TO events_unpartitioned;

CREATE TABLE events (
    id BIGINT NOT NULL DEFAULT nextval('events_id_seq'),
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
    received_ms BIGINT NOT NULL
) PARTITION BY RANGE (ts_ms);
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- Months back to the oldest stored event (at most ten years: anything older
-- stays in the default partition) and three ahead.
SELECT anju_ensure_event_partitions(
    GREATEST(COALESCE((SELECT MIN(ts_ms) FROM events_unpartitioned),
                      (extract(epoch FROM now()) * 1000)::BIGINT),
             (extract(epoch FROM now() - interval '10 years') * 1000)::BIGINT),
    (extract(epoch FROM now() + interval '3 months') * 1000)::BIGINT);

INSERT INTO events SELECT id, estate, device, event_id, kind, ts_ms, credential_kind, credential_id,
    result, direction, person_id, stranger_id, payload, received_ms FROM events_unpartitioned;
DROP TABLE events_unpartitioned;
ALTER SEQUENCE events_id_seq OWNED BY events.id;

ALTER TABLE events ADD PRIMARY KEY (id, ts_ms);
ALTER TABLE events ADD CONSTRAINT events_event_key UNIQUE (estate, device, event_id, ts_ms);
CREATE INDEX events_estate_ts ON events (estate, ts_ms);
CREATE INDEX events_person_ts ON events (person_id, ts_ms) WHERE person_id IS NOT NULL;
CREATE INDEX events_report ON events (estate, kind, ts_ms, device, direction, result, credential_kind, person_id, stranger_id);
CREATE INDEX events_device_ts ON events (estate, device, ts_ms);
CREATE INDEX events_passage_credential ON events (credential_id, ts_ms) WHERE kind = 'passage';

-- The triggers of migrations 0004 and 0012, on the partitioned table (their
-- transition tables hold the rows of every partition a statement touched).
CREATE TRIGGER events_access_rollup_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION access_rollup_add();
CREATE TRIGGER events_access_rollup_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION access_rollup_sub();
CREATE TRIGGER events_access_rollup_update_old AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION access_rollup_sub();
CREATE TRIGGER events_access_rollup_update_new AFTER UPDATE ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION access_rollup_add();
CREATE TRIGGER events_device_seen AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION device_seen_add();

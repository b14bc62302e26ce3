-- The units view and the field staff's visit photos (issue 13).
--
-- A passage's judgement as a column: 'credited' when the holder's passage
-- counts as their activity, 'not_credited' when others passed on it. New
-- rows get it at insert; stored ones from their payload.
UPDATE events SET result = CASE
    WHEN payload LIKE '%"holder_credited":true%' THEN 'credited'
    ELSE 'not_credited' END
WHERE kind = 'passage' AND result IS NULL;
-- The last credited passage of a credential.
CREATE INDEX IF NOT EXISTS events_passage_credential ON events (credential_id, ts_ms)
    WHERE kind = 'passage';

-- Photos a grid manager takes on a visit, kept with the notice.
CREATE TABLE IF NOT EXISTS notice_photos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notice_id BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    photo BLOB NOT NULL,
    taken_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS notice_photos_notice ON notice_photos (notice_id);

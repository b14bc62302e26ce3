-- Consent to face recognition (PIPL, issue 15): the latest decision per
-- person, who recorded it and when. Withdrawing it deletes the person's face
-- templates, enrolled photo and snapshots (in the same transaction).
CREATE TABLE IF NOT EXISTS face_consent (
    person_id TEXT PRIMARY KEY,
    consent BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    by_user TEXT NOT NULL,
    note TEXT
);

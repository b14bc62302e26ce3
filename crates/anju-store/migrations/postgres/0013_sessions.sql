-- Login sessions in the store (issue 16): any replica of `anju serve`
-- accepts a token another one issued, and a logout, a revocation or a
-- deleted user ends the session on every replica. Only a hash of the
-- token is kept (SHA-256, hex): the table cannot be replayed.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE INDEX sessions_expires ON sessions (expires_ms);

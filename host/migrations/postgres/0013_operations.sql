-- The operator's kill switches and audit trail (`manage.rs`). Mirrors
-- sqlite/0013_operations.sql.
-- A disabled user (`disabled_at` set) cannot sign in and their login sessions
-- end when next used. A rotated client secret's previous hash stays valid
-- until `previous_secret_expires_at` (the grace period), then is ignored.
-- Every operator change writes one audit record: who (`actor`), what
-- (`action` on `target`), when (`at`, Unix seconds), and the thing before and
-- after as JSON text, never a secret or a secret's hash.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
ALTER TABLE clients ADD COLUMN previous_secret_hash BYTEA;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;

CREATE TABLE audit_records (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT   NOT NULL,
    action TEXT   NOT NULL,
    target TEXT   NOT NULL,
    before TEXT,
    after  TEXT
);
CREATE INDEX audit_records_at ON audit_records (at);
CREATE INDEX tokens_client_id ON tokens (client_id);
CREATE INDEX tokens_subject ON tokens (subject);
CREATE INDEX codes_subject ON codes (subject);

-- Bumped by every change to a registered client (update, secret rotation,
-- removal), so that each instance's client cache notices within a second
-- that it must read the clients again (`client_cache.rs`).
CREATE TABLE change_counters (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO change_counters (name, value) VALUES ('clients', 0);

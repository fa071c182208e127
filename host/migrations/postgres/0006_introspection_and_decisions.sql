-- RFC 7662 §4: only clients registered as resource servers may introspect
-- other clients' access tokens (`grantbox client add --introspection`).
ALTER TABLE clients ADD COLUMN introspection BOOLEAN NOT NULL DEFAULT FALSE;

-- Authorization transactions already decided, by SHA-256 of the transaction
-- id: a decision is taken once even when the consent form is posted twice at
-- the same moment (the session itself is read by each request separately).
CREATE TABLE decided_transactions (
    transaction_hash BYTEA PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX decided_transactions_expiry ON decided_transactions (expires_at);

-- RFC 7662 §4: only clients registered as resource servers may introspect
-- other clients' access tokens (`grantbox client add --introspection`).
ALTER TABLE clients ADD COLUMN introspection INTEGER NOT NULL DEFAULT 0;

-- Authorization transactions already decided, by SHA-256 of the transaction
-- id: a decision is taken once even when the consent form is posted twice at
-- the same moment (the session itself is read by each request separately).
CREATE TABLE decided_transactions (
    transaction_hash BLOB PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX decided_transactions_expiry ON decided_transactions (expires_at);

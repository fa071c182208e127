-- Only tokens with a subject go in the subject index: a client-credentials
-- token (no subject) then writes one index page less when it is committed.
-- `WHERE subject = $1` implies `subject IS NOT NULL`, so the lookups by user
-- (`token revoke --user`, a user's removal) still use it.
DROP INDEX tokens_subject;
CREATE INDEX tokens_subject ON tokens (subject) WHERE subject IS NOT NULL;
-- (PostgreSQL's 0022 also widens tokens_client_id; SQLite's planner takes the
-- primary key for lookups by hash and client, so its index stays as it is.)

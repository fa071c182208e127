-- Pushed authorization requests (RFC 9126): the parameters a client pushed
-- to `POST /par`, by SHA-256 of the random part of the `request_uri` it got
-- back (never the reference itself), bound to that client, until they expire
-- (`[par] request_uri_lifetime_seconds`). `parameters` is a JSON array of
-- [name, value] pairs in request order, credentials left out. The
-- authorization endpoint deletes the row as it reads it (one use, across
-- instances); housekeeping deletes expired rows; a row goes with its client.
CREATE TABLE pushed_authorization_requests (
    request_uri_hash BLOB    NOT NULL PRIMARY KEY,
    client_id        TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    parameters       TEXT    NOT NULL,
    expires_at       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX pushed_authorization_requests_expires_at ON pushed_authorization_requests (expires_at);
CREATE INDEX pushed_authorization_requests_client_id ON pushed_authorization_requests (client_id);

-- RFC 9126 §6 `require_pushed_authorization_requests`: the client's
-- authorization requests must come through `POST /par` (`client add
-- --require-par`).
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests INTEGER NOT NULL DEFAULT 0;

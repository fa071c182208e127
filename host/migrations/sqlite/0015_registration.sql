-- Dynamic client registration (RFC 7591, RFC 7592). Tokens are stored only
-- as SHA-256 hashes; times are Unix seconds. The PostgreSQL migration
-- mirrors this file with BYTEA for BLOB and BIGINT for INTEGER.

-- Initial access tokens (`grantbox registration token create`): what a
-- client presents to `POST /register`. `uses_left` NULL: any number of uses;
-- `expires_at` NULL: never expires.
CREATE TABLE initial_access_tokens (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    uses_left  INTEGER CHECK (uses_left IS NULL OR uses_left >= 0),
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);

-- The registration access token of each client registered through
-- `POST /register` (RFC 7592 §1), bound to it and gone with it. A client
-- without a row here was not registered dynamically and cannot be managed
-- through RFC 7592.
CREATE TABLE registration_access_tokens (
    client_id  TEXT    NOT NULL PRIMARY KEY REFERENCES clients (client_id) ON DELETE CASCADE,
    token_hash BLOB    NOT NULL UNIQUE,
    issued_at  INTEGER NOT NULL
);

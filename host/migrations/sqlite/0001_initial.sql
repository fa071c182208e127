-- Grantbox schema, version 1. Times are Unix seconds (INTEGER). Tokens, codes
-- and client secrets are stored only as SHA-256 hashes (BLOB, 32 bytes). Lists
-- are JSON text arrays. Keep the SQL portable: the PostgreSQL migration mirrors
-- this file with BYTEA for BLOB and BIGINT for INTEGER.

CREATE TABLE clients (
    client_id     TEXT    NOT NULL PRIMARY KEY,
    -- NULL for public clients.
    secret_hash   BLOB,
    name          TEXT,
    redirect_uris TEXT    NOT NULL,
    grant_types   TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    public        INTEGER NOT NULL,
    trusted       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    CHECK (public = 0 OR secret_hash IS NULL)
);

CREATE TABLE users (
    username      TEXT    NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    -- Random and never reassigned, so a deleted user's name given to someone
    -- else does not inherit the old `sub`.
    subject       TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL
);

CREATE TABLE tokens (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('access', 'refresh')),
    client_id  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    subject    TEXT,
    -- Space-separated scope tokens.
    scope      TEXT    NOT NULL,
    -- The family: every token issued from one authorization, across refreshes.
    grant_id   TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    -- Refresh tokens only: set when exchanged for a new pair.
    rotated_at INTEGER
);
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE codes (
    code_hash    BLOB    NOT NULL PRIMARY KEY,
    client_id    TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    subject      TEXT    NOT NULL,
    redirect_uri TEXT    NOT NULL,
    scope        TEXT    NOT NULL,
    -- JSON array of [name, value] pairs the grant plugin keeps with the code.
    data         TEXT    NOT NULL,
    grant_id     TEXT    NOT NULL,
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    redeemed_at  INTEGER,
    -- Set when a redeemed code is presented again; tokens inserted later for
    -- the same grant_id are born revoked.
    replayed_at  INTEGER
);
CREATE INDEX codes_grant_id ON codes (grant_id);
CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE kv (
    namespace  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX kv_expires_at ON kv (expires_at);

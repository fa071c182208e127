-- Grantbox schema, version 1, for PostgreSQL: mirrors sqlite/0001_initial.sql
-- with BYTEA for BLOB, BIGINT for INTEGER times and BOOLEAN for flags. Times
-- are Unix seconds. Tokens, codes and client secrets are stored only as
-- SHA-256 hashes (32 bytes). Lists are JSON text arrays.

CREATE TABLE clients (
    client_id     TEXT    NOT NULL PRIMARY KEY,
    -- NULL for public clients.
    secret_hash   BYTEA,
    name          TEXT,
    redirect_uris TEXT    NOT NULL,
    grant_types   TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    public        BOOLEAN NOT NULL,
    trusted       BOOLEAN NOT NULL,
    created_at    BIGINT  NOT NULL,
    CHECK (NOT public OR secret_hash IS NULL)
);

CREATE TABLE users (
    username      TEXT    NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    -- Random and never reassigned, so a deleted user's name given to someone
    -- else does not inherit the old `sub`.
    subject       TEXT    NOT NULL UNIQUE,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE tokens (
    token_hash BYTEA   NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('access', 'refresh')),
    client_id  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    subject    TEXT,
    -- Space-separated scope tokens.
    scope      TEXT    NOT NULL,
    -- The family: every token issued from one authorization, across refreshes.
    grant_id   TEXT    NOT NULL,
    issued_at  BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked_at BIGINT,
    -- Refresh tokens only: set when exchanged for a new pair.
    rotated_at BIGINT
);
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE codes (
    code_hash    BYTEA   NOT NULL PRIMARY KEY,
    client_id    TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    subject      TEXT    NOT NULL,
    redirect_uri TEXT    NOT NULL,
    scope        TEXT    NOT NULL,
    -- JSON array of [name, value] pairs the grant plugin keeps with the code.
    data         TEXT    NOT NULL,
    grant_id     TEXT    NOT NULL,
    issued_at    BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    redeemed_at  BIGINT,
    -- Set when a redeemed code is presented again; tokens inserted later for
    -- the same grant_id are born revoked.
    replayed_at  BIGINT
);
CREATE INDEX codes_grant_id ON codes (grant_id);
CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE kv (
    namespace  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BYTEA   NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX kv_expires_at ON kv (expires_at);

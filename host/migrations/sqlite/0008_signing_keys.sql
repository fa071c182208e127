-- The host's signing keys (`keys.rs`): the public JWK as published, the
-- private key sealed with AES-256-GCM under the key-encryption key (bound to
-- the kid), and `kek_check`, the check value of that key-encryption key, so
-- that a wrong key is told apart from a damaged row. A key is published from
-- `created_at`, signs from `activates_at`, stops signing at `retired_at` and
-- leaves the JWKS at `published_until` (Unix seconds; NULL: not retired).
CREATE TABLE signing_keys (
    kid             TEXT    NOT NULL PRIMARY KEY,
    alg             TEXT    NOT NULL,
    public_jwk      TEXT    NOT NULL,
    private_sealed  BLOB    NOT NULL,
    kek_check       TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    activates_at    INTEGER NOT NULL,
    retired_at      INTEGER,
    published_until INTEGER
);

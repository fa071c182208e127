-- The host's signing keys (`keys.rs`), shared by every instance on this
-- database. Mirrors sqlite/0008_signing_keys.sql: the public JWK as
-- published, the private key sealed with AES-256-GCM under the
-- key-encryption key (bound to the kid), and `kek_check`, the check value of
-- that key-encryption key, so that a wrong key is told apart from a damaged
-- row. A key is published from `created_at`, signs from `activates_at`, stops
-- signing at `retired_at` and leaves the JWKS at `published_until` (Unix
-- seconds; NULL: not retired).
CREATE TABLE signing_keys (
    kid             TEXT   NOT NULL PRIMARY KEY,
    alg             TEXT   NOT NULL,
    public_jwk      TEXT   NOT NULL,
    private_sealed  BYTEA  NOT NULL,
    kek_check       TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    activates_at    BIGINT NOT NULL,
    retired_at      BIGINT,
    published_until BIGINT
);

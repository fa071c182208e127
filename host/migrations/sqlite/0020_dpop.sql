-- DPoP (RFC 9449). A client registered with `dpop_bound_access_tokens`
-- (RFC 9449 §5.2, `client add --require-dpop`) gets no token without a proof.
ALTER TABLE clients ADD COLUMN require_dpop INTEGER NOT NULL DEFAULT 0;
-- The JWK SHA-256 Thumbprint (RFC 7638) a token is bound to (`cnf.jkt`):
-- every access token issued with a proof, and a public client's refresh
-- tokens; NULL for a bearer token.
ALTER TABLE tokens ADD COLUMN dpop_jkt TEXT;
-- `dpop_jkt` of the authorization request (RFC 9449 §10): the key the
-- code's token request must prove; NULL when the request named none.
ALTER TABLE codes ADD COLUMN dpop_jkt TEXT;

-- The `jti` of every proof accepted, per key, kept until the proof's `iat`
-- leaves the accepted window, so that a replay is refused by every instance
-- on the database.
CREATE TABLE dpop_proof_jtis (
    jkt        TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (jkt, jti)
) WITHOUT ROWID;
CREATE INDEX dpop_proof_jtis_expiry ON dpop_proof_jtis (expires_at);

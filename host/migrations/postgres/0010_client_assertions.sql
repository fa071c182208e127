-- JWT client authentication (`private_key_jwt`, RFC 7523 §2.2). The registered
-- `token_endpoint_auth_method` (RFC 7591 §2); NULL keeps the behaviour of
-- clients registered before it was recorded: a confidential client presents
-- its secret by Basic or in the body, a public one `none`.
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT;
-- `private_key_jwt`: the client's public keys, a JWK Set as JSON text.
ALTER TABLE clients ADD COLUMN jwks TEXT;

-- The `jti` of every client assertion accepted, kept until the assertion
-- expires so that a replay is refused (RFC 7523 §3 item 7) by every
-- instance on the database.
CREATE TABLE client_assertion_jtis (
    client_id  TEXT   NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);

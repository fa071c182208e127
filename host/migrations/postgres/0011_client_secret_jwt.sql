-- `client_secret_jwt` (RFC 7523 §2.2 with an HMAC, OpenID Connect Core §9):
-- the server needs the client secret itself as the HMAC key, not only its
-- SHA-256, so it keeps a copy sealed under the key-encryption key
-- (AES-256-GCM, the client id bound in). NULL for every other method.
ALTER TABLE clients ADD COLUMN secret_sealed BYTEA;

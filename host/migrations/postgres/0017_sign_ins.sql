-- Mirrors sqlite/0017_sign_ins.sql.
-- OpenID Connect: the sign-in record of a token family (`grant_id`): who
-- approved the authorization, when they signed in and how (OIDC Core §2
-- `auth_time`, `amr`, `acr`), kept when a code is issued for `openid` so that
-- every ID token of the family, also after refreshes (§12.2), states the
-- original sign-in. `amr` is a JSON array. It expires after the code
-- lifetime plus the refresh token absolute lifetime, when no token of the
-- family can be alive; housekeeping deletes it then, and it goes with the
-- client.
CREATE TABLE sign_ins (
    grant_id   TEXT    NOT NULL PRIMARY KEY,
    subject    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    auth_time  BIGINT  NOT NULL,
    amr        TEXT    NOT NULL,
    acr        TEXT,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX sign_ins_expires_at ON sign_ins (expires_at);
CREATE INDEX sign_ins_client_id ON sign_ins (client_id);

-- OpenID Connect Dynamic Client Registration §2: the JWS algorithm of the
-- client's ID tokens; NULL means RS256, which the host always has a key for.
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT;

-- Admin tokens: the bearer tokens the admin API accepts (`grantbox admin
-- token create`). Only the SHA-256 of a token is stored; the token itself is
-- printed once. A token stops working at `expires_at` (if set) or once
-- `revoked_at` is set; `id` names it in the audit trail.
CREATE TABLE admin_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT,
    token_hash BYTEA   NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

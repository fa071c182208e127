-- Remembered consent: a user who approved a client for a scope is not asked
-- again for that scope (OAuth2orize's `immediate`).
CREATE TABLE consents (
    subject    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    granted_at BIGINT  NOT NULL,
    PRIMARY KEY (subject, client_id)
);

-- OpenID Connect Core §5.1: a user's claims (name, email, email_verified, …)
-- as a JSON text object, set by `grantbox user add|update --claim`.
ALTER TABLE users ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';

-- OpenID Connect RP-Initiated Logout 1.0 §3.1: the URIs a client may have
-- the browser sent back to after signing the user out at `/end_session`
-- (`client add --post-logout-redirect-uri`), a JSON text array matched as
-- exact strings; '[]' for none.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';

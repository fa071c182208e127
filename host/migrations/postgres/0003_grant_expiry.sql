-- The absolute end of a token family (RFC 9700 §4.14.2): refresh rotation
-- never extends a grant past it, however often the idle lifetime renews.
ALTER TABLE tokens ADD COLUMN grant_expires_at BIGINT;

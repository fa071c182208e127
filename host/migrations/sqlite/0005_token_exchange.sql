-- RFC 8693 token exchange: where a token may be used (`aud`, a JSON array of
-- the `audience` and `resource` values; NULL for no restriction) and the
-- acting party of a delegation (the subject of the `act` claim).
ALTER TABLE tokens ADD COLUMN audience TEXT;
ALTER TABLE tokens ADD COLUMN actor TEXT;

-- RFC 8707 resource indicators and RFC 9068 JWT access tokens.
-- clients.resources: the resources (absolute URIs) the client may ask tokens
-- for, a JSON text array; NULL for none. clients.access_token_format: how its
-- access tokens look, 'opaque' (the default) or 'jwt'.
-- codes.resources: the resources the authorization request asked for (or the
-- client's registered ones), bound to the code's grant so that the token
-- request can be checked against them; NULL for none.
ALTER TABLE clients ADD COLUMN resources TEXT;
ALTER TABLE clients ADD COLUMN access_token_format TEXT NOT NULL DEFAULT 'opaque'
    CHECK (access_token_format IN ('opaque', 'jwt'));
ALTER TABLE codes ADD COLUMN resources TEXT;

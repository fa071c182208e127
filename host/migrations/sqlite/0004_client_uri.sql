-- RFC 7591 §2 `client_uri`: a page about the client, shown on the consent page.
ALTER TABLE clients ADD COLUMN client_uri TEXT;

-- The profile a client is held to beyond the server's rules (`client add
-- --profile fapi2`: the FAPI 2.0 Security Profile); NULL for none.
ALTER TABLE clients ADD COLUMN profile TEXT;

-- Step 8 (schema version 8): monitor kinds beyond http and tcp.

-- A heartbeat monitor's ping URL is /ping/<ping_token>: random, unguessable,
-- kept across edits. NULL for kinds that are checked rather than pinged.
ALTER TABLE monitors ADD COLUMN ping_token text UNIQUE;
-- What a check found besides up or down: packet loss, a certificate's issuer
-- and expiry, the first bytes of a heartbeat ping's body.
ALTER TABLE checks ADD COLUMN message text;

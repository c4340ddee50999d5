-- A consumer whose position only one process may move at a time (the broker relay) holds it
-- under a lease: the holder's id and when its hold ends unless renewed.
ALTER TABLE consumer_positions ADD COLUMN lease_owner TEXT;
ALTER TABLE consumer_positions ADD COLUMN lease_until INTEGER;

-- The addresses a system user's test sends go to (up to 5, one per line),
-- remembered from their last test send; empty means their own address.
ALTER TABLE system_users ADD COLUMN test_addresses TEXT NOT NULL DEFAULT '';

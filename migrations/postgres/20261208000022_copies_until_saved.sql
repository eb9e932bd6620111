-- The automation a copy was made from, until a wizard window of the copy is
-- saved: Cancel before that discards the copy instead of keeping "Copy of …".
ALTER TABLE automations ADD COLUMN copied_from BIGINT;
